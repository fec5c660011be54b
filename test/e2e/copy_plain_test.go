package e2e

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// TestCopyWithoutPolicyColumnsScenarios (review round 13): COPY of a plain
// table, with the client streaming ahead of CopyInResponse, through the
// simple and the extended protocol, with and without Flush and Sync, two
// COPYs in one Query, a failed transaction and a row error mid-COPY: the
// data reaches the table exactly when PostgreSQL runs the COPY, and the
// session never hangs.
func TestCopyWithoutPolicyColumnsScenarios(t *testing.T) {
	cases := map[string][]pgproto3.FrontendMessage{
		"ext-exec-sync-ahead": {
			&pgproto3.Parse{Query: "copy plain_t (v) from stdin"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
			&pgproto3.CopyData{Data: []byte("a1\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{},
		},
		"ext-no-flush-ahead": {
			&pgproto3.Parse{Query: "copy plain_t (v) from stdin"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.CopyData{Data: []byte("a2\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{},
		},
		"two-copies-ahead": {
			&pgproto3.Query{String: "copy plain_t (v) from stdin; copy plain_t (v) from stdin"},
			&pgproto3.CopyData{Data: []byte("a3\n")}, &pgproto3.CopyDone{},
			&pgproto3.CopyData{Data: []byte("a4\n")}, &pgproto3.CopyDone{},
		},
		"failed-tx-ahead": {
			&pgproto3.Query{String: "begin; select 1/0"},
			&pgproto3.Query{String: "copy plain_t (v) from stdin"},
			&pgproto3.CopyData{Data: []byte("a5\n")}, &pgproto3.CopyDone{},
			&pgproto3.Query{String: "rollback"},
		},
		"copy-fail-mid": {
			&pgproto3.Query{String: "copy plain_t (n) from stdin"},
			&pgproto3.CopyData{Data: []byte("x\n")}, &pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{},
		},
		"ext-copy-fail-mid": {
			&pgproto3.Parse{Query: "copy plain_t (n) from stdin"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
			&pgproto3.CopyData{Data: []byte("x\n")}, &pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{},
		},
	}
	wantZ := map[string]int{"ext-exec-sync-ahead": 1, "ext-no-flush-ahead": 1, "two-copies-ahead": 1, "failed-tx-ahead": 3, "copy-fail-mid": 1, "ext-copy-fail-mid": 1}
	for name, ms := range cases {
		for _, r := range reproRelays {
			t.Run(name+"/"+r.name, func(t *testing.T) {
				_, _, sc, _ := reproSetup(t, r.loops)
				sendAll(t, sc, ms...)
				if _, err := readZ(t, sc, wantZ[name]); err != nil {
					t.Fatalf("%v (hang)", err)
				}
				sendAll(t, sc, &pgproto3.Query{String: "select string_agg(v, ',' order by id) from plain_t"})
				out, err := readZ(t, sc, 1)
				if err != nil {
					t.Fatalf("%v (hang after)", err)
				}
				for _, m := range out {
					if d, ok := m.(*pgproto3.DataRow); ok {
						t.Logf("ROWS %s: %q", name, d.Values[0])
					}
				}
			})
		}
	}
}
