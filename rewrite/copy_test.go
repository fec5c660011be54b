package rewrite

import (
	"strings"
	"testing"
)

func TestCopy(t *testing.T) {
	runCases(t, []planCase{
		{"FROM STDIN with column list", "COPY clients (id, email, phone) FROM STDIN", []string{
			"copy from stdio=true text [<nil> public.clients.email public.clients.phone]",
		}},
		{"FROM STDIN csv, legacy options", "COPY clients (email) FROM STDIN WITH CSV HEADER DELIMITER ';'", []string{
			"copy from stdio=true csv [public.clients.email]",
		}},
		{"FROM STDIN binary without column list", "COPY legacy_notes FROM STDIN (FORMAT binary)", []string{
			"copy from stdio=true binary [<nil> public.legacy_notes.body]",
		}},
		{"without column list, order unknown", "COPY nocols FROM STDIN", []string{
			"reject columns_unknown",
			"copy from stdio=true text []",
		}},
		{"TO STDOUT", "COPY clients (email, id) TO STDOUT (FORMAT csv)", []string{
			"copy to stdio=true csv [public.clients.email <nil>]",
		}},
		{"no policy column", "COPY clients (id, created_at) FROM STDIN", []string{
			"copy from stdio=true text []",
		}},
		{"non-policy table", "COPY orders FROM STDIN", []string{
			"copy from stdio=true text []",
		}},
		{"FROM a server file", "COPY clients (email) FROM '/tmp/clients.csv'", []string{
			"reject copy_server_side public.clients.email",
			"copy from stdio=false text []",
		}},
		{"FROM PROGRAM", "COPY clients FROM PROGRAM 'cat /tmp/x'", []string{
			"reject copy_server_side public.clients.first_name",
			"copy from stdio=false text []",
		}},
		{"TO a server file stays encrypted", "COPY clients TO '/tmp/out'", []string{
			"copy to stdio=false text []",
		}},
		{"query TO STDOUT", "COPY (SELECT id, email, phone FROM clients WHERE email = $1) TO STDOUT", []string{
			"param $1 public.clients.email compare",
			"copy to stdio=true text [<nil> public.clients.email public.clients.phone]",
		}},
		{"query of one column through UNION decrypts by position", "COPY (SELECT email FROM clients UNION SELECT email FROM clients) TO STDOUT", []string{
			"copy to stdio=true text [public.clients.email]",
		}},
		{"query with an expression of a column", "COPY (SELECT lower(email), COALESCE(phone, '') FROM clients) TO STDOUT", []string{
			"reject function public.clients.email (read)",
			"reject untraceable_output public.clients.phone (read)",
			"copy to stdio=true text []",
		}},
		{"query with * of unknown columns", "COPY (SELECT * FROM nocols) TO STDOUT", []string{
			"reject columns_unknown public.nocols.secret (read)",
			"copy to stdio=true text []",
		}},
		{"COPY FROM WHERE on deterministic column", "COPY clients (email) FROM STDIN WHERE email <> 'x'", []string{
			`literal 'x'="x" public.clients.email compare`,
			"copy from stdio=true text [public.clients.email]",
		}},
	})
}

func TestCopyOptions(t *testing.T) {
	a := newTestAnalyzer(t)
	sql := `COPY clients (email) FROM STDIN WITH (FORMAT csv, DELIMITER '|', NULL '\N', QUOTE '"', ESCAPE '\', HEADER match, DEFAULT '@', ENCODING 'UTF8')`
	st := plan(t, a, sql).Statements()[0]
	c := st.Copy
	if st.Kind != StmtCopy || c == nil {
		t.Fatalf("statement %+v", st)
	}
	got := []string{c.Format.String(), c.Delimiter, c.Null, c.Quote, c.Escape, c.Default, c.Encoding}
	want := []string{"csv", "|", `\N`, `"`, `\`, "@", "UTF8"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("option %d = %q, want %q", i, got[i], want[i])
		}
	}
	if !c.Header || !c.From || !c.Stdio {
		t.Errorf("Header %t From %t Stdio %t", c.Header, c.From, c.Stdio)
	}
	c = plan(t, a, "COPY clients (email) TO STDOUT (HEADER false)").Statements()[0].Copy
	if c.Header || c.From {
		t.Errorf("HEADER false: Header %t From %t", c.Header, c.From)
	}
}

// TestCopyOptionsInvalid: options PostgreSQL refuses are flagged, so the
// proxy never reads the data under its own guess of them.
func TestCopyOptionsInvalid(t *testing.T) {
	a := newTestAnalyzer(t)
	for sql, want := range map[string]string{
		"COPY clients (email) FROM STDIN (FORMAT csv, FORMAT text)": "option format is given twice",
		"COPY clients (email) FROM STDIN (FORMAT 'CSV')":            `COPY format 'CSV' is not recognized`,
		"COPY clients (email) FROM STDIN (HEADER 'yes')":            "option header takes a Boolean value or match",
		"COPY clients (email) FROM STDIN (HEADER 2)":                "option header takes a Boolean value or match",
		"COPY clients (email) FROM STDIN (LOG_VERBOSITY verbose)":   "COPY option log_verbosity is not recognized",
		"COPY clients (email) FROM STDIN (FORMAT csv, HEADER)":      "",
		"COPY clients (email) FROM STDIN WITH CSV HEADER":           "",
		"COPY clients (email) FROM STDIN (HEADER off, NULL '')":     "",
	} {
		c := plan(t, a, sql).Statements()[0].Copy
		if c == nil || c.Invalid != want {
			t.Errorf("%s: Invalid = %q, want %q", sql, c.Invalid, want)
		}
	}
	c := plan(t, a, "COPY clients (email) FROM STDIN (NULL '')").Statements()[0].Copy
	if !c.NullSet || c.Null != "" {
		t.Errorf("NULL '': NullSet %t Null %q", c.NullSet, c.Null)
	}
}

// TestResolutionChange: a policy table named after a statement of the same
// text that may change what names mean is refused; the proxy resolved the
// names before the text ran.
func TestResolutionChange(t *testing.T) {
	runCases(t, []planCase{
		{"SET search_path first", "SET search_path = tenant; INSERT INTO clients (email) VALUES ($1)", []string{
			"param $1 public.clients.email write",
			"reject resolution_change",
		}},
		{"DDL first", "ALTER TABLE clients ADD COLUMN x text; COPY clients (email) FROM STDIN", []string{
			"reject resolution_change",
			"copy from stdio=true text [public.clients.email]",
		}},
		{"set_config first", "SELECT set_config('search_path', 'tenant', false); SELECT email FROM clients", []string{
			"reject resolution_change",
		}},
		{"ROLLBACK first", "ROLLBACK; SELECT email FROM clients", []string{
			"reject resolution_change",
		}},
		{"a transaction around it", "BEGIN; INSERT INTO clients (email) VALUES ($1); COMMIT", []string{
			"param $1 public.clients.email write",
		}},
		{"other settings first", "SET statement_timeout = 0; SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; SELECT email FROM clients", nil},
		{"other tables after", "SET search_path = tenant; SELECT * FROM orders", nil},
	})
}

// TestColumnLists: INSERTs and COPYs of a policy table without a column
// list get the columns they use written in, after the name and alias.
func TestColumnLists(t *testing.T) {
	a := newTestAnalyzer(t)
	for sql, want := range map[string]string{
		"INSERT INTO legacy_notes AS n VALUES (1), (2)":               `INSERT INTO legacy_notes AS n ("id") VALUES (1), (2)`,
		`INSERT INTO "Mixed Case"."Patients" VALUES (1, $1)`:          `INSERT INTO "Mixed Case"."Patients" ("id", "SSN") VALUES (1, $1)`,
		"INSERT INTO legacy_notes VALUES (1, $1)":                     `INSERT INTO legacy_notes ("id", "body") VALUES (1, $1)`,
		"INSERT INTO legacy_notes SELECT 1, 'x' RETURNING id":         `INSERT INTO legacy_notes ("id", "body") SELECT 1, 'x' RETURNING id`,
		"COPY legacy_notes FROM STDIN":                                `COPY legacy_notes ("id", "body") FROM STDIN`,
		"COPY legacy_notes TO STDOUT (FORMAT csv)":                    `COPY legacy_notes ("id", "body") TO STDOUT (FORMAT csv)`,
		"INSERT INTO legacy_notes (body) VALUES ($1)":                 `INSERT INTO legacy_notes (body) VALUES ($1)`,
		"INSERT INTO orders VALUES (1)":                               `INSERT INTO orders VALUES (1)`,
		"INSERT INTO legacy_notes DEFAULT VALUES":                     `INSERT INTO legacy_notes DEFAULT VALUES`,
		"SELECT 1; INSERT INTO legacy_notes VALUES (2, $1); SELECT 2": `SELECT 1; INSERT INTO legacy_notes ("id", "body") VALUES (2, $1); SELECT 2`,
	} {
		p := plan(t, a, sql)
		if got := WithColumnLists(sql, p.ColumnLists()); got != want {
			t.Errorf("%s:\n got %s\nwant %s", sql, got, want)
		}
	}
}

func TestPositionalMergeRefused(t *testing.T) {
	runCases(t, []planCase{
		{"positional", "MERGE INTO legacy_notes n USING (SELECT 1 AS id) s ON n.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (1, $1)", []string{
			"param $1 public.legacy_notes.body write",
			"reject columns_unknown",
		}},
		{"named", "MERGE INTO legacy_notes n USING (SELECT 1 AS id) s ON n.id = s.id WHEN NOT MATCHED THEN INSERT (id, body) VALUES (1, $1)", []string{
			"param $1 public.legacy_notes.body write",
		}},
	})
}

func TestOpaqueBodies(t *testing.T) {
	runCases(t, []planCase{
		{"rule", "CREATE RULE r AS ON INSERT TO orders DO ALSO INSERT INTO legacy_notes VALUES (1, 'x')", []string{
			"reject opaque_code",
		}},
		{"function, BEGIN ATOMIC", "CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC INSERT INTO legacy_notes VALUES (1, 'x'); END", []string{
			"reject opaque_code",
		}},
		{"function, string body", "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT email FROM clients $$", []string{
			"reject opaque_code",
		}},
		{"function on other tables", "CREATE FUNCTION f() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM orders $$", nil},
	})
}

func TestAnyWord(t *testing.T) {
	for _, tc := range []struct {
		s, w string
		want bool
	}{
		{"CREATE TABLE t (a int)", "create", true},
		{"insert into t (created_at) values (now())", "create", false},
		{"select x.Role from users x", "role", true},
		{"select user_role, roles from t", "role", false},
		{"/*c*/DROP table t", "drop", true},
		{"select 'pending'", "end", false},
		{"END", "end", true},
	} {
		if got := anyWord(tc.s, []string{tc.w}); got != tc.want {
			t.Errorf("anyWord(%q, %q) = %v", tc.s, tc.w, got)
		}
	}
}

// FuzzFirstWord: firstWord's filter by length and first letter finds what
// splitting the text into words (strings.FieldsFunc) and comparing each
// with every word of the list finds.
func FuzzFirstWord(f *testing.F) {
	f.Add("CREATE TABLE t (Role int); _x @a [b 9z", "create,role,_x,9z,end")
	f.Add("pg_class, PG_PROC ärzte", "pg_proc,ärzte,pg_class")
	f.Fuzz(func(t *testing.T, sql, list string) {
		words := strings.Split(strings.ToLower(list), ",")
		// Bytes of names: ASCII letters, digits, _ and $, and every byte of
		// a multi-byte or invalid sequence (a rune of 0x80 or above).
		notName := func(r rune) bool {
			return !(r == '_' || r == '$' || r >= 0x80 || '0' <= r && r <= '9' || 'a' <= r|0x20 && r|0x20 <= 'z')
		}
		lowerASCII := func(s string) string {
			b := []byte(s)
			for i, c := range b {
				if 'A' <= c && c <= 'Z' {
					b[i] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
		want := ""
	scan:
		for _, field := range strings.FieldsFunc(sql, notName) {
			for _, w := range words {
				if w != "" && len(w) <= 32 && lowerASCII(field) == w {
					want = w
					break scan
				}
			}
		}
		if got := firstWord(sql, words); got != want {
			t.Fatalf("firstWord(%q, %q) = %q, want %q", sql, words, got, want)
		}
	})
}

// FuzzContainsFold: containsFold finds what comparing at every offset finds.
func FuzzContainsFold(f *testing.F) {
	f.Add("SELECT * FROM Clients", "clients")
	f.Add("cccccccccC", "cx")
	f.Add("", "")
	f.Add("ab", "abc")
	f.Fuzz(func(t *testing.T, s, needle string) {
		needle = strings.Map(func(r rune) rune {
			if 'A' <= r && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, needle)
		want := false
		for i := 0; i+len(needle) <= len(s) && !want; i++ {
			want = equalFoldLower(s[i:i+len(needle)], needle)
		}
		if got := containsFold(s, needle); got != want {
			t.Fatalf("containsFold(%q, %q) = %t, want %t", s, needle, got, want)
		}
	})
}

// FuzzFoldSet: a foldSet finds what containsFold finds for any of its
// strings.
func FuzzFoldSet(f *testing.F) {
	f.Add("SELECT * FROM Clients", "clients,u&,execute")
	f.Add("x", "x,xy,")
	f.Fuzz(func(t *testing.T, s, list string) {
		words := strings.Split(strings.ToLower(list), ",")
		want := false
		for _, w := range words {
			want = want || (w != "" && containsFold(s, w))
		}
		if got := newFoldSet(words).in(s); got != want {
			t.Fatalf("foldSet(%q).in(%q) = %t, want %t", words, s, got, want)
		}
	})
}
