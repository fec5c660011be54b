package e2e

// A randomized, seeded protocol-sequence stress test: raw pgproto3 frontend
// messages in random orders and pipelines through the proxy to the real
// PostgreSQL, on both relays. After each sequence a probe must come back
// (or the connection must have ended with a FATAL error for truly invalid
// protocol), results must be decrypted, no policy plaintext may reach the
// server, and goroutines and descriptors return to their baseline.
//
//	PGCRYPT_STRESS_SEED   first seed (default 1; 101 when the suite runs on
//	                      the goroutine relay, PGCRYPT_TEST_EVENT_LOOPS=-1, so
//	                      that CI's second pass tries other sequences)
//	PGCRYPT_STRESS_SEEDS  how many seeds per relay (default 2)
//	PGCRYPT_STRESS_STEPS  sequences per seed (default 60)
//	PGCRYPT_STRESS_RELAY  "loop", "goroutines" or "" for both

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// stressCatalogMaxAge is the stress fixture's proxy.Options.CatalogMaxAge.
const stressCatalogMaxAge = 2 * time.Second

const stressDDL = "; CREATE TABLE plain_t (id serial PRIMARY KEY, v text, n int)"

// newStressFixture is newTapFixture with the relay chosen and a small
// message limit, so that oversized messages are cheap to send.
func newStressFixture(t *testing.T, loops int) (*encFixture, *wireTap) {
	t.Helper()
	pg.Require(t)
	addr, w := startTap(t)
	f := newEncFixtureFunc(t, seedColumns(), false, stressDDL, func(o *proxy.Options) {
		o.Upstream = addr
		o.EventLoops = loops
		o.MaxMessageBytes = 1 << 20
		o.CatalogMaxAge = stressCatalogMaxAge // more catalog re-reads, and tests can outwait them
	})
	return f, w
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func TestStressProtocolSequences(t *testing.T) {
	relays := []struct {
		name  string
		loops int
	}{{"loop", 0}, {"goroutines", -1}}
	seed0 := envInt("PGCRYPT_STRESS_SEED", 1)
	if os.Getenv("PGCRYPT_STRESS_SEED") == "" && os.Getenv("PGCRYPT_TEST_EVENT_LOOPS") != "" {
		seed0 = 101
	}
	seeds := envInt("PGCRYPT_STRESS_SEEDS", 2)
	steps := envInt("PGCRYPT_STRESS_STEPS", 60)
	for _, r := range relays {
		if want := os.Getenv("PGCRYPT_STRESS_RELAY"); want != "" && want != r.name {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			for seed := seed0; seed < seed0+seeds; seed++ {
				t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
					runStress(t, r.loops, int64(seed), steps)
				})
			}
		})
	}
}

// stressConn is a raw session through the proxy.
type stressConn struct {
	c      net.Conn
	fe     *pgproto3.Frontend
	pid    uint32
	secret []byte
}

func stressDial(t *testing.T, f *encFixture) *stressConn {
	t.Helper()
	c, err := net.Dial("tcp", f.p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	sc := &stressConn{c: c, fe: pgproto3.NewFrontend(c, c)}
	sc.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": pg.Super.Name, "database": f.db}})
	if err := sc.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := sc.fe.Receive()
		if err != nil {
			t.Fatalf("startup: %v", err)
		}
		switch m := m.(type) {
		case *pgproto3.BackendKeyData:
			sc.pid, sc.secret = m.ProcessID, append([]byte(nil), m.SecretKey...)
		case *pgproto3.ErrorResponse:
			t.Fatalf("startup: %s", m.Message)
		case *pgproto3.ReadyForQuery:
			return sc
		}
	}
}

// item is one piece of a sequence: the bytes it sends and what it is.
type item struct {
	desc      string
	raw       []byte
	invalid   bool   // may end the session with a FATAL error
	terminate bool   // ends the session
	cancelTag string // a pg_sleep to cancel from a second connection
}

func enc(m pgproto3.FrontendMessage) []byte {
	b, err := m.Encode(nil)
	if err != nil {
		panic(err)
	}
	return b
}

func msgItem(m pgproto3.FrontendMessage) item {
	return item{desc: describeMsg(m), raw: enc(m)}
}

func describeMsg(m pgproto3.FrontendMessage) string {
	switch m := m.(type) {
	case *pgproto3.Parse:
		return fmt.Sprintf("Parse{Name:%q, Query:%.120q, OIDs:%v}", m.Name, m.Query, m.ParameterOIDs)
	case *pgproto3.Bind:
		ps := make([]string, len(m.Parameters))
		for i, p := range m.Parameters {
			if p == nil {
				ps[i] = "NULL"
			} else {
				ps[i] = fmt.Sprintf("%.40q", p)
			}
		}
		return fmt.Sprintf("Bind{Portal:%q, Stmt:%q, Formats:%v, Params:[%s], Results:%v}", m.DestinationPortal, m.PreparedStatement, m.ParameterFormatCodes, strings.Join(ps, " "), m.ResultFormatCodes)
	case *pgproto3.Describe:
		return fmt.Sprintf("Describe{%c %q}", m.ObjectType, m.Name)
	case *pgproto3.Execute:
		return fmt.Sprintf("Execute{%q, MaxRows:%d}", m.Portal, m.MaxRows)
	case *pgproto3.Close:
		return fmt.Sprintf("Close{%c %q}", m.ObjectType, m.Name)
	case *pgproto3.Query:
		return fmt.Sprintf("Query{%.160q}", m.String)
	case *pgproto3.CopyData:
		return fmt.Sprintf("CopyData{%d bytes %.60q}", len(m.Data), m.Data)
	case *pgproto3.CopyFail:
		return fmt.Sprintf("CopyFail{%q}", m.Message)
	}
	return fmt.Sprintf("%T", m)
}

func rawMsg(typ byte, body []byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

// stmtSpec is a statement of the pool: its SQL and how many parameters
// it has, all of which belong to policy columns.
type stmtSpec struct {
	sql    string
	params int
	array  bool
}

// gen makes random sequences; it tracks what each statement name may hold
// so that only parameters that surely belong to a policy column carry a
// SECRET marker.
type gen struct {
	r     *rand.Rand
	ws    string
	n     int
	names map[string][]stmtSpec // everything parsed under a name in this session
}

func (g *gen) marker() string {
	g.n++
	return fmt.Sprintf("SECRET-%d", g.n)
}

func (g *gen) pick(xs ...string) string { return xs[g.r.Intn(len(xs))] }

func (g *gen) paramStmt() stmtSpec {
	ws := g.ws
	all := []stmtSpec{
		{"insert into clients (workspace_id, first_name, last_name) values ('" + ws + "', $1, 'ln')", 1, false},
		{"insert into clients (workspace_id, first_name, last_name, email) values ('" + ws + "', $1, $2, $3)", 3, false},
		{"select id, first_name from clients where email = $1", 1, false},
		{"select first_name from clients where email = any($1)", 1, true},
		{"update clients set phone = $1 where notes = 'nomatch'", 1, false},
		{"insert into legacy_notes (body) values ($1)", 1, false},
		{"select first_name, $1::text = last_name from clients where notes = 'seed-row'", 1, false},
	}
	return all[g.r.Intn(len(all))]
}

// plainSQL is a statement without parameters; policy values in it are
// literals, which the proxy encrypts or refuses.
func (g *gen) plainSQL() string {
	ws := g.ws
	switch g.r.Intn(30) {
	case 0:
		return "select 1"
	case 1:
		return "select generate_series(1,5) as g"
	case 2:
		return "select first_name, last_name, email from clients order by id limit 3"
	case 3:
		return "select * from plain_t order by id limit 3"
	case 4:
		return "insert into plain_t (v, n) values ('plain', 1)"
	case 5:
		return "insert into clients (workspace_id, first_name, last_name, notes) values ('" + ws + "', '" + g.marker() + "', '" + g.marker() + "', 'x')"
	case 6:
		return "update clients set phone = '" + g.marker() + "' where notes = 'nomatch'"
	case 7:
		return "select id from clients where first_name like '" + g.marker() + "%'" // refused
	case 8:
		return "select 1/0"
	case 9:
		return "select * from no_such_table"
	case 10:
		return g.pick("begin", "commit", "rollback", "savepoint s", "rollback to savepoint s")
	case 11:
		return ""
	case 12:
		return "select pg_sleep(0.01)"
	case 13:
		return "set search_path = public"
	case 14:
		return g.pick("declare cur1 cursor with hold for select first_name, email from clients", "fetch 2 from cur1", "close cur1", "declare cur2 cursor for select generate_series(1,4)")
	case 15:
		return g.pick("copy (select first_name from clients where notes = 'seed-row') to stdout", "copy plain_t (v) to stdout", "copy clients (first_name, notes) to stdout")
	case 16:
		return "insert into legacy_notes (body) values ('" + g.marker() + "')"
	case 17:
		return "select body from legacy_notes limit 2"
	case 18:
		// Large enough to be analysed off the event loop.
		return "insert into clients (workspace_id, first_name, last_name) values ('" + ws + "', '" + g.marker() + strings.Repeat("x", 40<<10) + "', 'big')"
	case 19:
		return "select 1; insert into plain_t (v) values ('m'); select 1/0; insert into clients (workspace_id, first_name, last_name) values ('" + ws + "', '" + g.marker() + "', 'm')"
	case 20:
		return "insert into clients (workspace_id, first_name, last_name) values ('" + ws + "', '" + g.marker() + "', 'm'); select first_name from clients where notes = 'seed-row'; select * from nope"
	case 21:
		return "create temp table if not exists tmp_t (a int)"
	case 22:
		return "select email from clients where email = '" + g.marker() + "'"
	case 23:
		return "deallocate all"
	case 24:
		return "select first_name from clients where notes = 'seed-row'; select 2"
	case 25:
		return "insert into clients (workspace_id, first_name, last_name) values ('" + ws + "', '" + g.marker() + "', 'ret') returning first_name, email"
	case 26:
		return "select pg_sleep(0.02); select 1/0; select 3"
	case 27:
		return "insert into clients values ('" + ws + "')" // no column list, fails on NOT NULL
	case 28:
		return "select t.first_name from clients t join workspaces w on w.id = t.workspace_id limit 2"
	default:
		return "select body from legacy_notes where body = '" + g.marker() + "'" // refused
	}
}

func (g *gen) stmtName() string { return g.pick("", "", "s1", "s2", "nope") }
func (g *gen) portalName() string {
	return g.pick("", "", "p1", "nope", "cur1")
}

// secretOK reports whether parameter i of a Bind to name surely belongs
// to a policy column.
func (g *gen) secretOK(name string, i int) bool {
	specs := g.names[name]
	if len(specs) == 0 {
		return false
	}
	for _, s := range specs {
		if s.params <= i {
			return false
		}
	}
	return true
}

func (g *gen) parse() item {
	name := g.stmtName()
	var spec stmtSpec
	if g.r.Intn(2) == 0 {
		spec = g.paramStmt()
	} else {
		spec = stmtSpec{sql: g.plainSQL()}
	}
	g.names[name] = append(g.names[name], spec)
	var oids []uint32
	switch g.r.Intn(6) {
	case 0:
		oids = []uint32{25}
	case 1:
		oids = []uint32{23}
	case 2:
		oids = []uint32{0, 0, 0, 0}
	}
	return msgItem(&pgproto3.Parse{Name: name, Query: spec.sql, ParameterOIDs: oids})
}

func binaryTextArray(elems ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 1)
	b = binary.BigEndian.AppendUint32(b, 1) // has nulls
	b = binary.BigEndian.AppendUint32(b, 25)
	b = binary.BigEndian.AppendUint32(b, uint32(len(elems)))
	b = binary.BigEndian.AppendUint32(b, 1)
	for _, e := range elems {
		if e == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

func (g *gen) bind() item {
	stmt := g.stmtName()
	if g.r.Intn(8) == 0 {
		stmt = "never_prepared"
	}
	np := 1
	if specs := g.names[stmt]; len(specs) > 0 {
		np = specs[len(specs)-1].params
	}
	switch g.r.Intn(6) {
	case 0:
		np++
	case 1:
		np = max(0, np-1)
	case 2:
		np = g.r.Intn(5)
	}
	isArray := false
	for _, s := range g.names[stmt] {
		isArray = isArray || s.array
	}
	var formats []int16
	switch g.r.Intn(5) {
	case 1:
		formats = []int16{0}
	case 2:
		formats = []int16{1}
	case 3:
		for range np {
			formats = append(formats, int16(g.r.Intn(2)))
		}
	case 4:
		formats = []int16{0, 1, 0, 1, 0}[:g.r.Intn(5)]
	}
	params := make([][]byte, np)
	for i := range params {
		var v []byte
		if g.secretOK(stmt, i) {
			switch g.r.Intn(8) {
			case 0:
				v = nil
			case 1:
				v = []byte("{" + g.marker() + ",NULL}")
			case 2:
				v = binaryTextArray([]byte(g.marker()), nil)
			case 3:
				v = []byte{0, 0, 0, 1, 0xff} // garbage
			default:
				v = []byte(g.marker())
				if isArray && g.r.Intn(2) == 0 {
					v = []byte("{" + string(v) + "}")
				}
			}
		} else {
			v = []byte(g.pick("extra", "1", "", "{x}"))
			if g.r.Intn(6) == 0 {
				v = nil
			}
		}
		params[i] = v
	}
	var results []int16
	switch g.r.Intn(4) {
	case 1:
		results = []int16{1}
	case 2:
		results = []int16{0, 1}
	}
	b := &pgproto3.Bind{DestinationPortal: g.pick("", "", "p1"), PreparedStatement: stmt, Parameters: params, ResultFormatCodes: results}
	b.ParameterFormatCodes = append(b.ParameterFormatCodes, formats...)
	return msgItem(b)
}

func (g *gen) copyItems(policy bool) []item {
	var out []item
	// kind 0: clients text, 1: clients CSV, 2: legacy_notes text.
	kind := g.r.Intn(3)
	if policy {
		out = append(out, msgItem(&pgproto3.Query{String: []string{
			"copy clients (workspace_id, first_name, last_name) from stdin",
			"copy clients (workspace_id, first_name, last_name) from stdin (format csv)",
			"copy legacy_notes (body) from stdin"}[kind]}))
	} else {
		out = append(out, msgItem(&pgproto3.Query{String: "copy plain_t (v) from stdin"}))
	}
	// Rows keep markers in policy positions only, however malformed.
	split := false
	row := func() []byte {
		pre := ""
		if split {
			pre, split = "\n", false // keeps the next row's fields in place
		}
		if !policy {
			if g.r.Intn(8) == 0 {
				return []byte(strings.Repeat("y", 300<<10) + "\n") // streamed
			}
			return []byte("plain-copy\n")
		}
		sep := "\t"
		if kind == 1 {
			sep = ","
		}
		var fields []string
		if kind == 2 {
			fields = []string{g.marker()}
		} else {
			fields = []string{g.ws, g.marker(), g.marker()}
		}
		end := "\n"
		switch g.r.Intn(6) {
		case 0:
			fields = append(fields, "extra")
		case 1:
			end, split = "", true // a row split over two messages
		case 2:
			fields[0] = "not-a-uuid"
		}
		return []byte(pre + strings.Join(fields, sep) + end)
	}
	for range g.r.Intn(4) {
		out = append(out, msgItem(&pgproto3.CopyData{Data: row()}))
	}
	switch g.r.Intn(6) {
	case 0:
		out = append(out, msgItem(&pgproto3.CopyDone{}))
	case 1:
		out = append(out, msgItem(&pgproto3.CopyFail{Message: "client abort"}))
	case 2:
		// Interrupted by another message (PostgreSQL ends the session
		// with FATAL); more data after it.
		it := g.pickInterrupt()
		it.invalid = true
		out = append(out, it)
		if policy {
			// Marked LATE rather than SECRET: data after the interruption
			// (TestFailClosedCopyDataAfterInterruption), reported apart.
			late := strings.ReplaceAll(string(row()), "SECRET-", "LATE-")
			out = append(out, msgItem(&pgproto3.CopyData{Data: []byte(late)}))
		}
		out = append(out, msgItem(&pgproto3.CopyDone{}))
		return out
	case 3:
		// A Sync during COPY: ignored by PostgreSQL while it copies,
		// answered when the COPY failed at once (TestCopySyncAfterFailedCopy).
		out = append(out, msgItem(&pgproto3.Sync{}), msgItem(&pgproto3.Flush{}))
		out = append(out, msgItem(&pgproto3.CopyDone{}))
	case 4:
		it := g.pickInterrupt()
		it.invalid = true
		out = append(out, it)
	default:
		// Left open: the probe's CopyFail ends it.
		out = append(out, item{desc: "(COPY left open)"})
	}
	return out
}

func (g *gen) pickInterrupt() item {
	switch g.r.Intn(5) {
	case 0:
		return msgItem(&pgproto3.Query{String: "select 1"})
	case 1:
		return msgItem(&pgproto3.Parse{Query: "select 2"})
	case 2:
		return msgItem(&pgproto3.Query{String: g.plainSQL()})
	case 3:
		return msgItem(&pgproto3.Describe{ObjectType: 'S', Name: ""})
	}
	return msgItem(&pgproto3.Execute{})
}

func (g *gen) extendedCopy() []item {
	g.names[""] = append(g.names[""], stmtSpec{sql: "copy plain_t (v) from stdin"})
	return []item{
		msgItem(&pgproto3.Parse{Query: "copy plain_t (v) from stdin"}),
		msgItem(&pgproto3.Bind{}),
		msgItem(&pgproto3.Execute{}),
		msgItem(&pgproto3.Flush{}),
		msgItem(&pgproto3.CopyData{Data: []byte("ext-copy\n")}),
		msgItem(&pgproto3.CopyDone{}),
	}
}

func (g *gen) invalid() item {
	it := item{invalid: true}
	switch g.r.Intn(9) {
	case 0:
		typ := g.pick("z", "y", "!", "0", "p", "\x7f", "A", "G")[0]
		it.raw, it.desc = rawMsg(typ, []byte("junk\x00")), fmt.Sprintf("unknown message %q", typ)
	case 1:
		typ := g.pick("Q", "P", "B", "E", "D", "C", "F", "f")[0]
		it.raw, it.desc = rawMsg(typ, nil), fmt.Sprintf("zero-length %q", typ)
	case 2:
		stmt := g.stmtName()
		v := "TRUNC"
		if g.secretOK(stmt, 0) {
			v = g.marker()
		}
		b := enc(&pgproto3.Bind{PreparedStatement: stmt, Parameters: [][]byte{[]byte(v), []byte("x")}})
		cut := 5 + g.r.Intn(len(b)-5)
		body := b[5:cut]
		it.raw, it.desc = rawMsg('B', body), fmt.Sprintf("truncated Bind body %q", body)
	case 3:
		it.raw, it.desc = rawMsg('P', []byte("\x00select 1")), "Parse without terminators"
	case 4:
		it.raw, it.desc = []byte{'Q', 0, 0x20, 0, 0, 's', 'e', 'l'}, "oversized Query header (2 MiB)"
	case 5:
		it.raw, it.desc = rawMsg('S', []byte("garbage")), "Sync with a body"
	case 6:
		it.raw, it.desc = rawMsg('D', []byte("X\x00")), "Describe of type X"
	case 7:
		it.raw, it.desc = rawMsg('E', []byte("\x00")), "Execute without MaxRows"
	default:
		it.raw, it.desc = []byte{'Q', 0, 0, 0, 2}, "length below four"
	}
	return it
}

// sequence makes one random sequence of 1..14 items.
func (g *gen) sequence(tag int) []item {
	var out []item
	n := 1 + g.r.Intn(14)
	for len(out) < n {
		switch k := g.r.Intn(100); {
		case k < 14:
			out = append(out, g.parse())
		case k < 28:
			out = append(out, g.bind())
		case k < 36:
			d := &pgproto3.Describe{ObjectType: g.pick("S", "P")[0]}
			if d.ObjectType == 'S' {
				d.Name = g.stmtName()
			} else {
				d.Name = g.portalName()
			}
			out = append(out, msgItem(d))
		case k < 48:
			out = append(out, msgItem(&pgproto3.Execute{Portal: g.portalName(), MaxRows: uint32(g.pick("\x00", "\x00", "\x01", "\x02")[0])}))
		case k < 51:
			c := &pgproto3.Close{ObjectType: g.pick("S", "P")[0]}
			c.Name = g.stmtName()
			out = append(out, msgItem(c))
		case k < 60:
			out = append(out, msgItem(&pgproto3.Sync{}))
		case k < 63:
			out = append(out, msgItem(&pgproto3.Flush{}))
		case k < 76:
			out = append(out, msgItem(&pgproto3.Query{String: g.plainSQL()}))
		case k < 84:
			items := g.copyItems(k < 81)
			out = append(out, items...)
			if last := items[len(items)-1]; last.invalid || last.desc == "(COPY left open)" {
				return out // anything more would interrupt the COPY
			}
		case k < 86:
			out = append(out, g.extendedCopy()...)
		case k < 88:
			t := fmt.Sprintf("/*cancel-%d*/", tag)
			out = append(out, item{desc: "Query{select pg_sleep(3) " + t + "} + CancelRequest", raw: enc(&pgproto3.Query{String: "select pg_sleep(3) " + t}), cancelTag: t})
			return out // the cancel comes last
		case k < 91:
			out = append(out, g.invalid())
			return out
		case k < 93:
			out = append(out, item{desc: "Terminate", raw: enc(&pgproto3.Terminate{}), terminate: true})
			out = append(out, msgItem(&pgproto3.Query{String: "insert into clients (workspace_id, first_name, last_name) values ('" + g.ws + "', 'AFTER-TERMINATE', 'x')"}))
			return out
		case k < 95:
			out = append(out, msgItem(&pgproto3.CopyData{Data: []byte("stray\n")}))
		default:
			out = append(out, msgItem(&pgproto3.FunctionCall{Function: 1397, ArgFormatCodes: []uint16{0}, Arguments: [][]byte{[]byte("-7")}, ResultFormatCode: 0})) // int4abs
		}
	}
	return out
}

type stressFailure struct {
	kind string
	seq  []item
	info string
}

func runStress(t *testing.T, loops int, seed int64, steps int) {
	f, w := newStressFixture(t, loops)
	ws := f.workspace(t)
	ctx := testCtx(t)
	// The probe's row, written through the proxy.
	seedConn := f.connect(t, pgx.QueryExecModeExec)
	if _, err := seedConn.Exec(ctx, "insert into clients (workspace_id, first_name, last_name, email, notes) values ($1, 'seed-first', 'seed-last', 'seed@x', 'seed-row')", ws); err != nil {
		t.Fatal(err)
	}
	seedConn.Close(ctx)
	mon := pg.SuperConn(t, "postgres")

	// Baseline after one session has warmed things up.
	warm := stressDial(t, f)
	warm.c.Close()
	settle := func() (int, int) {
		waitFor(t, "sessions to close", func() bool { return counterValue(f.p.Metrics.ConnectionsActive) == 0 })
		deadline := time.Now().Add(5 * time.Second)
		var g int
		for {
			runtime.GC()
			g = runtime.NumGoroutine()
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
			if runtime.NumGoroutine() == g {
				break
			}
		}
		fds, _ := os.ReadDir("/proc/self/fd")
		return g, len(fds)
	}
	g0, fd0 := settle()

	r := rand.New(rand.NewSource(seed))
	g := &gen{r: r, ws: ws, names: map[string][]stmtSpec{}}
	var fails []stressFailure
	tapOff := 0
	var sc *stressConn
	var history []string
	newSession := func() {
		history = nil
		if sc != nil {
			sc.c.Close()
		}
		sc = stressDial(t, f)
		g.names = map[string][]stmtSpec{}
	}
	newSession()
	sequences, lateLeaks := 0, 0
	outcomes := map[string]int{}
	for step := 0; step < steps; step++ {
		seq := g.sequence(step)
		sequences++
		failed := false
		fail := func(kind, info string) {
			fails = append(fails, stressFailure{kind, seq, info})
			failed = true
			t.Errorf("relay %d seed %d step %d: %s: %s\nsequence:\n  %s\nearlier in this session:\n  %s", loops, seed, step, kind, info, seqString(seq), strings.Join(history, "\n  ---\n  "))
		}
		var stream []byte
		invalid, terminate := false, false
		cancelTag := ""
		for _, it := range seq {
			stream = append(stream, it.raw...)
			invalid = invalid || it.invalid
			terminate = terminate || it.terminate
			if it.cancelTag != "" {
				cancelTag = it.cancelTag
			}
		}
		sc.c.SetDeadline(time.Now().Add(15 * time.Second))
		// Written in random pieces.
		var werr error
		for len(stream) > 0 && werr == nil {
			n := len(stream)
			if r.Intn(3) == 0 {
				n = 1 + r.Intn(len(stream))
			}
			_, werr = sc.c.Write(stream[:n])
			stream = stream[n:]
			if r.Intn(4) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		if cancelTag != "" {
			stressCancel(t, f, mon, sc, cancelTag)
		}
		var ms []string
		outcome := ""
		switch {
		case terminate:
			sc.c.SetReadDeadline(time.Now().Add(8 * time.Second))
			_, err := io.Copy(io.Discard, sc.c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				fail("HANG", "the proxy kept the connection open after Terminate")
			}
			outcome = "terminated"
		default:
			probe := fmt.Sprintf("probe-%d", step)
			var pb []byte
			pb = append(pb, enc(&pgproto3.CopyFail{Message: "stress probe"})...)
			pb = append(pb, enc(&pgproto3.Sync{})...)
			pb = append(pb, enc(&pgproto3.Query{String: "rollback"})...)
			pb = append(pb, enc(&pgproto3.Query{String: "select '" + probe + "', first_name from clients where notes = 'seed-row'"})...)
			if werr == nil {
				_, werr = sc.c.Write(pb)
			}
			sc.c.SetReadDeadline(time.Now().Add(12 * time.Second))
			fatal, gotProbe := false, false
			for {
				m, err := sc.fe.Receive()
				if err != nil {
					var ne net.Error
					switch {
					case errors.As(err, &ne) && ne.Timeout():
						fail("HANG", fmt.Sprintf("no probe answer within 12s; received %s", strings.Join(ms, " ")))
					case invalid && fatal:
						outcome = "closed after FATAL"
					default:
						fail("BROKEN", fmt.Sprintf("connection ended (%v, write %v); received %s", err, werr, strings.Join(ms, " ")))
					}
					break
				}
				ms = append(ms, msgString(m))
				if len(ms) > 400 {
					ms = ms[len(ms)-200:]
				}
				switch m := m.(type) {
				case *pgproto3.ErrorResponse:
					if m.Severity == "FATAL" || m.Severity == "PANIC" {
						fatal = true
					}
				case *pgproto3.DataRow:
					for _, v := range m.Values {
						if cipher.LooksLikeEnvelope(v) || strings.Contains(string(v), "v1:") {
							fail("CIPHERTEXT", fmt.Sprintf("DataRow value %.60q", v))
						}
					}
					if len(m.Values) == 2 && string(m.Values[0]) == probe {
						gotProbe = true
						if string(m.Values[1]) != "seed-first" {
							fail("DESYNC", fmt.Sprintf("probe first_name = %.60q", m.Values[1]))
						}
					}
				case *pgproto3.CopyData:
					if strings.Contains(string(m.Data), "v1:") {
						fail("CIPHERTEXT", fmt.Sprintf("CopyData %.60q", m.Data))
					}
				case *pgproto3.ReadyForQuery:
					if gotProbe {
						outcome = "ok"
					}
				}
				if outcome != "" {
					break
				}
			}
		}
		tap := w.String()
		if i := strings.Index(tap[tapOff:], "SECRET-"); i >= 0 {
			at := tapOff + i
			fail("LEAK", fmt.Sprintf("plaintext reached PostgreSQL: %.80q", tap[max(0, at-20):]))
		}
		if strings.Contains(tap[tapOff:], "LATE-") {
			lateLeaks++
			if lateLeaks == 1 {
				fail("LEAK-LATE", "COPY data sent after a message that interrupted a policy COPY reached PostgreSQL in plaintext (reported once)")
			}
		}
		if strings.Contains(tap[tapOff:], "AFTER-TERMINATE") {
			fail("AFTER-TERMINATE", "a message after Terminate reached PostgreSQL")
		}
		tapOff = max(0, len(tap)-16)
		history = append(history, seqString(seq))
		outcomes[outcome]++
		if cancelTag != "" {
			outcomes["with cancel"]++
		}
		if outcome != "ok" || failed || r.Intn(10) == 0 {
			switch {
			case outcome == "ok" && r.Intn(2) == 0:
				sc.c.Write(enc(&pgproto3.Terminate{}))
			case outcome == "ok" && r.Intn(2) == 0:
				// Gone in the middle of a message.
				sc.c.Write(append(enc(&pgproto3.Parse{Query: "select 1"}), 'Q', 0, 0, 0, 100, 's', 'e'))
			}
			newSession()
		}
		if len(fails) >= 12 {
			t.Errorf("stopping after %d failures", len(fails))
			break
		}
	}
	sc.c.Close()
	// Stored values are envelopes only.
	noLeak(t, f, &wireTap{}, "SECRET-")
	var plain int
	if err := f.direct.QueryRow(ctx, "select count(*) from clients where first_name like 'SECRET-%' or last_name like 'SECRET-%' or phone like 'SECRET-%' or email like 'SECRET-%'").Scan(&plain); err != nil || plain != 0 {
		t.Errorf("plaintext stored in clients: %d rows (%v)", plain, err)
	}
	if logs := f.p.logs.String(); strings.Contains(logs, "panic") || strings.Contains(logs, "goroutine ") {
		t.Errorf("panic in the proxy log")
	}
	g1, fd1 := settle()
	// Sockets closed on the proxy's side after the sessions ended (under
	// the race detector this can trail the metric): give them time, a
	// leak stays.
	for deadline := time.Now().Add(5 * time.Second); fd1 > fd0+2 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
		fds, _ := os.ReadDir("/proc/self/fd")
		fd1 = len(fds)
	}
	t.Logf("seed %d: %d sequences %v, %d failures, %d LATE leaks; goroutines %d -> %d, fds %d -> %d", seed, sequences, outcomes, len(fails), lateLeaks, g0, g1, fd0, fd1)
	if g1 > g0+2 {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("goroutines grew from %d to %d\n%s", g0, g1, buf[:n])
	}
	if fd1 > fd0+2 {
		var open []string
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, e := range fds {
			target, _ := os.Readlink("/proc/self/fd/" + e.Name())
			open = append(open, e.Name()+"="+target)
		}
		t.Errorf("descriptors grew from %d to %d: %s", fd0, fd1, strings.Join(open, " "))
	}
}

// stressCancel waits for the tagged pg_sleep to run and cancels it through
// the proxy from a second connection.
func stressCancel(t *testing.T, f *encFixture, mon *pgx.Conn, sc *stressConn, tag string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		var n int
		if err := mon.QueryRow(ctx, "select count(*) from pg_stat_activity where state = 'active' and query like '%' || $1 || '%' and pid <> pg_backend_pid()", tag).Scan(&n); err == nil && n > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return // not running (skipped after an error): nothing to cancel
	}
	c, err := net.Dial("tcp", f.p.Addr)
	if err != nil {
		t.Errorf("cancel connection: %v", err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(enc(&pgproto3.CancelRequest{ProcessID: sc.pid, SecretKey: sc.secret}))
	io.Copy(io.Discard, c)
}

func seqString(seq []item) string {
	s := make([]string, len(seq))
	for i, it := range seq {
		s[i] = it.desc
	}
	return strings.Join(s, "\n  ")
}

func msgString(m pgproto3.BackendMessage) string {
	switch m := m.(type) {
	case *pgproto3.ErrorResponse:
		return fmt.Sprintf("E(%s %s %.60q)", m.Severity, m.Code, m.Message)
	case *pgproto3.ReadyForQuery:
		return "Z(" + string(m.TxStatus) + ")"
	case *pgproto3.DataRow:
		return fmt.Sprintf("D%d", len(m.Values))
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", m), "*pgproto3.")
}
