package rewrite

import (
	"errors"
	"testing"
)

func TestStatements(t *testing.T) {
	a := newTestAnalyzer(t)
	sql := "SELECT 1; INSERT INTO clients (email) VALUES ('a') ;UPDATE orders SET note = 'x'; DELETE FROM orders; COPY orders TO STDOUT; EXPLAIN SELECT 1; BEGIN; DISCARD ALL; CALL p(); DO $$ $$"
	p := plan(t, a, sql)
	want := []StmtKind{StmtSelect, StmtInsert, StmtUpdate, StmtDelete, StmtCopy, StmtExplain, StmtOther, StmtDeallocate, StmtCall, StmtDo}
	sts := p.Statements()
	if len(sts) != len(want) {
		t.Fatalf("%d statements", len(sts))
	}
	texts := []string{"SELECT 1", " INSERT INTO clients (email) VALUES ('a') ", "UPDATE orders SET note = 'x'"}
	for i, st := range sts {
		if st.Kind != want[i] {
			t.Errorf("statement %d kind %v, want %v", i, st.Kind, want[i])
		}
		if i < len(texts) && sql[st.Start:st.End] != texts[i] {
			t.Errorf("statement %d text %q", i, sql[st.Start:st.End])
		}
	}
	if l := p.Literals(); len(l) != 1 || l[0].Statement != 1 {
		t.Errorf("literals %v", l)
	}
}

func TestPrepareExecute(t *testing.T) {
	a := newTestAnalyzer(t)
	prep := plan(t, a, "PREPARE ins(text, text) AS INSERT INTO clients (email, phone, address) VALUES ($1, $2, 'lit')")
	st := prep.Statements()[0]
	if st.Kind != StmtPrepare || st.Name != "ins" || len(st.Prepared) != 2 || len(prep.Params()) != 0 {
		t.Fatalf("prepare: %+v params %v", st, prep.Params())
	}
	if l := prep.Literals(); len(l) != 1 || l[0].Column.Name() != "address" {
		t.Errorf("literal in PREPARE text: %v", l)
	}

	sql := "EXECUTE ins('a@x', NULL)"
	ex := plan(t, a, sql)
	est := ex.Statements()[0]
	if est.Kind != StmtExecute || est.Name != "ins" || len(est.Execute) != 2 {
		t.Fatalf("execute: %+v", est)
	}
	lits, params, err := est.ExecuteLiterals(0, st.Prepared)
	if err != nil || len(params) != 0 || len(lits) != 1 || sql[lits[0].Start:lits[0].End] != "'a@x'" || lits[0].Value != "a@x" || lits[0].Column.Name() != "email" {
		t.Fatalf("ExecuteLiterals: %v %v %v", lits, params, err)
	}
	out, err := Rewrite(sql, lits, []string{"ENV"})
	if err != nil || out != "EXECUTE ins('ENV', NULL)" {
		t.Errorf("rewrite: %q %v", out, err)
	}

	// Extended protocol: EXECUTE ins($1, $2)
	ex2 := plan(t, a, "EXECUTE ins($2, $1::text)")
	_, params, err = ex2.Statements()[0].ExecuteLiterals(0, st.Prepared)
	if err != nil || len(params) != 2 || params[0].Number != 2 || params[0].Column.Name() != "email" || params[1].Number != 1 {
		t.Errorf("params: %v %v", params, err)
	}

	// An expression cannot be encrypted.
	ex3 := plan(t, a, "EXECUTE ins(lower('A'), '5'::int)")
	_, _, err = ex3.Statements()[0].ExecuteLiterals(0, st.Prepared)
	var r *Rejection
	if !errors.As(err, &r) || r.Reason != ReasonPlaintextWrite || r.Relaxable {
		t.Errorf("expression argument: %v", err)
	}

	// EXPLAIN EXECUTE and CREATE TABLE AS EXECUTE carry the arguments too.
	for _, s := range []string{"EXPLAIN ANALYZE EXECUTE ins('a', 'b')", "CREATE TABLE t AS EXECUTE ins('a', 'b')"} {
		if st := plan(t, a, s).Statements()[0]; st.Name != "ins" || len(st.Execute) != 2 {
			t.Errorf("%s: %+v", s, st)
		}
	}

	de := plan(t, a, "DEALLOCATE ins; DEALLOCATE ALL").Statements()
	if de[0].Kind != StmtDeallocate || de[0].Name != "ins" || de[1].Name != "" {
		t.Errorf("deallocate: %+v", de)
	}
}

func TestPrepareDeclaredTypes(t *testing.T) {
	runCases(t, []planCase{
		{"text and varchar", "PREPARE p(text, varchar) AS INSERT INTO clients (email, phone) VALUES ($1, $2)", []string{
			"stmt 0 prepared p $1 public.clients.email write",
			"stmt 0 prepared p $2 public.clients.phone write",
		}},
		{"integer", "PREPARE p(int) AS INSERT INTO clients (email) VALUES ($1)", []string{
			"reject cast public.clients.email",
		}},
		{"length-limited", "PREPARE p(varchar(20)) AS SELECT id FROM clients WHERE email = $1", []string{
			"reject cast public.clients.email (read)",
		}},
		{"array for = ANY", "PREPARE p(text[]) AS SELECT id FROM clients WHERE email = ANY($1)", []string{
			"stmt 0 prepared p $1 public.clients.email compare",
		}},
	})
}
