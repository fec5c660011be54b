package track

import (
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// The reference model: a plain simulation of how PostgreSQL answers a
// stream of client messages, one message after another, written without
// the tracker's incremental bookkeeping. The property: fed the same
// client stream and the simulated answers, interleaved in any causal
// order, the tracker places every server message as the model does, skips
// exactly the messages the model skips, and rejects a message injected
// where PostgreSQL could not send it.

// simMsg is one server message of the simulation.
type simMsg struct {
	typ    byte
	idx    int  // the client message it answers (for an async message: the next one's)
	last   bool // the answer to idx is complete
	failed bool
	copy   Copy // the COPY state after it
}

// simulate answers the client messages kinds as PostgreSQL would, drawing
// each outcome from t.
func simulate(t *rapid.T, kinds []Kind) (out []simMsg, skipped []int) {
	skipping := false
	cp := CopyNone
	emit := func(typ byte, idx int, last, failed bool) {
		if rapid.IntRange(0, 9).Draw(t, "async") == 0 {
			out = append(out, simMsg{typ: rapid.SampledFrom([]byte{'N', 'S', 'A'}).Draw(t, "asyncType"), idx: idx, copy: cp})
		}
		switch typ {
		case 'G':
			cp = CopyIn
		case 'H':
			cp = CopyOut
		case 'c', 'C', 'E':
			cp = CopyNone
		}
		out = append(out, simMsg{typ: typ, idx: idx, last: last, failed: failed, copy: cp})
	}
	rows := func(i int) {
		for range rapid.IntRange(0, 3).Draw(t, "rows") {
			emit('D', i, false, false)
		}
	}
	// copyRun is a COPY in a Query or Execute; false when it failed.
	copyRun := func(i int, execute bool) bool {
		if rapid.Bool().Draw(t, "copyIn") {
			emit('G', i, false, false)
			if rapid.Bool().Draw(t, "copyInFails") {
				emit('E', i, execute, true)
				return false
			}
			emit('C', i, execute, false)
			return true
		}
		emit('H', i, false, false)
		for range rapid.IntRange(0, 3).Draw(t, "copyRows") {
			emit('d', i, false, false)
		}
		emit('c', i, false, false)
		emit('C', i, execute, false)
		return true
	}
	fails := func() bool { return rapid.IntRange(0, 5).Draw(t, "fails") == 0 }
	for i, k := range kinds {
		if skipping && k != Sync {
			skipped = append(skipped, i)
			continue
		}
		switch k {
		case Sync:
			skipping = false
			if rapid.IntRange(0, 9).Draw(t, "commitFails") == 0 {
				emit('E', i, false, true)
			}
			emit('Z', i, true, false)
		case Parse, Bind, Close, DescribePortal, DescribeStatement:
			if fails() {
				emit('E', i, true, true)
				skipping = true
				continue
			}
			switch k {
			case Parse:
				emit('1', i, true, false)
			case Bind:
				emit('2', i, true, false)
			case Close:
				emit('3', i, true, false)
			default:
				if k == DescribeStatement {
					emit('t', i, false, false)
				}
				emit(rapid.SampledFrom([]byte{'T', 'n'}).Draw(t, "shape"), i, true, false)
			}
		case Execute:
			switch rapid.IntRange(0, 4).Draw(t, "execute") {
			case 0:
				rows(i)
				emit('E', i, true, true)
				skipping = true
			case 1:
				emit('I', i, true, false)
			case 2:
				if !copyRun(i, true) {
					skipping = true
				}
			default:
				rows(i)
				emit(rapid.SampledFrom([]byte{'C', 's'}).Draw(t, "end"), i, true, false)
			}
		case Query:
		statements:
			for range rapid.IntRange(1, 3).Draw(t, "statements") {
				switch rapid.IntRange(0, 4).Draw(t, "statement") {
				case 0:
					emit('E', i, false, true)
					break statements
				case 1:
					emit('I', i, false, false)
				case 2:
					if !copyRun(i, false) {
						break statements
					}
				default:
					emit('T', i, false, false)
					rows(i)
					emit('C', i, false, false)
				}
			}
			emit('Z', i, true, false)
		case FunctionCall:
			if fails() {
				emit('E', i, false, true)
			} else {
				emit('V', i, false, false)
			}
			emit('Z', i, true, false)
		}
	}
	return out, skipped
}

func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		kinds := rapid.SliceOfN(rapid.SampledFrom([]Kind{Parse, Bind, DescribeStatement, DescribePortal, Execute, Close, Sync, Query, FunctionCall}), 1, 30).Draw(t, "client")
		server, wantSkipped := simulate(t, kinds)
		inject := rapid.IntRange(-1, len(server)).Draw(t, "inject") // -1: none

		var skipped []int
		tr := New(func(i *int) { skipped = append(skipped, *i) })
		sent := 0
		send := func() {
			seq, queued := tr.Send(kinds[sent], sent)
			if seq != uint64(sent+1) {
				t.Fatalf("Send(%d) numbered %d", sent, seq)
			}
			if !queued && !slices.Contains(skipped, sent) {
				t.Fatalf("Send(%d) refused without telling", sent)
			}
			sent++
			if g, sy, r, in := modelCounts(kinds[:sent]); tr.Groups() != g || tr.Syncs() != sy || tr.Runs() != r || tr.InGroup() != in {
				t.Fatalf("after %d sent: groups %d syncs %d runs %d inGroup %v, want %d %d %d %v",
					sent, tr.Groups(), tr.Syncs(), tr.Runs(), tr.InGroup(), g, sy, r, in)
			}
		}
		zs := uint64(0)
		for p := 0; p <= len(server); p++ {
			// Send what the client sends before the server's next message.
			for sent < len(kinds) && (p == len(server) || server[p].idx >= sent || rapid.Bool().Draw(t, "sendFirst")) {
				send()
			}
			if p == inject {
				typ := injected(t, kinds, server, p)
				if _, err := tr.Server(typ); err == nil {
					t.Fatalf("injected %q before server message %d: no error", typ, p)
				}
				return
			}
			if p == len(server) {
				break
			}
			m := server[p]
			pl, err := tr.Server(m.typ)
			if err != nil {
				t.Fatalf("server message %d %q: %v", p, m.typ, err)
			}
			if m.typ == 'N' || m.typ == 'S' || m.typ == 'A' {
				if !pl.Async {
					t.Fatalf("server message %d %q: not async", p, m.typ)
				}
				continue
			}
			want := Place{Kind: kinds[m.idx], Last: m.last, Failed: m.failed, Copy: m.copy}
			if pl != want {
				t.Fatalf("server message %d %q: placed %+v, want %+v", p, m.typ, pl, want)
			}
			if got := *tr.Current(); got != m.idx {
				t.Fatalf("server message %d %q answers %d, want %d", p, m.typ, got, m.idx)
			}
			if m.typ == 'Z' {
				zs++
				status := rapid.SampledFrom([]byte{'I', 'T', 'E'}).Draw(t, "status")
				tr.Ready(status)
				if status == 'I' && tr.IdleThrough() != zs {
					t.Fatalf("server message %d: IdleThrough %d after the idle ReadyForQuery of group %d", p, tr.IdleThrough(), zs)
				}
				if tr.TxFailed() != (status == 'E') {
					t.Fatalf("server message %d: TxFailed %v after status %q", p, tr.TxFailed(), status)
				}
			}
			if tr.GroupsDone() != zs {
				t.Fatalf("server message %d %q: GroupsDone %d, want %d", p, m.typ, tr.GroupsDone(), zs)
			}
			// The reading side settles each answer it has acted on; until
			// then a client waiting on it waits.
			seq := uint64(m.idx + 1)
			if ok, wait := tr.Settled(seq); ok || wait == nil {
				t.Fatalf("server message %d %q: %d settled before Settle", p, m.typ, m.idx)
			}
			if m.last {
				tr.Settle()
				if ok, _ := tr.Settled(seq); !ok {
					t.Fatalf("server message %d %q ends %d: not settled after Settle", p, m.typ, m.idx)
				}
			}
			// What a client that waits on a COPY would learn now.
			running, settled, _ := tr.CopyIn(seq, copiesEnded(server[:p+1], m.idx))
			switch {
			case m.last && (running || !settled):
				t.Fatalf("server message %d %q ends %d: CopyIn says running %v, settled %v", p, m.typ, m.idx, running, settled)
			case m.copy == CopyIn && (!running || !settled):
				t.Fatalf("server message %d %q: COPY FROM runs, CopyIn says running %v, settled %v", p, m.typ, running, settled)
			case !m.last && m.copy != CopyIn && settled:
				t.Fatalf("server message %d %q: %d not over and not copying, CopyIn says settled", p, m.typ, m.idx)
			}
			if m.idx > 0 {
				if running, settled, _ := tr.CopyIn(seq-1, 0); running || !settled {
					t.Fatalf("server message %d %q answers %d: CopyIn of %d, before it, not settled as over", p, m.typ, m.idx, m.idx-1)
				}
			}
		}
		if ok, _ := tr.Settled(uint64(len(kinds))); !ok {
			t.Fatalf("the last message not settled at the end")
		}
		if !slices.Equal(skipped, wantSkipped) {
			t.Fatalf("skipped %v, want %v", skipped, wantSkipped)
		}
		if n := tr.Outstanding(); n != 0 {
			t.Fatalf("%d messages outstanding at the end", n)
		}
	})
}

// modelCounts counts what Send counts, from the messages sent.
func modelCounts(sent []Kind) (groups, syncs, runs uint64, inGroup bool) {
	for _, k := range sent {
		switch k {
		case Sync:
			groups++
			syncs++
			inGroup = false
		case Query, FunctionCall:
			groups++
			runs++
		case Execute:
			runs++
			inGroup = true
		default:
			inGroup = true
		}
	}
	return
}

// copiesEnded counts the COPY FROM STDINs of message idx that have ended
// in server.
func copiesEnded(server []simMsg, idx int) int {
	n := 0
	in := false
	for _, m := range server {
		if m.idx != idx {
			continue
		}
		switch m.typ {
		case 'G':
			in = true
		case 'C', 'E':
			if in {
				n++
			}
			in = false
		}
	}
	return n
}

// injected returns a server message type that PostgreSQL cannot send
// before server[p], by the model's state there.
func injected(t *rapid.T, kinds []Kind, server []simMsg, p int) byte {
	q := p
	for q < len(server) && (server[q].typ == 'N' || server[q].typ == 'S' || server[q].typ == 'A') {
		q++
	}
	if q == len(server) {
		return rapid.SampledFrom([]byte{'C', 'Z', 'D', '1', 'd'}).Draw(t, "injectIdle") // nothing is outstanding
	}
	k := kinds[server[q].idx]
	cp := CopyNone
	if p > 0 {
		cp = server[p-1].copy
	}
	var bad []byte
	if !k.EndsGroup() {
		bad = append(bad, 'Z')
	}
	if k != Parse {
		bad = append(bad, '1')
	}
	if k != FunctionCall {
		bad = append(bad, 'V')
	}
	if cp == CopyNone {
		bad = append(bad, 'd', 'c')
	} else {
		bad = append(bad, 'Z', 'D', 'G', 'T', 'I', 's')
	}
	if cp == CopyOut {
		bad = append(bad, 'C')
	}
	bad = append(bad, 'R', 'K')
	return rapid.SampledFrom(bad).Draw(t, "injectType")
}
