package rewrite

import (
	"fmt"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// TestExpandAcrossKeyVersions: a compared value that stands where several
// envelopes can replace it is written out for two key versions (A and B);
// one that does not stays one value (ExpandNone), which the proxy refuses
// while a column has values under several versions.
func TestExpandAcrossKeyVersions(t *testing.T) {
	a := newTestAnalyzer(t)
	cases := []struct {
		sql, want string
		params    string // "$n form" for each policy parameter
	}{
		{"select id from clients where email = $1",
			"select id from clients where email = ANY (pg_catalog.string_to_array($1, ','))", "$1 any"},
		{"select id from clients where email <> $1",
			"select id from clients where email <> ALL (pg_catalog.string_to_array($1, ','))", "$1 all"},
		{"select id from clients where email != $1 and id = 1",
			"select id from clients where email != ALL (pg_catalog.string_to_array($1, ',')) and id = 1", "$1 all"},
		{"select id from clients where email='x'",
			"select id from clients where email=ANY (ARRAY['A:x', 'B:x'])", ""},
		{"select id from clients where email <> E'it''s'",
			"select id from clients where email <> ALL (ARRAY['A:it''s', 'B:it''s'])", ""},
		{"select id from clients where email in ('x', 'y')",
			"select id from clients where email in ('A:x', 'B:x', 'A:y', 'B:y')", ""},
		{"select id from clients where email not in ($1, $2)",
			"select id from clients where email not in (SELECT pg_catalog.unnest(pg_catalog.string_to_array($1, ',') || pg_catalog.string_to_array($2, ',')))", "$1 list, $2 list"},
		{"select id from clients where email = any($1)",
			"select id from clients where email = any($1)", "$1 elems"},
		{"select id from clients where email <> all($1::text[])",
			"select id from clients where email <> all($1::text[])", "$1 elems"},
		{"select id from clients where email = any(array['x', $1])",
			"select id from clients where email = any(array['A:x', 'B:x', $1])", "$1 none"},
		{"select id from clients where email = all($1)",
			"select id from clients where email = all($1)", "$1 none"},
		{"select id from clients where email = $1::text",
			"select id from clients where email = $1::text", "$1 none"},
		{"select id from clients where 'x' = email",
			"select id from clients where '?' = email", ""},
		{"select id from clients where email in ($1, 'x')",
			"select id from clients where email in ($1, 'A:x', 'B:x')", "$1 none"},
		{"select id from clients where email is not distinct from 'x'",
			"select id from clients where email is not distinct from '?'", ""},
		{"insert into clients (email) select $1 where not exists (select 1 from clients where email = $1)",
			"insert into clients (email) select $1 where not exists (select 1 from clients where email = $1)", "$1 none"},
		{"update clients set first_name = $2 where email = $1",
			"update clients set first_name = $2 where email = ANY (pg_catalog.string_to_array($1, ','))", "$1 any, $2 none"},
		{"select id from clients where email = $1 or $1 is null",
			"select id from clients where email = ANY (pg_catalog.string_to_array($1, ',')) or $1 is null", "$1 any"},
		{"select id from clients where email in ($1, $2) and email <> $2",
			"select id from clients where email in (SELECT pg_catalog.unnest(pg_catalog.string_to_array($1, ',') || pg_catalog.string_to_array($2, ','))) and email <> ALL (pg_catalog.string_to_array($2, ','))", "$1 list, $2 list"},
		{"select id from clients where email in ($1, $2) and first_name = $2",
			"select id from clients where email in ($1, $2) and first_name = $2", "$1 none"},
		{"prepare p(text) as select id from clients where email = $1",
			"prepare p(text) as select id from clients where email = ANY (pg_catalog.string_to_array($1, ','))", "prepared $1 any"},
		{"alter table clients add constraint c check (email <> 'x')",
			"alter table clients add constraint c check (email <> '?')", ""},
	}
	for _, c := range cases {
		t.Run(c.sql, func(t *testing.T) {
			p := plan(t, a, c.sql)
			vals := make([][]string, len(p.Literals()))
			for i, l := range p.Literals() {
				if l.Expand == ExpandNone {
					vals[i] = []string{"?"}
				} else {
					vals[i] = []string{"A:" + l.Value, "B:" + l.Value}
				}
			}
			got, err := RewriteAll(c.sql, p.Literals(), vals, p.Splices())
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("rewritten\n got %s\nwant %s", got, c.want)
			}
			if _, err := pg_query.Parse(got); err != nil {
				t.Errorf("the rewritten text does not parse: %v", err)
			}
			var ps []string
			forms := []string{"none", "any", "all", "list", "elems"}
			for _, prm := range p.Params() {
				ps = append(ps, fmt.Sprintf("$%d %s", prm.Number, forms[prm.Expand]))
			}
			for _, st := range p.Statements() {
				for _, prm := range st.Prepared {
					ps = append(ps, fmt.Sprintf("prepared $%d %s", prm.Number, forms[prm.Expand]))
				}
			}
			if g := strings.Join(ps, ", "); g != c.params {
				t.Errorf("params %q, want %q", g, c.params)
			}
		})
	}
}
