package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/track"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

func TestWithoutPlusMechanisms(t *testing.T) {
	body := []byte("\x00\x00\x00\x0aSCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00")
	got := withoutPlusMechanisms(body)
	if want := []byte("\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00"); !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestErrorFields(t *testing.T) {
	e := errorMessage("FATAL", "57P01", "bye", "")
	body := e[5:]
	if f := parseError(body); !f.fatal() || f.code != "57P01" || f.message != "bye" {
		t.Fatalf("parsed %+v", f)
	}
	if l := int(binary.BigEndian.Uint32(e[1:])); l != len(e)-1 {
		t.Fatalf("length field %d for %d bytes", l, len(e)-1)
	}
	if parseError(errorMessage("ERROR", "42601", "x", "")[5:]).fatal() {
		t.Fatal("ERROR taken for FATAL")
	}
}

// fuzzSession is a session with the seed-like policy and a catalog mapping
// table OID 16384, attnums 1 and 2, to two policy columns.
func fuzzSession(t testing.TB) *session {
	key, err := cipher.ParseKey("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")
	if err != nil {
		t.Fatal(err)
	}
	kr, err := cipher.NewKeyring("v1", map[string]cipher.Key{"v1": key})
	if err != nil {
		t.Fatal(err)
	}
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy([]ColumnSpec{
		{Schema: "public", Table: "t", Column: "a"},
		{Schema: "public", Table: "t", Column: "b", Deterministic: true},
	}, kr, false, m)
	if err != nil {
		t.Fatal(err)
	}
	sp := &sessionPolicy{p: p}
	cat := &catalog{cols: map[colKey]*policyColumn{{16384, 1}: p.cols[0], {16384, 2}: p.cols[1]}}
	sp.cat.Store(cat)
	srv := &Server{m: m, log: slog.New(slog.DiscardHandler)}
	return &session{srv: srv, pol: sp, log: srv.log, track: newTracker()}
}

func rowDescription(oids ...uint32) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(oids)))
	for i, oid := range oids {
		b = append(b, 'f', 0)
		b = binary.BigEndian.AppendUint32(b, oid)
		b = binary.BigEndian.AppendUint16(b, uint16(i+1))
		b = append(b, make([]byte, 12)...)
	}
	return b
}

func dataRow(vals ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(vals)))
	for _, v := range vals {
		if v == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

// TestDecryptRow decrypts the policy fields of a row and leaves the others,
// NULLs and plaintext as they are.
func TestDecryptRow(t *testing.T) {
	s := fuzzSession(t)
	shape := s.rowShapeOf(rowDescription(16384, 16384, 99))
	if !shape.any || shape.cols[0] == nil || shape.cols[1] == nil || shape.cols[2] != nil {
		t.Fatalf("shape %+v", shape)
	}
	a, _ := s.pol.p.cols[0].cipher().Encrypt(nil, []byte("alpha"))
	out, err := s.decryptRow(dataRow(a, []byte("stored before backfill"), []byte("v1:not:ours")), shape)
	if err != nil {
		t.Fatal(err)
	}
	if want := dataRow([]byte("alpha"), []byte("stored before backfill"), []byte("v1:not:ours")); !bytes.Equal(out, want) {
		t.Fatalf("got %q, want %q", out, want)
	}
	out, err = s.decryptRow(dataRow(nil, nil, nil), shape)
	if err != nil || !bytes.Equal(out, dataRow(nil, nil, nil)) {
		t.Fatalf("NULLs: %q, %v", out, err)
	}
	// A row of more fields than described would relay the rest as it is.
	if _, err := s.decryptRow(dataRow(nil, nil, nil, a), shape); err == nil {
		t.Fatal("a row longer than its description was relayed")
	}
}

// Envelopes in a server's error and notice texts are replaced, field by
// field, and the message keeps its structure.
func TestRedactEnvelopes(t *testing.T) {
	s := fuzzSession(t)
	a, _ := s.pol.p.cols[0].cipher().Encrypt(nil, []byte("alpha"))
	msg := &pgproto3.ErrorResponse{Severity: "ERROR", Code: "23502", Message: "null value in column",
		Detail: "Failing row contains (1, " + string(a) + ", " + string(a) + ").", Where: string(a)}
	body, err := msg.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	body = body[5:]
	if got := redactEnvelopes(body); bytes.Contains(got, a) {
		t.Fatalf("an envelope is left: %q", got)
	} else {
		var back pgproto3.ErrorResponse
		if err := back.Decode(got); err != nil || back.Detail != "Failing row contains (1, <encrypted>, <encrypted>)." || back.Where != "<encrypted>" || back.Code != "23502" {
			t.Fatalf("redacted %+v, %v", back, err)
		}
	}
	notify := append([]byte{0, 0, 0, 7}, []byte("c16\x00"+string(a)+"\x00")...)
	if got := redactCStrings(notify, 4); !bytes.Equal(got, append([]byte{0, 0, 0, 7}, []byte("c16\x00<encrypted>\x00")...)) {
		t.Errorf("notification payload: %q", got)
	}
	plain := []byte("SERROR\x00Mno envelope: 10:30:00\x00\x00")
	if got := redactEnvelopes(plain); &got[0] != &plain[0] {
		t.Error("a body without envelopes was copied")
	}
}

// FuzzServerBodies feeds arbitrary bytes to the parsers of server messages
// the proxy reads (RowDescription, DataRow, ErrorResponse, SASL mechanism
// lists): they must return errors, never panic.
func FuzzServerBodies(f *testing.F) {
	s := fuzzSession(f)
	a, _ := s.pol.p.cols[0].cipher().Encrypt(nil, []byte("alpha"))
	f.Add(rowDescription(16384, 16384), dataRow(a, nil))
	f.Add([]byte{0, 1}, []byte{0, 1, 0, 0, 0, 5, 'x'})
	f.Add([]byte{}, []byte{0xff, 0xff})
	f.Add(errorMessage("FATAL", "57P01", "bye", "h")[5:], []byte("\x00\x00\x00\x0aSCRAM-SHA-256-PLUS\x00"))
	f.Add([]byte{}, append(append([]byte("SERROR\x00DFailing row contains ("), a...), []byte(")\x00\x00")...))
	f.Fuzz(func(t *testing.T, desc, row []byte) {
		shape := s.rowShapeOf(desc)
		if shape.any {
			s.decryptRow(row, shape)
		}
		s.decryptRow(row, &rowShape{cols: []*policyColumn{s.pol.p.cols[0], nil, s.pol.p.cols[1]}, any: true})
		parseError(row)
		if len(row) >= 4 {
			withoutPlusMechanisms(row)
		}
		cstring(row)
		// Redaction keeps the fields and removes every envelope.
		for _, got := range [][]byte{redactEnvelopes(row), redactCStrings(row, min(4, len(row)))} {
			if bytes.Count(got, []byte{0}) != bytes.Count(row, []byte{0}) {
				t.Fatalf("redaction of %q changed its fields: %q", row, got)
			}
		}
		if out := redactCStrings(row, 0); bytes.IndexByte(row, 0) >= 0 {
			pieces := bytes.Split(out, []byte{0})
			for _, f := range pieces[:len(pieces)-1] { // the NUL-terminated ones
				if s, _ := cipher.FindEnvelope(f); s >= 0 && !bytes.Contains(f, []byte(redactedEnvelope)) {
					t.Fatalf("an envelope is left in %q", f)
				}
			}
		}
	})
}

// FuzzEncryptParams: the hand-written Bind rewriter never panics on client
// bytes, and for every Bind pgproto3 accepts, its output is a valid Bind
// with the same shape whose policy parameters are envelopes of the inputs
// and whose other parameters are unchanged.
func FuzzEncryptParams(f *testing.F) {
	s := fuzzSession(f)
	params := []rewrite.Param{{Number: 1, Column: s.pol.p.cols[0].rc}, {Number: 3, Column: s.pol.p.cols[1].rc}}
	seed := func(b pgproto3.Bind) []byte {
		out, _ := b.Encode(nil)
		return out[5:]
	}
	f.Add(seed(pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s", Parameters: [][]byte{[]byte("a"), []byte("b"), []byte("c")}}))
	f.Add(seed(pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{nil, []byte("b")}, ResultFormatCodes: []int16{0, 1}}))
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := s.encryptParams(body, params)
		var in pgproto3.Bind
		if in.Decode(body) != nil {
			return
		}
		if err != nil {
			t.Fatalf("pgproto3 accepts the Bind but encryptParams says %v", err)
		}
		var got pgproto3.Bind
		if err := got.Decode(out); err != nil {
			t.Fatalf("output does not decode: %v", err)
		}
		if len(got.Parameters) != len(in.Parameters) || fmt.Sprint(got.ResultFormatCodes) != fmt.Sprint(in.ResultFormatCodes) ||
			fmt.Sprint(got.ParameterFormatCodes) != fmt.Sprint(in.ParameterFormatCodes) || got.DestinationPortal != in.DestinationPortal {
			t.Fatalf("shape changed")
		}
		for i, v := range in.Parameters {
			enc := i == 0 || i == 2
			switch {
			case v == nil:
				if got.Parameters[i] != nil {
					t.Fatalf("NULL $%d became a value", i+1)
				}
			case enc:
				col := s.pol.p.cols[0]
				if i == 2 {
					col = s.pol.p.cols[1]
				}
				plain, err := col.cipher().Decrypt(nil, got.Parameters[i])
				if err != nil || !bytes.Equal(plain, v) {
					t.Fatalf("$%d does not decrypt to its input: %v", i+1, err)
				}
			default:
				if !bytes.Equal(got.Parameters[i], v) {
					t.Fatalf("$%d changed", i+1)
				}
			}
		}
	})
}

func TestEndsTransaction(t *testing.T) {
	for _, c := range []struct {
		typ  byte
		body string
		want bool
	}{
		{'Q', "rollback\x00", true},
		{'Q', "  ROLLBACK TO SAVEPOINT a\x00", true},
		{'Q', "abort;\x00", true},
		{'Q', "\n\tRollback\x00", true},
		{'Q', "commit\x00", false},
		{'Q', "rollbacks\x00", false},
		{'Q', "select 'rollback'\x00", false},
		{'P', "s1\x00rollback\x00\x00\x00", true},
		{'P', "rollback\x00select 1\x00\x00\x00", false},
		{'P', "noterminator", false},
	} {
		if got := endsTransaction(c.typ, []byte(c.body)); got != c.want {
			t.Errorf("endsTransaction(%c, %q) = %v, want %v", c.typ, c.body, got, c.want)
		}
	}
}

// serverSays feeds s's server side the given messages (type, body) and
// returns what reached the client, and backend's error for the last one.
func serverSays(t *testing.T, s *session, msgs ...[]byte) ([]byte, error) {
	t.Helper()
	var in, out bytes.Buffer
	for _, m := range msgs {
		in.WriteByte(m[0])
		in.Write(binary.BigEndian.AppendUint32(nil, uint32(len(m)+3)))
		in.Write(m[1:])
	}
	s.sr = wire.NewReader(&in, 1<<20)
	s.cw = wire.NewWriter(&out)
	var err error
	for range msgs {
		typ, n, herr := s.sr.Header()
		if herr != nil {
			t.Fatal(herr)
		}
		if err = s.backend(typ, n); err != nil {
			break
		}
	}
	s.cw.Flush()
	return out.Bytes(), err
}

// TestDesyncEndsSession: an answer the proxy cannot place ends the session
// with a protocol error, never a silent resync; a FATAL error while idle
// is relayed.
func TestDesyncEndsSession(t *testing.T) {
	var pe *wire.ProtocolError
	s := fuzzSession(t)
	s.track.Send(track.Parse, expectation{})
	s.track.Send(track.Sync, expectation{})
	// ReadyForQuery while the answer to Parse is outstanding.
	if _, err := serverSays(t, s, []byte{'Z', 'I'}); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "out of turn") {
		t.Fatalf("out-of-turn ReadyForQuery: %v", err)
	}
	// CommandComplete with nothing outstanding.
	s = fuzzSession(t)
	if _, err := serverSays(t, s, append([]byte{'C'}, "SELECT 1\x00"...)); !errors.As(err, &pe) {
		t.Fatalf("an answer to nothing: %v", err)
	}
	// A FATAL error while idle reaches the client.
	s = fuzzSession(t)
	fatal := errorMessage("FATAL", "57P01", "terminating connection due to administrator command", "")
	out, err := serverSays(t, s, append([]byte{'E'}, fatal[5:]...))
	if err != nil || !bytes.Equal(out, fatal) {
		t.Fatalf("FATAL while idle: %v, client got %q", err, out)
	}
	// In turn: Parse, then Sync.
	s = fuzzSession(t)
	s.track.Send(track.Parse, expectation{})
	s.track.Send(track.Sync, expectation{})
	if _, err := serverSays(t, s, []byte{'1'}, []byte{'Z', 'I'}); err != nil {
		t.Fatalf("in turn: %v", err)
	}
}

func TestOnlyEndsTransaction(t *testing.T) {
	for sql, want := range map[string]bool{
		"COMMIT": true, " commit ;\n": true, "END": true, "rollback;": true, "ABORT": true, "COMMIT AND CHAIN": true,
		"COMMIT; INSERT INTO clients VALUES ('x')": false, "commit -- x": false, "ROLLBACK TO SAVEPOINT a": true,
		"SELECT 1": false, "committed": false, "": false,
	} {
		if got := onlyEndsTransaction(sql); got != want {
			t.Errorf("onlyEndsTransaction(%q) = %v, want %v", sql, got, want)
		}
	}
}
