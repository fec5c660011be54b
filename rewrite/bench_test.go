package rewrite

import (
	"fmt"
	"strings"
	"testing"
)

const benchSQL = `SELECT id, first_name, last_name, email, phone, medical_history FROM clients WHERE email = $1 AND id > $2 ORDER BY id LIMIT 10`

func BenchmarkAnalyzeCacheHit(b *testing.B) {
	a := newTestAnalyzer(b)
	if _, err := a.Analyze(benchSQL); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		a.Analyze(benchSQL)
	}
}

func BenchmarkAnalyzeCacheHitParallel(b *testing.B) {
	a := newTestAnalyzer(b)
	a.Analyze(benchSQL)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.Analyze(benchSQL)
		}
	})
}

// BenchmarkAnalyzeCacheMiss parses every time (cache disabled).
func BenchmarkAnalyzeCacheMiss(b *testing.B) {
	a := NewAnalyzer(testPolicy(b), Options{CacheSize: -1})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Analyze(benchSQL); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlanMemoized is the per-execution cost of step 2 once the
// statement has been planned with the same resolution.
func BenchmarkPlanMemoized(b *testing.B) {
	a := newTestAnalyzer(b)
	an, _ := a.Analyze(benchSQL)
	r := MapResolver(testRelations)
	an.Plan(r)
	b.ReportAllocs()
	for b.Loop() {
		an.Plan(r)
	}
}

// BenchmarkPlanBuild is step 2 without the memo (first execution, or after
// a change of resolution).
func BenchmarkPlanBuild(b *testing.B) {
	a := newTestAnalyzer(b)
	an, _ := a.Analyze(benchSQL)
	rels := map[RelName]Relation{}
	for _, n := range an.Relations() {
		rels[n] = testRelations[n]
	}
	b.ReportAllocs()
	for b.Loop() {
		buildPlan(an, rels)
	}
}

func BenchmarkMissAndPlanInsertLiterals(b *testing.B) {
	a := NewAnalyzer(testPolicy(b), Options{CacheSize: -1})
	sql := "INSERT INTO clients (first_name, last_name, email, medical_history) VALUES ('Ann', 'Lee', 'ann@example.org', 'history')"
	r := MapResolver(testRelations)
	b.ReportAllocs()
	for b.Loop() {
		an, _ := a.Analyze(sql)
		an.Plan(r)
	}
}

func BenchmarkRewrite(b *testing.B) {
	a := newTestAnalyzer(b)
	sql := "INSERT INTO clients (first_name, last_name, email, medical_history) VALUES ('Ann', 'Lee', 'ann@example.org', 'history')"
	an, _ := a.Analyze(sql)
	p := an.Plan(MapResolver(testRelations))
	repl := []string{"v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBBBBBBBBBB", "v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBBBBBBBBBB", "v1:siv:CCCCCCCCCCCCCCCCCCCCCCCC", "v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBBBBBBBBBB"}
	b.ReportAllocs()
	for b.Loop() {
		p.Rewrite(sql, repl)
	}
}

// BenchmarkShapeHitInsertLiterals is BenchmarkMissAndPlanInsertLiterals
// with the cache on: every text is new, its shape is not, so it is neither
// parsed nor planned from scratch.
func BenchmarkShapeHitInsertLiterals(b *testing.B) {
	a := newTestAnalyzer(b)
	r := MapResolver(testRelations)
	texts := make([]string, 1024)
	for i := range texts {
		texts[i] = fmt.Sprintf("INSERT INTO clients (first_name, last_name, email, medical_history) VALUES ('Ann%d', 'Lee', 'ann%d@example.org', 'history')", i, i)
	}
	an, _ := a.Analyze(texts[0])
	an.Plan(r)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		an, err := a.Analyze(texts[i%len(texts)])
		if err != nil {
			b.Fatal(err)
		}
		if len(an.Plan(r).Literals()) != 4 {
			b.Fatal("wrong plan")
		}
		i++
	}
	if a.CacheStats().Misses != 1 {
		b.Fatalf("parsed again: %+v", a.CacheStats())
	}
}

// BenchmarkMayChangeResolution is one of the word scans every statement
// that may carry policy values gets, over an INSERT with a 1 KB literal.
func BenchmarkMayChangeResolution(b *testing.B) {
	sql := "INSERT INTO clients (first_name, medical_history) VALUES ('Ann', '" + strings.Repeat("Type 2 diabetes, hypertension; metformin 500 mg. ", 21) + "')"
	b.SetBytes(int64(len(sql)))
	for b.Loop() {
		if MayChangeResolution(sql) {
			b.Fatal("changes resolution")
		}
	}
}

// BenchmarkScreenPassThrough is the text checks the proxy makes of a
// statement that names no policy table (pgbench's select) before relaying
// it unparsed.
func BenchmarkScreenPassThrough(b *testing.B) {
	a := newTestAnalyzer(b)
	sql := "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"
	for b.Loop() {
		if ContinuesAcrossComment(sql) || MentionsAnyWord(sql, []string{"array_nulls"}) || a.WritesCatalog(sql) ||
			a.ChangesNames(sql) || a.MayMentionValues(sql) || a.MayMention(sql) {
			b.Fatal("screened in")
		}
	}
}
