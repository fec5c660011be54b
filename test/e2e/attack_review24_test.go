package e2e

// A twenty-fourth round of the attacker's suite (see attack_test.go),
// aimed first at the day's changes: sessions of one database sharing the
// catalog another session read (proxy/catalog_load.go: sharedCatalogs,
// loadCatalog, adoptShared; proxy/planning.go refreshIfOld), and the new
// schema checks (proxy/catalog_links.go: foreign keys and generated
// columns; proxy/catalog.go: the hazards query).
//
// 14 of its 25 cases failed when written (each marked "Fault:"), all
// mended in the commit that added this file: a session that has read the
// catalog inside a transaction, or is in one, no longer takes another
// session's catalog; a foreign key from a policy column to a plain column
// of a policy table refuses that table; statements naming a generated
// column computed from a policy column are refused; whole-row CHECKs,
// CHECKs on deterministic columns with plaintext strings, and
// nondeterministic collations or citext on deterministic columns are
// schema hazards.
//
// The shared catalog is taken when it is younger than CatalogMaxAge and
// max(pg_class.oid) is what the session sees. Neither says that the
// session sees the same schema: its own uncommitted DDL (a foreign key, a
// temporary or tenant table whose OID a later committed relation covers)
// is in the session's view and not in the shared read. The cases below
// let a session make such a change inside a transaction, read the catalog
// itself (in the transaction, not shared), wait for its catalog to age
// while another session refreshes the shared one, then write.

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// markers24 maps a case name to its marker (SECRET_<n>_x).
var markers24 = caseMarkers{}

func m24(t *testing.T) string { return markers24.of(t) }

// maxAge24 is the proxy's CatalogMaxAge in the shared-catalog cases: long
// enough for a few statements, short enough to wait out.
const maxAge24 = 600 * time.Millisecond

// conn24 is a new session through the proxy.
func conn24(t *testing.T, f *encFixture) *pgconn.PgConn {
	t.Helper()
	return f.connect(t, pgx.QueryExecModeExec).PgConn()
}

// conn24Params is a new session through the proxy with startup parameters.
func conn24Params(t *testing.T, f *encFixture, params map[string]string) *pgconn.PgConn {
	t.Helper()
	cfg, err := pgx.ParseConfig(f.p.ConnString(pg.Super, f.db))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	c, err := pgx.ConnectConfig(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(testCtx(t)) })
	return c.PgConn()
}

// q24 runs sql (SECRET as the marker) as a simple query on c and returns
// the rows of its last result, or the error.
func q24(t *testing.T, c *pgconn.PgConn, sql string) ([]string, error) {
	t.Helper()
	sql = strings.ReplaceAll(sql, "SECRET", m24(t))
	rs, err := c.Exec(testCtx(t), sql).ReadAll()
	if err != nil {
		t.Logf("%q: %v", sql, err)
		return nil, err
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return rowStrings23(rs[len(rs)-1].Rows), nil
}

// p24 runs sql with text parameters through the extended protocol.
func p24(t *testing.T, c *pgconn.PgConn, sql string, params ...string) ([]string, error) {
	t.Helper()
	vals := make([][]byte, len(params))
	for i, p := range params {
		vals[i] = []byte(strings.ReplaceAll(p, "SECRET", m24(t)))
	}
	res := c.ExecParams(testCtx(t), sql, vals, nil, nil, nil).Read()
	if res.Err != nil {
		t.Logf("%q %q: %v", sql, params, res.Err)
		return nil, res.Err
	}
	return rowStrings23(res.Rows), nil
}

// noEnvelopes24 fails when a value the client received is an envelope.
func noEnvelopes24(t *testing.T, what string, rows []string) {
	t.Helper()
	for _, r := range rows {
		if cipher.LooksLikeEnvelope([]byte(r)) || envelopeIn.MatchString(r) {
			t.Errorf("CIPHERTEXT returned to the client by %s: %.80q", what, r)
		}
	}
}

// takes24 counts the catalogs taken from another session so far.
func takes24(f *encFixture) int {
	return strings.Count(f.p.logs.String(), `msg="catalog taken from another session"`)
}

// shared24 runs the shared-catalog attack: b runs setup (its own DDL in a
// transaction, then a statement that makes it read the catalog itself),
// a relation is created directly (so that max(oid) covers b's uncommitted
// ones), both catalogs age, a refreshes the shared one, and b runs attack.
func shared24(t *testing.T, f *encFixture, a, b *pgconn.PgConn, setup []string, attack func()) {
	t.Helper()
	for _, s := range setup {
		if _, err := q24(t, b, s); err != nil {
			t.Logf("setup %q refused: %v", s, err)
		}
	}
	if _, err := f.direct.Exec(testCtx(t), "CREATE TABLE zz24 (id int)"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(maxAge24 + 300*time.Millisecond)
	before := takes24(f)
	if _, err := q24(t, a, "SELECT count(*) FROM clients"); err != nil {
		t.Fatal(err)
	}
	attack()
	t.Logf("catalogs taken from another session during the attack: %d", takes24(f)-before)
}

// refused24: through a new proxy session, sql (extended protocol, text
// parameters) fails; its message contains each of says.
func refused24(sql string, says []string, params ...string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		rows, err := p24(t, conn24(t, f), sql, params...)
		if err == nil {
			t.Errorf("NOT REFUSED: %q (params %q) ran through the proxy (%q); PostgreSQL on plaintext refuses it (or it is silently wrong on ciphertext)", sql, params, rows)
			return
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			t.Errorf("%q: %v, want a PostgreSQL-style error", sql, err)
			return
		}
		for _, s := range says {
			if !strings.Contains(strings.ToLower(pe.Message+" "+pe.Detail), strings.ToLower(s)) {
				t.Errorf("%q: %s %q, want it to say %q", sql, pe.Code, pe.Message, s)
			}
		}
	}
}

// rows24: through a new proxy session, sql (simple) gives want (rows
// joined by ";") or is refused.
func rows24(sql, want string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		rows, err := q24(t, conn24(t, f), sql)
		if err != nil {
			return
		}
		if got := strings.Join(rows, ";"); got != strings.ReplaceAll(want, "SECRET", m24(t)) {
			t.Errorf("WRONG: %q through the proxy gives %.200q, want %q (as PostgreSQL gives on plaintext) or a refusal", sql, got, want)
		}
	}
}

// directCount24 fails unless sql (run directly, SECRET as the marker)
// counts want.
func directCount24(sql string, want int, why string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		var n int
		if err := f.direct.QueryRow(testCtx(t), strings.ReplaceAll(sql, "SECRET", m24(t))).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if n != want {
			t.Errorf("WRONG: %s gives %d, want %d: %s", sql, n, want, why)
		}
	}
}

const genDDL24 = "ALTER TABLE clients ADD COLUMN g24 text GENERATED ALWAYS AS (coalesce(email, '')) STORED"

func attackCases24() []attackCase {
	cs := []attackCase{
		// ---- 1. Shared catalogs.

		// b's own uncommitted foreign key from clients.email to a plain
		// column: the proxy refuses such DDL outright (passes).
		{name: "cat24/own_uncommitted_fk_then_shared_catalog", maxAge: maxAge24, plainOK: true,
			ddl: "; CREATE TABLE emails24 (e text PRIMARY KEY)",
			flights: []flight{
				fl(insEmailV23("e24")),
				fl(direct("INSERT INTO emails24 SELECT email FROM clients WHERE email IS NOT NULL")),
			},
			check: func(t *testing.T, f *encFixture) {
				a, b := conn24(t, f), conn24(t, f)
				shared24(t, f, a, b, []string{
					"BEGIN",
					"ALTER TABLE clients ADD CONSTRAINT fk24 FOREIGN KEY (email) REFERENCES emails24 (e) ON UPDATE CASCADE",
					"SELECT count(*) FROM clients",
				}, func() {
					q24(t, b, "UPDATE emails24 SET e = 'SECRET'")
					q24(t, b, "COMMIT")
				})
			}},
		// Fault: b's own uncommitted foreign key from refs24.e (plain) to
		// clients.email, ON UPDATE CASCADE (accepted through the proxy),
		// is in b's view of the schema and in b's own catalog read (in
		// its transaction, not shared), but not in the catalog a read
		// outside b's transaction; when b's catalog ages, adoptShared
		// (proxy/catalog_load.go) takes that one because max(oid) is
		// unchanged (a foreign key creates no relation), so clients.email
		// loses its hazard and the UPDATE cascades a new envelope into the
		// plain column.
		{name: "cat24/own_uncommitted_fk_referencing_then_shared_catalog", maxAge: maxAge24,
			ddl: "; CREATE UNIQUE INDEX ON clients (email); CREATE TABLE refs24 (e text)",
			flights: []flight{
				fl(insEmailV23("e24")),
				fl(direct("INSERT INTO refs24 SELECT email FROM clients WHERE email IS NOT NULL")),
			},
			check: func(t *testing.T, f *encFixture) {
				var before string
				if err := f.direct.QueryRow(testCtx(t), "SELECT e FROM refs24").Scan(&before); err != nil {
					t.Fatal(err)
				}
				a, b := conn24(t, f), conn24(t, f)
				shared24(t, f, a, b, []string{
					"BEGIN",
					"ALTER TABLE refs24 ADD CONSTRAINT fk24 FOREIGN KEY (e) REFERENCES clients (email) ON UPDATE CASCADE",
					"SELECT count(*) FROM clients",
				}, func() {
					q24(t, b, "UPDATE clients SET email = 'SECRET' WHERE email = 'e24'")
					q24(t, b, "COMMIT")
				})
				var after string
				if err := f.direct.QueryRow(testCtx(t), "SELECT coalesce(e, '') FROM refs24").Scan(&after); err != nil {
					t.Fatal(err)
				}
				if after != before {
					t.Errorf("WRONG: refs24.e (plain) changed from %.30q to %.30q: an UPDATE of clients.email cascaded a new envelope out of the policy", before, after)
				}
			}},
		// Fault: b's uncommitted temporary table legacy_notes is not in the
		// shared catalog (its OID is below max(oid), which a later relation
		// set), so the adopted catalog knows one legacy_notes only, the
		// statement is sent unqualified and encrypted, and PostgreSQL
		// stores the envelope in the temporary table and returns it.
		{name: "cat24/own_uncommitted_temp_table_then_shared_catalog", maxAge: maxAge24, plainOK: true,
			check: func(t *testing.T, f *encFixture) {
				a, b := conn24(t, f), conn24(t, f)
				shared24(t, f, a, b, []string{
					"BEGIN",
					"CREATE TEMP TABLE legacy_notes (id int, body text)",
					"SELECT count(*) FROM legacy_notes",
				}, func() {
					q24(t, b, "INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET')")
					p24(t, b, "INSERT INTO legacy_notes (id, body) VALUES (2, $1)", "SECRET")
					rows, err := q24(t, b, "SELECT body FROM legacy_notes ORDER BY id")
					if err == nil {
						noEnvelopes24(t, "the session's temporary table", rows)
						for _, r := range rows {
							if r != m24(t) {
								t.Errorf("WRONG: the temporary table reads %.60q, want the plain value %q (it is not a policy table)", r, m24(t))
							}
						}
					}
					q24(t, b, "COMMIT")
				})
			}},
		// Fault: the same with a table of another schema created in the
		// transaction and put first by SET LOCAL search_path: the adopted
		// catalog lacks it, and an envelope is stored in tenant.legacy_notes
		// (not a policy table), where it stays after COMMIT.
		{name: "cat24/own_uncommitted_tenant_table_then_shared_catalog", maxAge: maxAge24, plainOK: true,
			check: allChecks(func(t *testing.T, f *encFixture) {
				a, b := conn24(t, f), conn24(t, f)
				shared24(t, f, a, b, []string{
					"BEGIN",
					"CREATE TABLE tenant.legacy_notes (id int, body text)",
					"SET LOCAL search_path = tenant, public",
					"SELECT count(*) FROM legacy_notes",
				}, func() {
					q24(t, b, "INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET')")
					rows, err := q24(t, b, "SELECT body FROM legacy_notes")
					if err == nil {
						noEnvelopes24(t, "tenant.legacy_notes", rows)
					}
					q24(t, b, "COMMIT")
				})
			}, directCount24("SELECT count(*) FROM tenant.legacy_notes WHERE body LIKE 'v1:%'", 0, "an envelope was stored in a table outside the policy"))},
		// Another session's temporary table of a policy table's name is in
		// the shared catalog; a new session without it must still write to
		// public.legacy_notes, encrypted.
		{name: "cat24/other_sessions_temp_table_in_shared_catalog", maxAge: 5 * time.Second,
			check: allChecks(func(t *testing.T, f *encFixture) {
				a := conn24(t, f)
				q24(t, a, "CREATE TEMP TABLE legacy_notes (id int, body text)")
				q24(t, a, "SELECT count(*) FROM legacy_notes")
				before := takes24(f)
				b := conn24(t, f)
				if _, err := q24(t, b, "INSERT INTO legacy_notes (id, body) VALUES (5, 'SECRET')"); err != nil {
					return
				}
				p24(t, b, "INSERT INTO legacy_notes (id, body) VALUES (6, $1)", "SECRET")
				t.Logf("takes: %d", takes24(f)-before)
				rows, err := q24(t, b, "SELECT body FROM legacy_notes WHERE id IN (5, 6)")
				if err == nil {
					noEnvelopes24(t, "public.legacy_notes", rows)
				}
				rows, err = q24(t, a, "SELECT count(*) FROM legacy_notes")
				if err == nil && strings.Join(rows, "") != "0" {
					t.Errorf("WRONG: the other session's temporary table got %q rows", rows)
				}
			})},
		// Search paths from the startup packet, adopted: tenant first writes
		// plaintext to tenant.clients (not a policy table); public first must
		// encrypt.
		{name: "cat24/startup_search_paths_adopted", maxAge: 5 * time.Second, plainOK: true, ddl: tenantLikePublic,
			check: func(t *testing.T, f *encFixture) {
				a := conn24(t, f)
				q24(t, a, "SELECT count(*) FROM clients")
				b := conn24Params(t, f, map[string]string{"search_path": "tenant, public"})
				q24(t, b, insClients("'tenant24'"))
				c := conn24Params(t, f, map[string]string{"options": "-c search_path=public,tenant"})
				q24(t, c, insClients("'SECRET'"))
				p24(t, c, insClients("$1"), "SECRET")
				var n int
				if err := f.direct.QueryRow(testCtx(t), "SELECT count(*) FROM tenant.clients WHERE first_name = 'tenant24'").Scan(&n); err != nil || n != 1 {
					t.Errorf("WRONG: tenant.clients holds %d plain rows (%v), want 1", n, err)
				}
			}},

		// ---- 2. Foreign keys.

		// Fault: proxy/catalog_links.go readLinks makes the foreign key a
		// write hazard of clients.email only; the referenced column
		// (clients.notes, plain) is in a policy table, so no relation is
		// refused, and UPDATE ... SET notes (no policy column written)
		// cascades the plaintext into clients.email.
		{name: "fk24/policy_column_references_plain_column_same_table", plainOK: true,
			ddl: "; INSERT INTO workspaces (name) VALUES ('w24'); ALTER TABLE clients ADD CONSTRAINT un24 UNIQUE (notes)" +
				"; INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT id, 'a', 'b', 'k24' FROM workspaces" +
				"; INSERT INTO clients (workspace_id, first_name, last_name, notes, email) SELECT id, 'a', 'b', 'z24', 'k24' FROM workspaces" +
				"; ALTER TABLE clients ADD CONSTRAINT fk24 FOREIGN KEY (email) REFERENCES clients (notes) ON UPDATE CASCADE",
			flights: []flight{
				fl("UPDATE clients SET notes = 'SECRET' WHERE notes = 'k24'"),
				fl(ext("UPDATE clients SET notes = $1 WHERE notes = 'SECRET'", "SECRET2"), syncMsg()),
			}},
		// Fault: as above, with the referenced plain column in the other
		// policy table (legacy_notes.tag): readLinks skips the view for a
		// policy table (HasTable), and the write names no policy column.
		{name: "fk24/policy_column_references_plain_column_of_other_policy_table", plainOK: true,
			ddl: "; INSERT INTO workspaces (name) VALUES ('w24'); ALTER TABLE legacy_notes ADD COLUMN tag text UNIQUE; INSERT INTO legacy_notes (id, tag) VALUES (1, 'k24')" +
				"; INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', 'k24' FROM workspaces" +
				"; ALTER TABLE clients ADD CONSTRAINT fk24 FOREIGN KEY (email) REFERENCES legacy_notes (tag) ON UPDATE CASCADE",
			flights: []flight{
				fl("UPDATE legacy_notes SET tag = 'SECRET' WHERE id = 1"),
				fl(ext("UPDATE legacy_notes SET tag = $1 WHERE id = 1", "SECRET2"), syncMsg()),
			}},
		{name: "fk24/multi_column_fk_to_plain_table", plainOK: true,
			ddl: "; INSERT INTO workspaces (name) VALUES ('w24'); CREATE TABLE refs24 (w uuid, e text, PRIMARY KEY (w, e))" +
				"; INSERT INTO refs24 SELECT id, 'k24' FROM workspaces" +
				"; INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', 'k24' FROM workspaces" +
				"; ALTER TABLE clients ADD CONSTRAINT fk24 FOREIGN KEY (workspace_id, email) REFERENCES refs24 (w, e) ON UPDATE CASCADE",
			flights: []flight{
				fl("UPDATE refs24 SET e = 'SECRET'"),
				fl("UPDATE public.refs24 SET e = 'SECRET' WHERE e = 'k24'"),
				fl(ext("UPDATE \"refs24\" SET e = $1", "SECRET"), syncMsg()),
			}},
		{name: "fk24/plain_column_of_policy_table_references_policy_column",
			ddl:   "; CREATE UNIQUE INDEX ON clients (email); ALTER TABLE clients ADD CONSTRAINT fk24 FOREIGN KEY (notes) REFERENCES clients (email) ON UPDATE CASCADE",
			check: directCount24("SELECT count(*) FROM clients WHERE notes LIKE 'v1:%'", 0, "an envelope was copied into clients.notes (plain)"),
			flights: []flight{
				fl(insEmailV23("e24")),
				fl(direct("UPDATE clients SET notes = email")),
				fl("UPDATE clients SET email = 'SECRET' WHERE email = 'e24'"),
				fl(ext("UPDATE clients SET email = $1", "SECRET"), syncMsg()),
			}},
		{name: "fk24/policy_column_to_table_named_like_policy_table", plainOK: true,
			ddl: "; INSERT INTO workspaces (name) VALUES ('w24'); CREATE UNIQUE INDEX ON tenant.clients (email); INSERT INTO tenant.clients (email) VALUES ('k24')" +
				"; INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', 'k24' FROM workspaces" +
				"; ALTER TABLE clients ADD CONSTRAINT fk24 FOREIGN KEY (email) REFERENCES tenant.clients (email) ON UPDATE CASCADE",
			flights: []flight{
				fl("UPDATE tenant.clients SET email = 'SECRET'"),
				fl("SET search_path = tenant, public"),
				fl("UPDATE clients SET email = 'SECRET'"),
				fl(ext("UPDATE clients SET email = $1", "SECRET"), syncMsg()),
			}},

		// ---- 2. Generated columns (added on another connection; the
		// proxy reads the catalog before each statement).

		// Fault: the derived-column check (proxy/backend.go, catalog.derived)
		// goes by the result field's table OID and attnum; an expression over
		// the generated column, a UNION, an aggregate or a data-modifying
		// CTE's RETURNING has none, so the envelope it copied reaches the
		// client.
		{name: "gen24/generated_copy_read_through_expressions", maxAge: time.Millisecond, flights: []flight{
			fl(insEmailV23("SECRET")),
			fl(direct(genDDL24)),
			fl("SELECT g24 || '' FROM clients"),
			fl("SELECT coalesce(g24, 'x') FROM clients"),
			fl("SELECT g24 FROM clients UNION ALL SELECT 'x'"),
			fl("SELECT array_agg(g24) FROM clients"),
			fl("SELECT CASE WHEN true THEN g24 END FROM clients"),
			fl(ext("SELECT $1::text || g24 FROM clients", "p"), syncMsg()),
		}},
		// Fault: a scalar subquery over the generated column, (SELECT g24
		// FROM clients LIMIT 1), returns the envelope (no table OID in its
		// field); the other forms are refused.
		{name: "gen24/generated_copy_read_through_subqueries_and_ctes", maxAge: time.Millisecond, flights: []flight{
			fl(insEmailV23("SECRET")),
			fl(direct(genDDL24)),
			fl("SELECT x FROM (SELECT g24 AS x FROM clients) s"),
			fl("WITH c AS (SELECT * FROM clients) SELECT g24 FROM c"),
			fl("WITH u AS (UPDATE clients SET notes = 'n24' RETURNING g24) SELECT g24 FROM u"),
			fl("SELECT (SELECT g24 FROM clients LIMIT 1)"),
			fl("SELECT t.g24 FROM clients t JOIN workspaces w ON w.id = t.workspace_id"),
		}},
		{name: "gen24/generated_copy_returning_and_cursor", maxAge: time.Millisecond, flights: []flight{
			fl(insEmailV23("SECRET")),
			fl(direct(genDDL24)),
			fl("UPDATE clients SET notes = 'n24' RETURNING notes, g24"),
			fl(ext("UPDATE clients SET notes = $1 RETURNING g24", "n25"), syncMsg()),
			fl("DELETE FROM clients WHERE false RETURNING g24"),
			fl("BEGIN", "DECLARE c24 CURSOR FOR SELECT g24 FROM clients", "FETCH ALL c24", "COMMIT"),
		}},
		// Fault: COPY (SELECT g24 ...) TO STDOUT has no RowDescription; the
		// proxy decrypts COPY output by the policy columns its analysis
		// finds, and the generated column (catalog.derived) is not one, so
		// the envelope it copied goes out in the COPY data.
		{name: "gen24/generated_copy_to_stdout", maxAge: time.Millisecond, outputs: true, flights: []flight{
			fl(insEmailV23("SECRET")),
			fl(direct(genDDL24)),
			fl("COPY (SELECT g24 FROM clients) TO STDOUT"),
			fl("COPY (SELECT id, g24 FROM clients) TO STDOUT WITH (FORMAT csv)"),
			fl("COPY clients (id, g24) TO STDOUT"),
			fl("COPY (SELECT g24 || '' FROM clients) TO STDOUT"),
		}},
		{name: "gen24/generated_from_two_columns_and_through_function", maxAge: time.Millisecond, flights: []flight{
			fl(insEmailV23("SECRET")),
			fl(direct("CREATE FUNCTION f24(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$; " +
				"ALTER TABLE clients ADD COLUMN g24b text GENERATED ALWAYS AS (coalesce(notes, '') || coalesce(email, '')) STORED, " +
				"ADD COLUMN g24c text GENERATED ALWAYS AS (public.f24(email)) STORED")),
			fl("SELECT g24b FROM clients"),
			fl("SELECT g24c FROM clients"),
			fl(ext("SELECT g24c, g24b FROM clients"), syncMsg()),
			fl("UPDATE clients SET notes = 'n' RETURNING g24b"),
		}},

		// ---- 2. CHECK constraints, collations, types made on the server.

		// Fault: the hazards query (proxy/catalog.go, column 12) counts
		// table CHECKs on randomized columns only; on the deterministic
		// clients.email a CHECK made on the server runs on the envelope, so
		// a value PostgreSQL refuses on plaintext is stored.
		{name: "check24/deterministic_column_check_made_on_server", ddl: "; ALTER TABLE clients ADD CONSTRAINT c24 CHECK (email NOT LIKE '%@bad24.org')",
			check:   refused24("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', $1 FROM workspaces", nil, "x@bad24.org"),
			flights: []flight{fl(insEmailV23("SECRET"))}},
		// Fault: as above with an equality CHECK the migration wrote in
		// plaintext: the envelope never equals it.
		{name: "check24/deterministic_column_equality_check_made_on_server", ddl: "; ALTER TABLE clients ADD CONSTRAINT c24 CHECK (email IS DISTINCT FROM 'banned24@x.org')",
			check:   refused24("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', $1 FROM workspaces", nil, "banned24@x.org"),
			flights: []flight{fl(insEmailV23("SECRET"))}},
		// Fault: a CHECK through a whole-row reference records conkey {0}
		// (no column), so the hazards query's a.attnum = ANY (k.conkey)
		// misses it; it runs on the envelope of legacy_notes.body.
		{name: "check24/whole_row_check_on_randomized_column",
			ddl: "; CREATE FUNCTION okrow24(legacy_notes) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT $1.body IS DISTINCT FROM 'forbidden24' $$" +
				"; ALTER TABLE legacy_notes ADD CONSTRAINT c24 CHECK (okrow24(legacy_notes))",
			check:   refused24("INSERT INTO legacy_notes (body) VALUES ($1)", nil, "forbidden24"),
			flights: []flight{fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')")}},
		{name: "check24/function_check_on_randomized_column",
			ddl: "; CREATE FUNCTION okb24(text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT $1 IS DISTINCT FROM 'forbidden24' $$" +
				"; ALTER TABLE legacy_notes ADD CONSTRAINT c24 CHECK (okb24(body))",
			check:   refused24("INSERT INTO legacy_notes (body) VALUES ($1)", []string{"legacy_notes.body"}, "forbidden24"),
			flights: []flight{fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')")}},
		// Fault: a nondeterministic (case-insensitive) collation on the
		// deterministic column: PostgreSQL on plaintext finds the row
		// whatever the case; the proxy compares envelopes of different
		// plaintexts, silently 0 rows. Nothing in the hazards query reads
		// attcollation.
		{name: "coll24/nondeterministic_collation_on_deterministic_column",
			ddl: "; CREATE COLLATION ci24 (provider = icu, locale = 'und-u-ks-level2', deterministic = false); ALTER TABLE clients ALTER email TYPE text COLLATE ci24",
			check: allChecks(
				rows24("SELECT count(*) FROM clients WHERE email = 'mixed24@case.org'", "1"),
				rows24("SELECT count(*) FROM clients WHERE email IN ('MIXED24@CASE.ORG', 'none')", "1")),
			flights: []flight{
				fl(insEmailV23("Mixed24@Case.org")),
				fl(insEmailV23("SECRET")),
			}},
		// Fault: as above: a unique index under a case-insensitive collation
		// on the deterministic column no longer refuses a case variant.
		{name: "coll24/case_insensitive_unique_on_deterministic_column",
			ddl:   "; CREATE COLLATION ci24 (provider = icu, locale = 'und-u-ks-level2', deterministic = false); CREATE UNIQUE INDEX u24 ON clients (email COLLATE ci24)",
			check: refused24("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', $1 FROM workspaces", nil, "DUP24@x.org"),
			flights: []flight{
				fl(insEmailV23("dup24@x.org")),
				fl(insEmailV23("SECRET")),
			}},
		// Fault: citext is a string type (typcategory S), so the hazards
		// query accepts it; equality on the deterministic column is then
		// case-insensitive on plaintext and not on envelopes.
		{name: "coll24/citext_deterministic_column",
			ddl: "; CREATE EXTENSION IF NOT EXISTS citext; ALTER TABLE clients ALTER email TYPE citext",
			check: allChecks(
				rows24("SELECT count(*) FROM clients WHERE email = 'mixed24@case.org'", "1"),
				rows24("SELECT count(*) FROM clients WHERE email = 'Mixed24@Case.org'", "1")),
			flights: []flight{
				fl(insEmailV23("Mixed24@Case.org")),
				fl(insEmailV23("SECRET")),
			}},
		{name: "excl24/multi_column_exclusion_on_randomized_column",
			ddl:     "; ALTER TABLE clients ADD CONSTRAINT x24 EXCLUDE USING btree (workspace_id WITH =, phone WITH =)",
			check:   refused24("INSERT INTO clients (workspace_id, first_name, last_name, phone) SELECT id, 'a', 'b', $1 FROM workspaces", []string{"public.clients.phone"}, "SECRET"),
			flights: []flight{fl("INSERT INTO clients (workspace_id, first_name, last_name, phone) SELECT id, 'a', 'b', 'SECRET' FROM workspaces")}},
		{name: "dom24/three_level_domain_with_check", ddl: "; CREATE DOMAIN d24a AS text CHECK (VALUE <> 'forbidden24'); CREATE DOMAIN d24b AS d24a; CREATE DOMAIN d24c AS d24b; ALTER TABLE legacy_notes ALTER body TYPE d24c",
			check:   refused24("INSERT INTO legacy_notes (body) VALUES ($1)", []string{"public.legacy_notes.body"}, "forbidden24"),
			flights: []flight{fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')")}},
	}
	markers24.note(24000, cs)
	return cs
}

func TestAttackReview24(t *testing.T) { runAttacks(t, 24000, attackCases24()) }
