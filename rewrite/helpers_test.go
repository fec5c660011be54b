package rewrite

import (
	"fmt"
	"strings"
	"testing"
)

// testPolicy is the seed's Client model plus a few tables to exercise
// domains and modes.
func testPolicy(t testing.TB) *Policy {
	t.Helper()
	var specs []ColumnSpec
	add := func(schema, table, col string, mode Mode, ad string) {
		if ad == "" {
			ad = schema + "." + table + "." + col
		}
		if ad == "-" {
			ad = ""
		}
		specs = append(specs, ColumnSpec{Schema: schema, Table: table, Column: col, Mode: mode, AssociatedData: ad})
	}
	for _, c := range []string{"first_name", "last_name", "phone", "address", "medical_history", "emergency_contact_name", "emergency_contact_phone"} {
		add("public", "clients", c, Randomized, "")
	}
	add("public", "clients", "email", Deterministic, "")
	add("public", "legacy_notes", "body", Randomized, "-")
	add("public", "contacts", "email", Deterministic, "")
	add("public", "users", "email_a", Deterministic, "shared")
	add("public", "users", "email_b", Deterministic, "shared")
	add("public", "users", "note_r", Randomized, "shared")
	add("public", "nocols", "secret", Randomized, "")
	add("Mixed Case", "Patients", "SSN", Deterministic, "")
	p, err := NewPolicy(specs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var testRelations = map[RelName]Relation{}

func init() {
	tbl := func(schema, name string, cols ...string) Relation {
		return Relation{Kind: RelTable, Schema: schema, Name: name, Columns: cols}
	}
	clients := tbl("public", "clients", "id", "first_name", "last_name", "email", "phone", "address", "medical_history", "emergency_contact_name", "emergency_contact_phone", "created_at")
	for n, r := range map[string]Relation{
		"clients":             clients,
		"public.clients":      clients,
		"orders":              tbl("public", "orders", "id", "client_id", "note", "email", "total"),
		"contacts":            tbl("public", "contacts", "id", "email", "name"),
		"users":               tbl("public", "users", "id", "email_a", "email_b", "note_r"),
		"legacy_notes":        tbl("public", "legacy_notes", "id", "body"),
		"other.clients":       tbl("other", "clients", "id", "email"),
		"staging":             tbl("public", "staging", "email", "name", "first_name"),
		"nocols":              {Kind: RelTable, Schema: "public", Name: "nocols"},
		"unknowncols":         {Kind: RelTable, Schema: "public", Name: "unknowncols"},
		"client_view":         {Kind: RelView, Schema: "public", Name: "client_view"},
		"mv":                  {Kind: RelOther, Schema: "public", Name: "mv"},
		"Mixed Case.Patients": tbl("Mixed Case", "Patients", "id", "SSN"),
	} {
		rn := RelName{Name: n}
		if i := strings.LastIndexByte(n, '.'); i >= 0 {
			rn = RelName{Schema: n[:i], Name: n[i+1:]}
		}
		testRelations[rn] = r
	}
}

func newTestAnalyzer(t testing.TB) *Analyzer {
	return NewAnalyzer(testPolicy(t), Options{})
}

// summary renders a plan as readable lines for table tests.
func summary(sql string, p *Plan) []string {
	var out []string
	for _, pr := range p.Params() {
		s := fmt.Sprintf("param $%d %s %s", pr.Number, pr.Column, pr.Use)
		if pr.Array {
			s += " array"
		}
		out = append(out, s)
	}
	for _, l := range p.Literals() {
		out = append(out, fmt.Sprintf("literal %s=%q %s %s", sql[l.Start:l.End], l.Value, l.Column, l.Use))
	}
	for _, r := range p.Rejections() {
		s := "reject " + r.Reason.String()
		if r.Column != nil {
			s += " " + r.Column.String()
		}
		if r.Relaxable {
			s += " (read)"
		}
		out = append(out, s)
	}
	for _, n := range p.Notes() {
		s := "note " + n.Kind.String() + " " + n.Relation.String()
		if n.Write {
			s += " write"
		}
		out = append(out, s)
	}
	for i, st := range p.Statements() {
		if c := st.Copy; c != nil {
			dir := "to"
			if c.From {
				dir = "from"
			}
			var cols []string
			for _, col := range c.Columns {
				cols = append(cols, col.String())
			}
			out = append(out, fmt.Sprintf("copy %s stdio=%t %s [%s]", dir, c.Stdio, c.Format, strings.Join(cols, " ")))
		}
		if len(st.Prepared) > 0 {
			for _, pr := range st.Prepared {
				out = append(out, fmt.Sprintf("stmt %d prepared %s $%d %s %s", i, st.Name, pr.Number, pr.Column, pr.Use))
			}
		}
	}
	return out
}

func plan(t testing.TB, a *Analyzer, sql string) *Plan {
	t.Helper()
	an, err := a.Analyze(sql)
	if err != nil {
		t.Fatalf("Analyze(%q): %v", sql, err)
	}
	return an.Plan(MapResolver(testRelations))
}

type planCase struct {
	name string
	sql  string
	want []string // summary lines, in summary order
}

func runCases(t *testing.T, cases []planCase) {
	t.Helper()
	a := newTestAnalyzer(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := summary(tc.sql, plan(t, a, tc.sql))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("SQL: %s\ngot:\n\t%s\nwant:\n\t%s", tc.sql, strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
			checkShape(t, a, tc.sql)
		})
	}
}
