package rewrite

import "testing"

func TestInsert(t *testing.T) {
	runCases(t, []planCase{
		{"params", "INSERT INTO clients (first_name, email) VALUES ($1, $2)", []string{
			"param $1 public.clients.first_name write",
			"param $2 public.clients.email write",
		}},
		{"non-policy columns untouched", "INSERT INTO clients (id, created_at, email) VALUES ($1, now(), $2)", []string{
			"param $2 public.clients.email write",
		}},
		{"literals", "INSERT INTO clients (first_name, email) VALUES ('Ann', 'a@x.org')", []string{
			"literal 'Ann'=\"Ann\" public.clients.first_name write",
			"literal 'a@x.org'=\"a@x.org\" public.clients.email write",
		}},
		{"multi-row with DEFAULT and NULL", "INSERT INTO clients (email, phone) VALUES ($1, DEFAULT), (NULL, $2), ('c', '555')", []string{
			"param $1 public.clients.email write",
			"param $2 public.clients.phone write",
			"literal 'c'=\"c\" public.clients.email write",
			"literal '555'=\"555\" public.clients.phone write",
		}},
		{"no column list uses the table's column order", "INSERT INTO clients VALUES (1, $1, $2, $3)", []string{
			"param $1 public.clients.first_name write",
			"param $2 public.clients.last_name write",
			"param $3 public.clients.email write",
		}},
		{"no column list, column order unknown", "INSERT INTO nocols VALUES ($1)", []string{
			"reject columns_unknown",
		}},
		{"DEFAULT VALUES", "INSERT INTO clients DEFAULT VALUES", nil},
		{"RETURNING policy columns is fine", "INSERT INTO clients AS c (email) VALUES ($1) RETURNING id, email, c.phone, *", []string{
			"param $1 public.clients.email write",
		}},
		{"RETURNING an expression is not", "INSERT INTO clients AS c (email) VALUES ($1) RETURNING lower(c.email)", []string{
			"param $1 public.clients.email write",
			"reject function public.clients.email (read)",
		}},
		{"casts on parameters", "INSERT INTO clients (email, phone, address) VALUES ($1::text, CAST($2 AS varchar), $3::pg_catalog.varchar)", []string{
			"param $1 public.clients.email write",
			"param $2 public.clients.phone write",
			"param $3 public.clients.address write",
		}},
		{"cast with a length would truncate", "INSERT INTO clients (email) VALUES ($1::varchar(64))", []string{
			"reject cast public.clients.email",
		}},
		{"cast to another type", "INSERT INTO clients (email, phone) VALUES ($1::int, '5'::date)", []string{
			"reject cast public.clients.email",
			"reject cast public.clients.phone",
		}},
		{"expression would store plaintext", "INSERT INTO clients (email, phone) VALUES (lower($1), $2 || '-x')", []string{
			"reject plaintext_write public.clients.email",
			"reject plaintext_write public.clients.phone",
		}},
		{"quoted and schema-qualified names", `INSERT INTO "public"."clients" ("email") VALUES ($1)`, []string{
			"param $1 public.clients.email write",
		}},
		{"same-named table in another schema is not a policy table", "INSERT INTO other.clients (email) VALUES ($1)", nil},
		{"case-sensitive quoted policy names", `INSERT INTO "Mixed Case"."Patients" ("SSN") VALUES ($1)`, []string{
			`param $1 Mixed Case.Patients.SSN write`,
		}},
		{"unquoted name folds to lower case, not the policy table", `INSERT INTO "Mixed Case".Patients (SSN) VALUES ($1)`, []string{
			"note unknown_relation Mixed Case.patients write",
		}},
		{"one parameter for two columns of one domain and mode", "INSERT INTO users (email_a, email_b) VALUES ($1, $1)", []string{
			"param $1 public.users.email_a write",
		}},
		{"one parameter for two differently encrypted columns", "INSERT INTO clients (email, first_name) VALUES ($1, $1)", []string{
			"reject param_conflict public.clients.email",
		}},
		{"one parameter for a policy column and a plain one", "INSERT INTO clients (email, created_at) VALUES ($1, $1)", []string{
			"reject param_conflict public.clients.email",
		}},
		{"array element assignment", "INSERT INTO clients (email[1]) VALUES ($1)", []string{
			"reject plaintext_write public.clients.email",
		}},
		{"numeric and boolean constants", "INSERT INTO clients (phone, address, first_name, last_name) VALUES (-42, 1.50, TRUE, 0x1F)", []string{
			`literal -42="-42" public.clients.phone write`,
			`literal 1.50="1.50" public.clients.address write`,
			`literal TRUE="true" public.clients.first_name write`,
			`literal 0x1F="31" public.clients.last_name write`,
		}},
		{"numeric in exponent form cannot be encrypted faithfully", "INSERT INTO clients (phone) VALUES (1e3)", []string{
			"reject unencryptable_value public.clients.phone",
		}},
		{"bit string", "INSERT INTO clients (phone) VALUES (B'101')", []string{
			"reject unencryptable_value public.clients.phone",
		}},
	})
}

func TestInsertSelect(t *testing.T) {
	runCases(t, []planCase{
		{"parameters through SELECT", "INSERT INTO clients (email, phone) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM clients WHERE email = $1)", []string{
			"param $1 public.clients.email write+compare",
			"param $2 public.clients.phone write",
		}},
		{"copy within the same column", "INSERT INTO clients (email, phone) SELECT email, phone FROM clients WHERE id = $1", nil},
		{"copy of the whole table into itself", "INSERT INTO clients SELECT * FROM clients", nil},
		{"from a plain table stores plaintext", "INSERT INTO clients (email, first_name) SELECT email, name FROM staging", []string{
			"reject plaintext_write public.clients.email",
			"reject plaintext_write public.clients.first_name",
		}},
		{"from another policy column of another domain", "INSERT INTO clients (email) SELECT email FROM contacts", []string{
			"reject cross_domain_copy public.clients.email",
		}},
		{"between columns sharing key and associated data", "INSERT INTO users (email_b, note_r) SELECT email_a, email_a FROM users", nil},
		{"randomized into deterministic breaks equality", "INSERT INTO users (email_a) SELECT note_r FROM users", []string{
			"reject cross_domain_copy public.users.email_a",
		}},
		{"UNION of parameters", "INSERT INTO clients (email) SELECT $1 UNION ALL SELECT $2", []string{
			"param $1 public.clients.email write",
			"param $2 public.clients.email write",
		}},
		{"VALUES in a CTE", "WITH v(e) AS (VALUES ($1), ('b')) INSERT INTO clients (email) SELECT e FROM v", []string{
			"param $1 public.clients.email write",
			`literal 'b'="b" public.clients.email write`,
		}},
		{"star of unknown columns into a policy table", "INSERT INTO clients (email, phone) SELECT * FROM unknowncols", []string{
			"reject columns_unknown",
		}},
		{"scalar subquery of the same column", "INSERT INTO clients (email) VALUES ((SELECT email FROM clients WHERE id = 1))", nil},
		{"envelopes copied into a non-policy table", "INSERT INTO staging (email) SELECT email FROM clients", []string{"reject copy_out public.clients.email"}},
		{"plaintext into a non-policy table is not our business", "INSERT INTO staging (email) SELECT $1", nil},
	})
}

func TestOnConflict(t *testing.T) {
	runCases(t, []planCase{
		{"EXCLUDED of the same column", "INSERT INTO clients (email, phone) VALUES ($1, $2) ON CONFLICT (email) DO UPDATE SET phone = EXCLUDED.phone, email = excluded.email", []string{
			"param $1 public.clients.email write",
			"param $2 public.clients.phone write",
		}},
		{"SET from parameters and literals", "INSERT INTO clients (email) VALUES ($1) ON CONFLICT (email) DO UPDATE SET phone = $2, first_name = 'x' WHERE clients.email = $3", []string{
			"param $1 public.clients.email write",
			"param $2 public.clients.phone write",
			"param $3 public.clients.email compare",
			`literal 'x'="x" public.clients.first_name write`,
		}},
		{"EXCLUDED of another column", "INSERT INTO clients (email, phone) VALUES ($1, $2) ON CONFLICT (email) DO UPDATE SET phone = EXCLUDED.email", []string{
			"param $1 public.clients.email write",
			"param $2 public.clients.phone write",
			"reject cross_domain_copy public.clients.phone",
		}},
		{"expression in SET", "INSERT INTO clients (email) VALUES ($1) ON CONFLICT DO UPDATE SET phone = clients.phone || $2", []string{
			"param $1 public.clients.email write",
			"reject operator public.clients.phone (read)",
			"reject plaintext_write public.clients.phone",
		}},
		{"DO NOTHING", "INSERT INTO clients (email) VALUES ($1) ON CONFLICT DO NOTHING", []string{
			"param $1 public.clients.email write",
		}},
		{"expression index inference", "INSERT INTO clients (email) VALUES ($1) ON CONFLICT (lower(email)) DO NOTHING", []string{
			"param $1 public.clients.email write",
			"reject function public.clients.email (read)",
		}},
	})
}

func TestUpdate(t *testing.T) {
	runCases(t, []planCase{
		{"SET parameters, literal, DEFAULT, NULL", "UPDATE clients SET email = $1, first_name = 'Bo', phone = DEFAULT, address = NULL WHERE id = $2", []string{
			"param $1 public.clients.email write",
			`literal 'Bo'="Bo" public.clients.first_name write`,
		}},
		{"WHERE on a deterministic column", "UPDATE clients SET phone = $1 WHERE email = $2 RETURNING email", []string{
			"param $1 public.clients.phone write",
			"param $2 public.clients.email compare",
		}},
		{"same parameter written and compared", "UPDATE clients SET email = $1 WHERE email = $1 OR id = $2", []string{
			"param $1 public.clients.email write+compare",
		}},
		{"multi-column assignment", "UPDATE clients SET (email, phone) = ($1, 'p'), (first_name, last_name) = (SELECT first_name, last_name FROM clients WHERE id = 2)", []string{
			"param $1 public.clients.email write",
			`literal 'p'="p" public.clients.phone write`,
		}},
		{"multi-column assignment from plain columns", "UPDATE clients SET (email, phone) = (SELECT email, name FROM staging LIMIT 1)", []string{
			"reject plaintext_write public.clients.email",
			"reject plaintext_write public.clients.phone",
		}},
		{"FROM another policy table of another domain", "UPDATE clients c SET email = k.email FROM contacts k WHERE k.id = c.id", []string{
			"reject cross_domain_copy public.clients.email",
		}},
		{"FROM a plain table", "UPDATE clients c SET phone = s.name FROM staging s WHERE s.email = $1", []string{
			"reject plaintext_write public.clients.phone",
		}},
		{"FROM a plain table, compare with policy column", "UPDATE clients c SET phone = $1 FROM staging s WHERE c.email = s.email", []string{
			"param $1 public.clients.phone write",
			"reject incomparable public.clients.email (read)",
		}},
		{"self-join copy", "UPDATE clients c SET email = o.email FROM clients o WHERE o.id = $1 AND c.id = $2", nil},
		{"COALESCE of parameter and the column itself", "UPDATE clients SET email = COALESCE($1, email), phone = CASE WHEN $2::text IS NULL THEN phone ELSE $2 END", []string{
			"param $1 public.clients.email write",
			"param $2 public.clients.phone write",
		}},
		{"function of the column", "UPDATE clients SET email = lower(email)", []string{
			"reject function public.clients.email (read)",
			"reject plaintext_write public.clients.email",
		}},
		{"quoted names", `UPDATE "clients" SET "email" = $1 WHERE "email" = $2`, []string{
			"param $1 public.clients.email write",
			"param $2 public.clients.email compare",
		}},
	})
}

func TestDeleteAndMerge(t *testing.T) {
	runCases(t, []planCase{
		{"DELETE WHERE", "DELETE FROM clients WHERE email = $1 RETURNING first_name", []string{
			"param $1 public.clients.email compare",
		}},
		{"DELETE USING", "DELETE FROM clients c USING orders o WHERE o.client_id = c.id AND c.email IN ($1, $2)", []string{
			"param $1 public.clients.email compare",
			"param $2 public.clients.email compare",
		}},
		{"DELETE on a randomized column", "DELETE FROM clients WHERE phone = $1", []string{
			"reject randomized_equality public.clients.phone (read)",
		}},
		{"MERGE", "MERGE INTO clients c USING (SELECT $1::text AS e, $2::text AS p) s ON c.email = s.e WHEN MATCHED THEN UPDATE SET phone = s.p WHEN NOT MATCHED THEN INSERT (email, phone) VALUES (s.e, s.p)", []string{
			"param $1 public.clients.email write+compare",
			"param $2 public.clients.phone write",
		}},
		{"MERGE from a plain table", "MERGE INTO clients c USING staging s ON c.id = 1 WHEN NOT MATCHED THEN INSERT (email) VALUES (s.email)", []string{
			"reject plaintext_write public.clients.email",
		}},
		// NOT MATCHED hides the target: an unqualified name is the
		// source's column, never a copy of the target's.
		{"NOT MATCHED, unqualified source literal", "MERGE INTO clients c USING (SELECT 'x'::text AS email) s ON false WHEN NOT MATCHED THEN INSERT (email) VALUES (email)", []string{
			`literal 'x'="x" public.clients.email write`,
		}},
		{"NOT MATCHED, unqualified source parameter", "MERGE INTO clients c USING (SELECT $1::text AS phone) s ON false WHEN NOT MATCHED THEN INSERT (phone) VALUES (COALESCE(phone, NULL))", []string{
			"param $1 public.clients.phone write",
		}},
		{"NOT MATCHED, unqualified plain column", "MERGE INTO clients c USING staging s ON c.id = s.id WHEN NOT MATCHED THEN INSERT (email) VALUES (email)", []string{
			"reject plaintext_write public.clients.email",
		}},
		{"NOT MATCHED condition on the source", "MERGE INTO clients c USING (SELECT 'x'::text AS email, 'y'::text AS phone) s ON false WHEN NOT MATCHED AND phone = 'y' THEN INSERT (email) VALUES (s.email)", []string{
			`literal 'x'="x" public.clients.email write`,
		}},
	})
}

func TestDataModifyingCTE(t *testing.T) {
	runCases(t, []planCase{
		{"INSERT RETURNING in WITH", "WITH x AS (INSERT INTO clients (email) VALUES ($1) RETURNING id, email) SELECT id, email FROM x", []string{
			"param $1 public.clients.email write",
		}},
		{"UPDATE in WITH, expression in outer output", "WITH u AS (UPDATE clients SET phone = $1 WHERE email = $2 RETURNING phone) SELECT upper(phone) FROM u", []string{
			"param $1 public.clients.phone write",
			"param $2 public.clients.email compare",
			"reject function public.clients.phone (read)",
		}},
		{"moving rows between tables", "WITH d AS (DELETE FROM clients WHERE id = $1 RETURNING *) INSERT INTO clients SELECT * FROM d", nil},
		{"moving plaintext in", "WITH d AS (DELETE FROM staging RETURNING email) INSERT INTO clients (email) SELECT email FROM d", []string{
			"reject plaintext_write public.clients.email",
		}},
		{"CTE shadows the policy table", "WITH clients AS (SELECT 'x' AS email) SELECT * FROM clients WHERE email = 'y'", nil},
	})
}

// TestStarAndRecursionWrites: statements found in review that stored
// plaintext because a * expansion shifted positions or a recursive WITH hid
// where values came from. Each must now be refused.
func TestStarAndRecursionWrites(t *testing.T) {
	p, err := NewPolicy([]ColumnSpec{{Schema: "public", Table: "legacy_notes", Column: "body"}})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAnalyzer(p, Options{})
	res := func(n RelName) Relation {
		if n.Name == "legacy_notes" {
			return Relation{Kind: RelTable, Schema: "public", Name: "legacy_notes", Columns: []string{"id", "body"}}
		}
		return Relation{Kind: RelUnknown}
	}
	for _, sql := range []string{
		"INSERT INTO legacy_notes (id, body) VALUES ((ROW(101, 'S')::legacy_notes).*)",
		"INSERT INTO legacy_notes VALUES ((ROW(102, 'S')::legacy_notes).*)",
		"INSERT INTO legacy_notes (id, body) VALUES ((ROW($1::int, $2::text)::legacy_notes).*)",
		"INSERT INTO legacy_notes (id, body) SELECT (w).* FROM (SELECT 100 AS a, 'S'::text AS b) w",
		"MERGE INTO legacy_notes t USING (SELECT 104 AS id, 'S'::text AS b) s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id, body) VALUES (s.*)",
		"UPDATE legacy_notes SET (id, body) = (SELECT (w).* FROM (SELECT 105 AS a, 'S'::text AS b) w) WHERE id = 105",
		"UPDATE legacy_notes SET (id, body) = ROW((ROW(114, 'S')::legacy_notes).*) WHERE id = 114",
		"WITH RECURSIVE a AS (SELECT body FROM legacy_notes), legacy_notes AS (SELECT 'S'::text AS body) INSERT INTO legacy_notes (body) SELECT body FROM a",
		"WITH RECURSIVE r(a, b, c, n) AS (SELECT 'x'::text, 'y'::text, upper('S'), 1 UNION ALL SELECT b, c, c, n + 1 FROM r WHERE n < 3) INSERT INTO legacy_notes (body) SELECT a FROM r",
	} {
		an, err := a.Analyze(sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if err := an.Plan(res).Check(false); err == nil {
			t.Errorf("accepted, would store plaintext: %s", sql)
		}
	}
	// A recursive WITH whose values are literals or parameters gets them
	// encrypted wherever they end up in the written column.
	an, err := a.Analyze("WITH RECURSIVE r(a, b, c, n) AS (SELECT 'x'::text, 'y'::text, 'S'::text, 1 UNION ALL SELECT b, c, c, n + 1 FROM r WHERE n < 3) INSERT INTO legacy_notes (body) SELECT a FROM r")
	if err != nil {
		t.Fatal(err)
	}
	pl := an.Plan(res)
	if err := pl.Check(false); err == nil && len(pl.Literals()) < 3 {
		t.Errorf("recursive WITH: %d literals bound to body, want all 3 (or a refusal)", len(pl.Literals()))
	}
}
