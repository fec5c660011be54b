package e2e

// Write forms found in a third review that stored plaintext: * expansions
// that shift column positions, forward references and multi-step flows in
// WITH RECURSIVE. Each must be encrypted or refused.

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

type r3case struct {
	name string
	pre  string // direct setup
	sql  string
	args []any
}

func TestFailClosedWriteForms(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := context.Background()
	cases := []r3case{
		{name: "recursive_forward_shadow", sql: "WITH RECURSIVE a AS (SELECT body FROM legacy_notes), legacy_notes AS (SELECT 'SECRET1'::text AS body) INSERT INTO legacy_notes (body) SELECT body FROM a"},
		{name: "recursive_forward_plain", sql: "WITH RECURSIVE a AS (SELECT v FROM b), b AS (SELECT 'SECRET2'::text AS v) INSERT INTO legacy_notes (body) SELECT v FROM a"},
		{name: "recursive_depth", sql: "WITH RECURSIVE r(a,b,c,n) AS (SELECT 'S3a'::text, 'S3b'::text, 'SECRET3'::text, 1 UNION ALL SELECT b, c, c, n+1 FROM r WHERE n < 3) INSERT INTO legacy_notes (body) SELECT a FROM r"},
		{name: "recursive_depth_fn", sql: "WITH RECURSIVE r(a,b,c,n) AS (SELECT 'S3a'::text, 'S3b'::text, 'S3c'::text, 1 UNION ALL SELECT b, c, upper(a), n+1 FROM r WHERE n < 3) INSERT INTO legacy_notes (body) SELECT a FROM r"},
		{name: "indirection_star_select", sql: "INSERT INTO legacy_notes (id, body) SELECT (w).* FROM (SELECT 100 AS a, 'SECRET4'::text AS b) w"},
		{name: "indirection_star_values", sql: "INSERT INTO legacy_notes (id, body) VALUES ((ROW(101, 'SECRET5')::legacy_notes).*)"},
		{name: "indirection_star_values_nocols", sql: "INSERT INTO legacy_notes VALUES ((ROW(102, 'SECRET6')::legacy_notes).*)"},
		{name: "indirection_star_params", sql: "INSERT INTO legacy_notes (id, body) VALUES ((ROW($1::int, $2::text)::legacy_notes).*)", args: []any{103, "SECRET7"}},
		{name: "merge_values_star", sql: "MERGE INTO legacy_notes t USING (SELECT 104 AS id, 'SECRET8'::text AS b) s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id, body) VALUES (s.*)"},
		{name: "update_multiassign_star", pre: "INSERT INTO legacy_notes (id, body) VALUES (105, NULL)", sql: "UPDATE legacy_notes SET (id, body) = (SELECT (w).* FROM (SELECT 105 AS a, 'SECRET9'::text AS b) w) WHERE id = 105"},
		{name: "onconflict_multiassign_star", pre: "INSERT INTO legacy_notes (id, body) VALUES (106, NULL)", sql: "INSERT INTO legacy_notes (id, body) VALUES (106, NULL) ON CONFLICT (id) DO UPDATE SET (id, body) = (SELECT (w).* FROM (SELECT 106 AS a, 'SECRET10'::text AS b) w)"},
		{name: "cte_cycle_mark", sql: "WITH RECURSIVE r(a) AS (SELECT 107 UNION ALL SELECT a FROM r) CYCLE a SET m TO 'SECRET11' DEFAULT 'SECRET11b' USING p INSERT INTO legacy_notes (id, body) SELECT * FROM r"},
		{name: "cte_search_col", sql: "WITH RECURSIVE r(a, x) AS (SELECT 108, 'SECRET12'::text UNION ALL SELECT a+1, x FROM r WHERE a < 108) SEARCH DEPTH FIRST BY x SET s INSERT INTO legacy_notes (id, body, id) SELECT * FROM r"},
		{name: "cte_search_col2", sql: "WITH RECURSIVE r(a, x) AS (SELECT 108, 'SECRET12'::text UNION ALL SELECT a+1, x FROM r WHERE a < 108) SEARCH DEPTH FIRST BY x SET s INSERT INTO legacy_notes (id, body) SELECT a, s FROM r"},
		{name: "cte_search_star_shift", sql: "INSERT INTO legacy_notes (id, body) SELECT * FROM (WITH RECURSIVE r(x) AS (SELECT 'SECRET13'::text UNION ALL SELECT x FROM r WHERE false) SEARCH BREADTH FIRST BY x SET s SELECT 109 AS k, r.* FROM r) q(k, x)"},
		// literals
		{name: "adjacent_strings", sql: "INSERT INTO legacy_notes (body) VALUES ('SEC'\n'RET14')"},
		{name: "adjacent_strings_comment", sql: "INSERT INTO legacy_notes (body) VALUES ('SEC' -- c\n 'RET15')"},
		{name: "adjacent_strings_ccomment", sql: "INSERT INTO legacy_notes (body) VALUES ('SEC' /* x */\n/* y */ 'RET16')"},
		{name: "estring", sql: `INSERT INTO legacy_notes (body) VALUES (E'SEC\'RET\x41\n17' E'x')`},
		{name: "ustring", sql: `INSERT INTO legacy_notes (body) VALUES (U&'!0053ECRET18' UESCAPE '!')`},
		{name: "ustring_cont", sql: "INSERT INTO legacy_notes (body) VALUES (U&'SEC'\n'RET19')"},
		{name: "dollar", sql: "INSERT INTO legacy_notes (body) VALUES ($t$SECRET20$t$)"},
		{name: "typed", sql: "INSERT INTO legacy_notes (body) VALUES (text 'SECRET21'), (varchar 'SECRET21b'), (pg_catalog.text 'SECRET21c')"},
		{name: "neg", sql: "INSERT INTO legacy_notes (body) VALUES (- /*x*/ 42), (-0x2A), (1_000), (.5), (TRUE)"},
		{name: "collate", sql: `INSERT INTO legacy_notes (body) VALUES ('SECRET22' COLLATE "C")`},
		{name: "nullif", sql: `INSERT INTO legacy_notes (body) VALUES (NULLIF('SECRET23', 'x'))`},
		{name: "ctes_mat", sql: "WITH s AS MATERIALIZED (SELECT 'SECRET24' AS v), u AS (SELECT v FROM s UNION ALL SELECT 'SECRET24b') INSERT INTO legacy_notes (body) SELECT v FROM u"},
		{name: "update_from_param", pre: "INSERT INTO legacy_notes (id, body) VALUES (110, NULL)", sql: "UPDATE legacy_notes SET body = s.x FROM (SELECT $1::text AS x) s WHERE id = 110", args: []any{"SECRET25"}},
		{name: "oc_excluded", pre: "INSERT INTO legacy_notes (id, body) VALUES (111, NULL)", sql: "INSERT INTO legacy_notes AS l (id, body) VALUES (111, 'SECRET26') ON CONFLICT (id) DO UPDATE SET body = (SELECT excluded.body)"},
		{name: "dm_cte_chain", sql: "WITH a AS (INSERT INTO tenant.clients (first_name) VALUES ('SECRET27') RETURNING first_name) INSERT INTO legacy_notes (body) SELECT first_name FROM a"},
		{name: "param_twice", sql: "INSERT INTO legacy_notes (body) SELECT $1::text WHERE $1::text IS NOT NULL UNION ALL SELECT $1", args: []any{"SECRET28"}},
		{name: "shadow_cte_simple", sql: "WITH legacy_notes AS (SELECT 'SECRET29'::text AS body) INSERT INTO legacy_notes (body) SELECT body FROM legacy_notes"},
		{name: "values_orderby", sql: "INSERT INTO legacy_notes (id, body) VALUES (112, 'SECRET30') ORDER BY 1 LIMIT 1"},
		{name: "values_lateral_star", sql: "INSERT INTO legacy_notes (id, body) SELECT v.* FROM (VALUES (113, 'SECRET31')) v"},
		{name: "rowexpr_star_in_row", pre: "INSERT INTO legacy_notes (id, body) VALUES (114, NULL)", sql: "UPDATE legacy_notes SET (id, body) = ROW((ROW(114, 'SECRET32')::legacy_notes).*) WHERE id = 114"},
	}
	for _, c := range cases {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			name := c.name + "/" + map[pgx.QueryExecMode]string{pgx.QueryExecModeSimpleProtocol: "simple", pgx.QueryExecModeExec: "ext"}[mode]
			t.Run(name, func(t *testing.T) {
				if _, err := f.direct.Exec(ctx, "DELETE FROM legacy_notes; DELETE FROM tenant.clients"); err != nil {
					t.Fatal(err)
				}
				if c.pre != "" {
					if _, err := f.direct.Exec(ctx, c.pre); err != nil {
						t.Fatal(err)
					}
				}
				conn := f.connect(t, mode)
				defer conn.Close(ctx)
				_, err := conn.Exec(ctx, c.sql, c.args...)
				rows, _ := pgx.CollectRows(must(f.direct.Query(ctx, "select coalesce(body,'<NULL>') from legacy_notes")), pgx.RowTo[string])
				leak := false
				for _, v := range rows {
					if v != "<NULL>" && !cipher.LooksLikeEnvelope([]byte(v)) {
						leak = true
					}
				}
				// read back through proxy
				var back []string
				if err == nil {
					rs, qerr := conn.Query(ctx, "select body from legacy_notes", pgx.QueryExecModeSimpleProtocol)
					if qerr == nil {
						bs, _ := pgx.CollectRows(rs, pgx.RowTo[*string])
						for _, b := range bs {
							if b == nil {
								back = append(back, "<NULL>")
							} else {
								back = append(back, *b)
							}
						}
					}
				}
				if leak {
					t.Errorf("RESULT %s LEAK err=%v stored=%q", name, err, rows)
				} else {
					t.Logf("RESULT %s ok err=%v stored=%.200q back=%q", name, err, rows, back)
				}
			})
		}
	}
}

// TestFailClosedPrepareForms: a fourth review's findings. EXPLAIN ANALYZE
// runs the EXECUTE it explains; a PREPARE inside a Parse takes effect only if
// executed; CREATE TABLE AS and SELECT INTO can create a policy table full of
// plaintext.
func TestFailClosedPrepareForms(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeSimpleProtocol)
	if _, err := conn.Exec(ctx, "prepare p as insert into legacy_notes (body) values ($1); explain analyze execute p('SECRET-EXPLAIN-1')"); err != nil {
		t.Fatal(err)
	}
	pc := conn.PgConn()
	// Through Parse too: the arguments are encrypted for the p of the
	// moment, and the Execute checks that p still holds it.
	if err := pc.ExecParams(ctx, "explain (analyze) execute p('SECRET-EXPLAIN-2')", nil, nil, nil, nil).Read().Err; err != nil {
		t.Fatalf("EXECUTE with arguments inside a Parse: %v", err)
	}
	f.failStored(t, "SECRET")
	if err := pc.ExecParams(ctx, "prepare p2 as select $1::text from legacy_notes", nil, nil, nil, nil).Read().Err; err != nil {
		t.Fatalf("PREPARE inside a Parse: %v", err)
	}
	var pgErr *pgconn.PgError
	for _, q := range []string{
		"create table legacy_notes_copy as select 1",
		"drop table legacy_notes; create table legacy_notes as select 1 as id, 'SECRET-CTAS'::text as body",
		"select 1 as id, 'SECRET-INTO'::text as body into legacy_notes",
	} {
		_, err := conn.Exec(ctx, q)
		if strings.Contains(q, "legacy_notes_copy") {
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			continue
		}
		if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
			t.Fatalf("%s: %v, want 0A000", q, err)
		}
	}
	f.failStored(t, "SECRET")
}
