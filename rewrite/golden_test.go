package rewrite

import (
	"bufio"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt with the current plans")

// goldenCase is one block of a testdata file:
//
//	=== name
//	SQL, any number of lines
//	---
//	expected summary lines
type goldenCase struct {
	name, sql string
	want      []string
}

func readGolden(t *testing.T, path string) []goldenCase {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []goldenCase
	var cur *goldenCase
	inSQL := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "=== "):
			cases = append(cases, goldenCase{name: strings.TrimPrefix(line, "=== ")})
			cur, inSQL = &cases[len(cases)-1], true
		case cur == nil || strings.HasPrefix(line, "#"):
		case line == "---" && inSQL:
			inSQL = false
			cur.sql = strings.TrimSuffix(cur.sql, "\n")
		case inSQL:
			cur.sql += line + "\n"
		case line != "":
			cur.want = append(cur.want, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func writeGolden(t *testing.T, path string, cases []goldenCase) {
	var b strings.Builder
	b.WriteString("# Plans of larger statements: SQL, then ---, then the expected summary\n# (see summary in helpers_test.go). Regenerate with: go test -run Golden -update\n")
	for _, c := range cases {
		b.WriteString("\n=== " + c.name + "\n" + c.sql + "\n---\n")
		for _, l := range c.want {
			b.WriteString(l + "\n")
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGolden(t *testing.T) {
	const path = "testdata/plans.txt"
	cases := readGolden(t, path)
	a := newTestAnalyzer(t)
	for i, c := range cases {
		got := summary(c.sql, plan(t, a, c.sql))
		checkShape(t, a, c.sql)
		if *update {
			cases[i].want = got
			continue
		}
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s:\n%s\ngot:\n\t%s\nwant:\n\t%s", c.name, c.sql, strings.Join(got, "\n\t"), strings.Join(c.want, "\n\t"))
		}
	}
	if *update {
		writeGolden(t, path, cases)
	}
}
