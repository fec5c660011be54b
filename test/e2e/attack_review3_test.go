package e2e

// A fourth round of the attacker's suite (see attack_test.go), written by a
// third review helper: COPY options and formats in depth, cursors and
// portals, results that carry a policy column's origin or lose it, casts
// and domains, prepared-statement argument forms, transactions that undo
// what the proxy saw, and the proxy's own catalog read run inside the
// client's session (its snapshot, its search_path).

import (
	"encoding/binary"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// markedLen is the length of s once mark() has replaced SECRET with a
// marker of this suite (SECRET_3nnn_x, 13 bytes).
func markedLen(s string) int { return len(strings.ReplaceAll(s, "SECRET", "SECRET_3000_x")) }

// binCopy is a binary COPY stream: the signature, flags, a header
// extension, the tuples (nil fields are NULL) and, when trailer, the -1
// end marker.
func binCopy(ext string, trailer bool, tuples ...[]*string) string {
	var b []byte
	b = append(b, "PGCOPY\n\xff\r\n\x00"...)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(markedLen(ext)))
	b = append(b, ext...)
	for _, tu := range tuples {
		b = binary.BigEndian.AppendUint16(b, uint16(len(tu)))
		for _, f := range tu {
			if f == nil {
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
				continue
			}
			b = binary.BigEndian.AppendUint32(b, uint32(markedLen(*f)))
			b = append(b, *f...)
		}
	}
	if trailer {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	}
	return string(b)
}

func strp(s string) *string { return &s }

// int4 is a binary int4 field.
func int4(n int32) *string {
	return strp(string(binary.BigEndian.AppendUint32(nil, uint32(n))))
}

// binArray is a binary one-dimensional array with element type elem,
// lower bound lb, and a declared length n (which may lie).
func binArray(elem uint32, lb int32, n int32, hasNull int32, elems ...string) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, uint32(hasNull))
	b = binary.BigEndian.AppendUint32(b, elem)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = binary.BigEndian.AppendUint32(b, uint32(lb))
	for _, e := range elems {
		b = binary.BigEndian.AppendUint32(b, uint32(markedLen(e)))
		b = append(b, e...)
	}
	return b
}

// parseBind is Parse (with declared parameter types), Bind (with format
// codes), Describe portal and Execute.
func parseBind(sql string, oids []uint32, formats []int16, params ...[]byte) []pgproto3.FrontendMessage {
	return []pgproto3.FrontendMessage{
		&pgproto3.Parse{Query: sql, ParameterOIDs: oids},
		&pgproto3.Bind{ParameterFormatCodes: formats, Parameters: params},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
	}
}

// wholeEnvelopes fails unless every non-NULL legacy_notes.body is a whole
// envelope: a cast or a COPY option the proxy got wrong truncated or
// split one.
var wholeEnvelope = regexp.MustCompile(`^v1:(siv:[A-Za-z0-9+/=]{20,}|[A-Za-z0-9+/=]{16,}:[A-Za-z0-9+/=]{16,})$`)

func wholeEnvelopes(t *testing.T, f *encFixture) {
	rows, err := f.direct.Query(testCtx(t), "SELECT id, body FROM public.legacy_notes WHERE body IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		var body string
		if err := rows.Scan(&id, &body); err != nil {
			t.Fatal(err)
		}
		if !wholeEnvelope.MatchString(body) {
			t.Errorf("legacy_notes id %d: body %.80q is not a whole envelope", id, body)
		}
	}
}

// bodyNull fails unless legacy_notes row id has a NULL body (want) or a
// non-NULL one.
func bodyNull(id int, want bool) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		var isNull bool
		if err := f.direct.QueryRow(testCtx(t), "SELECT body IS NULL FROM public.legacy_notes WHERE id = $1", id).Scan(&isNull); err != nil {
			t.Errorf("legacy_notes id %d: %v", id, err)
			return
		}
		if isNull != want {
			t.Errorf("legacy_notes id %d: body IS NULL = %v, want %v", id, isNull, want)
		}
		wholeEnvelopes(t, f)
	}
}

// A role with the rights an application has, and none on pg_inherits.
const limitedRole = `; DO $$ BEGIN CREATE ROLE attack4_app; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT ALL ON ALL TABLES IN SCHEMA public, tenant TO attack4_app; GRANT ALL ON ALL SEQUENCES IN SCHEMA public, tenant TO attack4_app;
GRANT USAGE ON SCHEMA tenant TO attack4_app; REVOKE SELECT ON pg_catalog.pg_inherits FROM PUBLIC`

// A set-returning function over clients, created on the server directly.
const setofClients = `; CREATE FUNCTION all_clients() RETURNS SETOF clients LANGUAGE sql AS 'SELECT * FROM clients'`

func attackCases4() []attackCase {
	return []attackCase{
		// A. COPY FROM: column lists.
		{name: "copy4/column_listed_twice", flights: []flight{
			fl(q("COPY legacy_notes (body, body) FROM STDIN"), copyData("SECRET\tSECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, \"body\", ID) FROM STDIN"), copyData("1\tSECRET\t2\n"), copyDone()),
		}},
		{name: "copy4/column_case_and_quoting", check: wholeEnvelopes, flights: []flight{
			fl(q("COPY legacy_notes (ID, BODY) FROM STDIN"), copyData("1\tSECRET\n"), copyDone()),
			fl(q(`COPY "legacy_notes" ("id", U&"bod\0079") FROM STDIN`), copyData("2\tSECRET\n"), copyDone()),
			fl(q(`COPY legacy_notes ("BODY") FROM STDIN`), copyData("SECRET\n"), copyDone()),
		}},
		{name: "copy4/extra_fields", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN"), copyData("1\tx\tSECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv)"), copyData("1,x,SECRET\n"), copyDone()),
		}},
		// B. COPY FROM: the header line as the server reads it.
		{name: "copy4/header_cr_line_end", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (HEADER true)"), copyData("id\tbody\r2\tSECRET\r"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv, HEADER true)"), copyData("id,body\r2,SECRET\r"), copyDone()),
		}},
		{name: "copy4/header_escaped_backslash", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (HEADER true)"), copyData("h\\\\\n2\tSECRET\n"), copyDone()),
		}},
		{name: "copy4/header_open_quote", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv, HEADER true)"), copyData("\"h\n2,SECRET\n"), copyDone()),
		}},
		// C. COPY FROM: option spellings the grammar still accepts.
		{name: "copy4/old_syntax_binary_keyword", flights: []flight{
			fl(q("COPY BINARY legacy_notes (id, body) FROM STDIN"), copyData(binCopy("", true, []*string{int4(1), strp("SECRET")})), copyDone()),
		}},
		{name: "copy4/old_syntax_using_delimiters", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN USING DELIMITERS '|'"), copyData("1|SECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN DELIMITERS ','"), copyData("2,SECRET\n"), copyDone()),
		}},
		{name: "copy4/old_syntax_with_options", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN WITH DELIMITER AS '|' NULL AS 'N'"), copyData("1|SECRET\n2|N\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN WITH CSV QUOTE AS '''' DELIMITER ';'"), copyData("3;'SECRET;x'\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN WITH BINARY"), copyData(binCopy("", true, []*string{int4(4), strp("SECRET")})), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN CSV HEADER"), copyData("id,body\n5,SECRET\n"), copyDone()),
		}},
		{name: "copy4/option_value_spellings", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (DELIMITER U&'\\007C')"), copyData("1|SECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (DELIMITER $$|$$)"), copyData("2|SECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (DELIMITER E'|')"), copyData("3|SECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT 'csv', DELIMITER '|')"), copyData("4|SECRET\n"), copyDone()),
			fl(q(`COPY legacy_notes (id, body) FROM STDIN ("format" "csv", "delimiter" '|')`), copyData("5|SECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT binary)"), copyData(binCopy("", true, []*string{int4(6), strp("SECRET")})), copyDone()),
		}},
		{name: "copy4/encoding_aliases", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (ENCODING 'UTF-8')"), copyData("1\tSECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (ENCODING 'unicode')"), copyData("2\tSECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (ENCODING 'SQL_ASCII')"), copyData("3\tSECRET\n"), copyDone()),
		}},
		// D. COPY FROM: envelopes written back where the options make
		// their characters special.
		{name: "copy4/delimiter_inside_envelope_text", check: bodyNull(1, false), flights: []flight{
			fl(q("COPY legacy_notes (body, id) FROM STDIN (DELIMITER ':')"), copyData("SECRET:1\n"), copyDone()),
		}},
		{name: "copy4/quote_letter_inside_envelope_csv", check: bodyNull(1, false), flights: []flight{
			fl(q("COPY legacy_notes (body, id) FROM STDIN (FORMAT csv, QUOTE 'v', DELIMITER ':')"), copyData("SECRET:1\n"), copyDone()),
		}},
		{name: "copy4/null_marker_kept", check: bodyNull(1, true), flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (NULL 'nil')"), copyData("1\tnil\n2\tSECRET\n"), copyDone()),
		}},
		{name: "copy4/csv_empty_vs_null", check: bodyNull(2, false), flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv)"), copyData("1,\n2,\"\"\n3,SECRET\n"), copyDone()),
		}},
		{name: "copy4/csv_escape_backslash", check: wholeEnvelopes, flights: []flight{
			fl(q(`COPY legacy_notes (id, body) FROM STDIN (FORMAT csv, ESCAPE '\')`), copyData("1,\"SECRET\\\"\"\n2,\"x\"\n"), copyDone()),
		}},
		// E. COPY FROM: binary records the server reads otherwise.
		{name: "copy4/binary_field_count_lies", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT binary)"), copyData(binCopy("", true, []*string{int4(1), strp("x"), strp("SECRET")})), copyDone()),
			fl(q("COPY legacy_notes (body) FROM STDIN (FORMAT binary)"), copyData(binCopy("", true, []*string{strp("x"), strp("SECRET")})), copyDone()),
		}},
		{name: "copy4/binary_header_extension", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT binary)"), copyData(binCopy("abcd", true, []*string{int4(1), strp("SECRET")})), copyDone()),
		}},
		{name: "copy4/binary_after_trailer", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT binary)"), copyData(binCopy("", true, []*string{int4(1), strp("a")})+"\x00\x02\x00\x00\x00\x04\x00\x00\x00\x02\x00\x00\x00\x0dSECRET"), copyDone()),
		}},
		{name: "copy4/binary_split_across_messages", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT binary)"), copyData(binCopy("", false, []*string{int4(1), strp("SECRET")})[:25]),
				copyData(binCopy("", true, []*string{int4(1), strp("SECRET")})[25:]), copyDone()),
		}},
		// F. COPY FROM: where it sits among other messages.
		{name: "copy4/in_multi_statement_query", flights: []flight{
			fl(q("SELECT 1; COPY legacy_notes (id, body) FROM STDIN"), copyData("1\tSECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN; SELECT 1"), copyData("2\tSECRET\n"), copyDone()),
			fl(q("BEGIN; COPY legacy_notes (id, body) FROM STDIN; COMMIT"), copyData("3\tSECRET\n"), copyDone()),
		}},
		{name: "copy4/extended_protocol", flights: []flight{
			fl(&pgproto3.Parse{Query: "COPY legacy_notes (id, body) FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}, copyData("1\tSECRET\n"), copyDone(), syncMsg()),
		}},
		{name: "copy4/data_after_copyfail_and_done", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN"), copyData("1\tx\n"), &pgproto3.CopyFail{Message: "stop"}, copyData("2\tSECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN"), copyData("3\tx\n"), copyDone(), copyData("4\tSECRET\n"), copyDone()),
		}},
		{name: "copy4/where_deterministic", flights: []flight{
			fl(q("COPY clients (workspace_id, first_name, last_name, email) FROM STDIN WHERE email = 'SECRET' OR email IN ('SECRET')"), copyDone()),
		}},
		// G. Cursors and portals.
		{name: "cur4/declare_with_parameter", flights: []flight{
			fl(seedRows),
			fl(ext("DECLARE k1 CURSOR WITH HOLD FOR SELECT first_name, email FROM clients WHERE email = $1 OR email IS NOT NULL", "SECRET"), syncMsg()),
			fl("FETCH ALL FROM k1"),
		}},
		{name: "cur4/fetch_without_describe", flights: []flight{
			fl(seedRows),
			fl("BEGIN", "DECLARE k2 CURSOR FOR SELECT email, phone, notes FROM clients"),
			fl(&pgproto3.Parse{Query: "FETCH 1 FROM k2"}, &pgproto3.Bind{}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Name: "f2", Query: "FETCH ALL FROM k2"}, &pgproto3.Describe{ObjectType: 'S', Name: "f2"}, &pgproto3.Bind{PreparedStatement: "f2"}, &pgproto3.Execute{}, syncMsg()),
			fl("COMMIT"),
		}},
		{name: "cur4/portal_row_limit", flights: []flight{
			fl(seedRows),
			fl("BEGIN"),
			fl(&pgproto3.Parse{Name: "pl", Query: "SELECT email, first_name FROM clients WHERE email = $1 OR true"},
				&pgproto3.Bind{DestinationPortal: "pl1", PreparedStatement: "pl", Parameters: [][]byte{[]byte("SECRET")}},
				&pgproto3.Execute{Portal: "pl1", MaxRows: 1}, syncMsg()),
			fl(&pgproto3.Execute{Portal: "pl1", MaxRows: 1}, syncMsg()),
			fl(&pgproto3.Describe{ObjectType: 'P', Name: "pl1"}, &pgproto3.Execute{Portal: "pl1"}, syncMsg()),
			fl("COMMIT"),
		}},
		{name: "cur4/describe_statement_only", flights: []flight{
			fl(seedRows),
			fl(&pgproto3.Parse{Name: "ds4", Query: "SELECT phone, email FROM clients WHERE email = $1 OR true"}, &pgproto3.Describe{ObjectType: 'S', Name: "ds4"},
				&pgproto3.Bind{PreparedStatement: "ds4", Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "cur4/binary_and_scroll_cursors", flights: []flight{
			fl(seedRows),
			fl("BEGIN", "DECLARE k3 BINARY CURSOR FOR SELECT email, phone FROM clients", "FETCH ALL FROM k3",
				"DECLARE k4 SCROLL CURSOR FOR SELECT first_name FROM clients", "FETCH LAST FROM k4", "FETCH ABSOLUTE 1 FROM k4", "MOVE FIRST IN k4", "FETCH RELATIVE 0 FROM k4", "COMMIT"),
		}},
		{name: "cur4/cursor_over_untraceable", flights: []flight{
			fl(seedRows),
			fl("BEGIN", "DECLARE k5 CURSOR FOR SELECT email FROM clients UNION ALL SELECT email FROM clients", "FETCH ALL FROM k5", "ROLLBACK"),
			fl("BEGIN", "DECLARE k6 CURSOR FOR SELECT (c).email, c FROM clients c", "FETCH ALL FROM k6", "ROLLBACK"),
		}},
		{name: "cur4/cursor_literal_compared", flights: []flight{
			fl("BEGIN", "DECLARE k7 CURSOR FOR SELECT id FROM clients WHERE phone = 'SECRET'", "ROLLBACK"),
			fl("BEGIN", "DECLARE k8 CURSOR FOR SELECT id FROM clients WHERE email IS NOT DISTINCT FROM 'SECRET'", "FETCH ALL FROM k8", "ROLLBACK"),
		}},
		// H. Results whose origin the server drops, or carries through
		// composites.
		{name: "out4/whole_row_casts", flights: []flight{
			fl(seedRows),
			fl("SELECT (c.*)::clients FROM clients c"),
			fl("SELECT clients FROM clients"),
			fl("SELECT (clients.*)::text FROM clients"),
			fl("SELECT (x).email FROM (SELECT c AS x FROM clients c) s"),
			fl("SELECT (SELECT c FROM clients c LIMIT 1).email"),
		}},
		{name: "out4/populate_record_from_row", flights: []flight{
			fl(seedRows),
			fl("SELECT r.email FROM clients c, json_populate_record(NULL::clients, to_json(c)) r"),
			fl("SELECT (jsonb_populate_record(NULL::clients, to_jsonb(c))).phone FROM clients c"),
			fl("SELECT r.email FROM clients c, LATERAL (SELECT (c).*) r"),
		}},
		{name: "out4/arrays_and_srf", flights: []flight{
			fl(seedRows),
			fl("SELECT unnest(ARRAY[email]) FROM clients"),
			fl("SELECT e FROM clients c, unnest(ARRAY[c.email, c.phone]) e"),
			fl("SELECT (ARRAY[email])[1] FROM clients"),
			fl("SELECT ARRAY[email] FROM clients"),
			fl("SELECT ARRAY(SELECT phone FROM clients)"),
		}},
		{name: "out4/builders", flights: []flight{
			fl(seedRows),
			fl("SELECT jsonb_build_object('k', email) FROM clients"),
			fl("SELECT to_jsonb(c) FROM clients c"),
			fl("SELECT xmlelement(name e, email) FROM clients"),
			fl("SELECT format('%s', phone) FROM clients"),
			fl("SELECT concat(email) FROM clients"),
			fl("SELECT json_agg(email) FROM clients"),
		}},
		{name: "out4/casts", flights: []flight{
			fl(seedRows),
			fl("SELECT email::varchar FROM clients"),
			fl("SELECT email::bpchar FROM clients"),
			fl("SELECT text(email) FROM clients"),
			fl("SELECT CAST(email AS name) FROM clients"),
			fl(`SELECT email COLLATE "C" FROM clients`),
			fl("SELECT email::text FROM clients"),
		}},
		{name: "out4/window_functions", flights: []flight{
			fl(seedRows),
			fl("SELECT lag(email) OVER (ORDER BY id) FROM clients"),
			fl("SELECT first_value(phone) OVER w FROM clients WINDOW w AS (PARTITION BY workspace_id)"),
			fl("SELECT nth_value(email, 1) OVER () FROM clients"),
		}},
		{name: "out4/nullif_returned", flights: []flight{
			fl(seedRows),
			fl("SELECT NULLIF(email, 'SECRET') FROM clients"),
			fl("SELECT NULLIF(phone, 'SECRET') AS phone FROM clients"),
		}},
		{name: "out4/copy_into_plain_table_returning", flights: []flight{
			fl(seedRows),
			fl("INSERT INTO tenant.clients (first_name, email) SELECT first_name, email FROM clients RETURNING email, first_name"),
			fl("UPDATE tenant.clients t SET email = c.email FROM clients c RETURNING t.email"),
			fl("SELECT email FROM tenant.clients"),
		}},
		{name: "out4/returning_whole_row", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING legacy_notes"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING legacy_notes::text"),
			fl("INSERT INTO legacy_notes AS n (body) VALUES ('SECRET') RETURNING (n.*)::legacy_notes, ROW(n.body)"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING to_jsonb(legacy_notes)"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING (SELECT body)"),
		}},
		{name: "out4/cte_returning_aliases", flights: []flight{
			fl(seedRows),
			fl("WITH u AS (UPDATE clients SET notes = 'n' RETURNING email AS first_name, first_name AS email) SELECT first_name, email FROM u"),
			fl("WITH d AS (DELETE FROM tenant.clients t USING clients c WHERE c.email = 'SECRET' RETURNING c.phone AS x) SELECT x FROM d"),
		}},
		{name: "out4/setof_function_documented", echoes: true, ddl: setofClients, flights: []flight{
			fl(seedRows),
			fl("SELECT email FROM all_clients()"),
			fl("SELECT (all_clients()).phone"),
		}},
		// I. Casts, domains and collations around compared and written
		// values.
		{name: "type4/cast_column_side", flights: []flight{
			fl("SELECT count(*) FROM clients WHERE email::varchar = 'SECRET'"),
			fl("SELECT count(*) FROM clients WHERE email::bpchar = 'SECRET'"),
			fl("SELECT count(*) FROM clients WHERE text(email) = 'SECRET'"),
			fl("SELECT count(*) FROM clients WHERE CAST(email AS name) = 'SECRET'"),
			fl(`SELECT count(*) FROM clients WHERE email COLLATE "C" = 'SECRET'`),
			fl("SELECT count(*) FROM clients WHERE email::text = 'SECRET'"),
		}},
		{name: "type4/cast_literal_side", flights: []flight{
			fl("SELECT count(*) FROM clients WHERE email = 'SECRET'::bpchar"),
			fl("SELECT count(*) FROM clients WHERE email = 'SECRET'::name"),
			fl("SELECT count(*) FROM clients WHERE email = 'SECRET'::char(3)"),
			fl("SELECT count(*) FROM clients WHERE email = CAST('SECRET' AS varchar(3))"),
			fl("SELECT count(*) FROM clients WHERE email = varchar 'SECRET'"),
			fl("SELECT count(*) FROM clients WHERE email IN ('SECRET'::varchar, bpchar 'SECRET')"),
		}},
		{name: "type4/write_casts", check: wholeEnvelopes, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET'::char(3))"),
			fl("INSERT INTO legacy_notes (body) VALUES (CAST('SECRET' AS character varying(4)))"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET'::name)"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET'::bpchar)"),
			fl("UPDATE legacy_notes SET body = 'SECRET'::varchar(2)"),
		}},
		{name: "type4/domains", ddl: "; CREATE DOMAIN dtext AS text; CREATE DOMAIN dvc AS varchar(5)", check: wholeEnvelopes, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET'::dtext)"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET'::dvc)"),
			fl("SELECT count(*) FROM clients WHERE email = 'SECRET'::dvc"),
			fl("SELECT count(*) FROM clients WHERE email::dtext = 'SECRET'"),
			fl("PREPARE dp(dvc) AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("EXECUTE dp('SECRET')"),
		}},
		{name: "type4/nondeterministic_collation", ddl: "; CREATE COLLATION ci4 (provider = icu, locale = 'und-u-ks-level2', deterministic = false)", flights: []flight{
			fl("SELECT count(*) FROM clients WHERE email = 'SECRET' COLLATE ci4"),
			fl("SELECT count(*) FROM clients WHERE email COLLATE ci4 IN ('SECRET')"),
		}},
		// J. Functions around policy values.
		{name: "fn4/functions_written", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES (format('%s', 'SECRET'))"),
			fl("INSERT INTO legacy_notes (body) VALUES (concat('SECRET'))"),
			fl("INSERT INTO legacy_notes (body) VALUES (coalesce('SECRET', NULL))"),
			fl("INSERT INTO legacy_notes (body) VALUES (greatest('SECRET'))"),
			fl("INSERT INTO legacy_notes (body) VALUES (nullif('SECRET', 'x'))"),
		}},
		{name: "fn4/set_returning_sources", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT x FROM unnest(ARRAY['SECRET', 'b']) x"),
			fl("INSERT INTO legacy_notes (body) SELECT x FROM unnest('{SECRET,b}'::text[]) x"),
			fl("INSERT INTO legacy_notes (body) SELECT regexp_split_to_table('SECRET,b', ',')"),
			fl(`INSERT INTO legacy_notes (body) SELECT jsonb_array_elements_text('["SECRET"]')`),
			fl("INSERT INTO legacy_notes (id, body) SELECT g, 'SECRET' FROM generate_series(1, 2) g"),
			fl("INSERT INTO legacy_notes (body) SELECT unnest(ARRAY['SECRET'])"),
		}},
		{name: "fn4/functions_compared", flights: []flight{
			fl("SELECT count(*) FROM clients WHERE email = format('%s', 'SECRET')"),
			fl("SELECT count(*) FROM clients WHERE email = ANY(string_to_array('SECRET,b', ','))"),
			fl("SELECT count(*) FROM clients WHERE email = ANY (SELECT x FROM unnest(ARRAY['SECRET']) x)"),
			fl("SELECT count(*) FROM clients WHERE jsonb_build_object('k', email) = jsonb_build_object('k', 'SECRET')"),
			fl(`SELECT count(*) FROM clients c WHERE to_jsonb(c) @> '{"email": "SECRET"}'`),
			fl("SELECT count(*) FROM clients WHERE email = (SELECT x FROM generate_series(1, 1), LATERAL (VALUES ('SECRET')) v(x))"),
			fl("SELECT count(*) FROM clients WHERE email = split_part('SECRET,x', ',', 1)"),
		}},
		{name: "fn4/server_plaintext_copied_in", plainOK: true, ddl: "; INSERT INTO tenant.clients (first_name) VALUES ('SECRET'); INSERT INTO legacy_notes (id) VALUES (7)", flights: []flight{
			fl("SET app.x = 'SECRET'"),
			fl("INSERT INTO legacy_notes (body) VALUES (current_setting('app.x'))"),
			fl("PREPARE sp4 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("EXECUTE sp4(current_setting('app.x'))"),
			fl("EXECUTE sp4((SELECT first_name FROM tenant.clients LIMIT 1))"),
			fl("UPDATE legacy_notes SET body = t.first_name FROM tenant.clients t"),
			fl("MERGE INTO legacy_notes n USING tenant.clients t ON false WHEN NOT MATCHED THEN INSERT (body) VALUES (t.first_name)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (7, 'a') ON CONFLICT (id) DO UPDATE SET body = (SELECT first_name FROM tenant.clients LIMIT 1)"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES (current_setting($1))", "app.x"), syncMsg()),
		}},
		// K. PREPARE with typed parameters and EXECUTE argument forms.
		{name: "prep4/typed_parameters", flights: []flight{
			fl("PREPARE t1(varchar) AS SELECT count(*) FROM clients WHERE email = $1"),
			fl("EXECUTE t1('SECRET')"),
			fl("PREPARE t2(unknown) AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("EXECUTE t2('SECRET')"),
			fl("PREPARE t3(bpchar) AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("EXECUTE t3('SECRET')"),
			fl("PREPARE t4(name) AS SELECT count(*) FROM clients WHERE email = $1"),
			fl("EXECUTE t4('SECRET')"),
			fl("PREPARE t5(text, text) AS INSERT INTO legacy_notes (body) VALUES ($2)"),
			fl("EXECUTE t5('x', 'SECRET')"),
		}},
		{name: "prep4/array_parameter", flights: []flight{
			fl("PREPARE a1(text[]) AS SELECT count(*) FROM clients WHERE email = ANY($1)"),
			fl("EXECUTE a1('{SECRET,b}')"),
			fl("EXECUTE a1(ARRAY['SECRET'])"),
			fl("EXECUTE a1('{SECRET}'::text[])"),
			fl("EXECUTE a1(string_to_array('SECRET', ','))"),
			fl("PREPARE a2(varchar[]) AS SELECT count(*) FROM clients WHERE email = ANY($1)"),
			fl("EXECUTE a2('{SECRET}')"),
		}},
		{name: "prep4/execute_argument_forms", flights: []flight{
			fl("PREPARE x1 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("EXECUTE x1($$SECRET$$)"),
			fl("EXECUTE x1(E'SECRET')"),
			fl("EXECUTE x1(U&'SECRET')"),
			fl("EXECUTE x1('SECRET'::text)"),
			fl("EXECUTE x1(CAST('SECRET' AS text))"),
			fl("EXECUTE x1(('SECRET'))"),
			fl("EXECUTE x1(text 'SECRET')"),
			fl("EXECUTE x1(N'SECRET')"),
			fl("EXECUTE x1(NULLIF('SECRET', 'x'))"),
			fl("EXECUTE x1('SEC'\n'SECRET')"),
			fl("EXECUTE/**/x1 /* c */ ( 'SECRET' )"),
			fl(`EXECUTE "x1"('SECRET')`),
		}},
		{name: "prep4/compare_forms", flights: []flight{
			fl("PREPARE c1 AS SELECT count(*) FROM clients WHERE email IS NOT DISTINCT FROM $1"),
			fl("EXECUTE c1('SECRET')"),
			fl("PREPARE c2 AS SELECT $1 IN (SELECT email FROM clients)"),
			fl("EXECUTE c2('SECRET')"),
			fl("PREPARE c3 AS SELECT count(*) FROM clients WHERE email = ANY($1::varchar[])"),
			fl("EXECUTE c3('{SECRET}')"),
			fl(`PREPARE "my p" AS INSERT INTO legacy_notes (body) VALUES ($1)`),
			fl(`EXECUTE "my p"('SECRET')`),
		}},
		{name: "prep4/positional_order", flights: []flight{
			fl("PREPARE o1 AS INSERT INTO legacy_notes (id, body) VALUES ($2::int, $1)"),
			fl("EXECUTE o1('SECRET', '3')"),
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($2)", ParameterOIDs: []uint32{25, 0}},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("x"), []byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
		}},
		// L. Extended protocol parameter types.
		{name: "ext4/array_declared_types", flights: []flight{
			fl(parseBind("SELECT count(*) FROM clients WHERE email = ANY($1)", []uint32{1015}, nil, []byte("{SECRET}")), syncMsg()),
			fl(parseBind("SELECT count(*) FROM clients WHERE email = ANY($1)", []uint32{1014}, nil, []byte("{SECRET}")), syncMsg()),
			fl(parseBind("SELECT count(*) FROM clients WHERE email = ANY($1)", []uint32{1003}, nil, []byte("{SECRET}")), syncMsg()),
			fl(parseBind("SELECT count(*) FROM clients WHERE email = ANY($1)", []uint32{25}, nil, []byte("{SECRET}")), syncMsg()),
			fl(parseBind("SELECT count(*) FROM clients WHERE email = ANY($1)", []uint32{199}, nil, []byte(`{"\"SECRET\""}`)), syncMsg()),
		}},
		{name: "ext4/binary_array_lies", flights: []flight{
			fl(parseBind("SELECT count(*) FROM clients WHERE email = ANY($1)", []uint32{1009}, []int16{1}, binArray(1043, 1, 1, 0, "SECRET")), syncMsg()),
			fl(parseBind("SELECT count(*) FROM clients WHERE email = ANY($1)", []uint32{1009}, []int16{1}, binArray(25, 1, 1, 0, "a", "SECRET")), syncMsg()),
			fl(parseBind("SELECT count(*) FROM clients WHERE email = ANY($1)", []uint32{1009}, []int16{1}, binArray(25, 0, 1, 0, "SECRET")), syncMsg()),
			fl(parseBind("SELECT count(*) FROM clients WHERE email = ANY($1)", []uint32{1009}, []int16{1}, binArray(25, 1, 1, 1, "SECRET")), syncMsg()),
			fl(parseBind("SELECT count(*) FROM clients WHERE email = ANY($1)", []uint32{1009}, []int16{1}, binArray(19, 1, 1, 0, "SECRET")), syncMsg()),
			fl(parseBind("SELECT count(*) FROM clients WHERE email = ANY($1)", []uint32{0}, []int16{1}, binArray(25, 1, 1, 0, "SECRET")), syncMsg()),
		}},
		{name: "ext4/binary_scalar_types", flights: []flight{
			fl(parseBind("SELECT count(*) FROM clients WHERE email = $1", []uint32{1043}, []int16{1}, []byte("SECRET")), syncMsg()),
			fl(parseBind("SELECT count(*) FROM clients WHERE email = $1", []uint32{19}, []int16{1}, []byte("SECRET")), syncMsg()),
			fl(parseBind("INSERT INTO legacy_notes (id, body) VALUES ($1, $2)", []uint32{23, 25}, []int16{1}, binary.BigEndian.AppendUint32(nil, 5), []byte("SECRET")), syncMsg()),
			fl(parseBind("SELECT count(*) FROM clients WHERE email IS NOT DISTINCT FROM $1", nil, []int16{1}, []byte("SECRET")), syncMsg()),
		}},
		{name: "ext4/refused_then_more_in_pipeline", flights: []flight{
			fl(ext("INSERT INTO legacy_notes (body) VALUES (lower($1))", "SECRET"), ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), ext("SELECT count(*) FROM clients WHERE email = $1", "SECRET"), syncMsg()),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
		}},
		// M. Transactions that undo what the proxy saw.
		{name: "tx4/rollback_undoes_set_path", flights: []flight{
			fl("BEGIN"), fl("SET search_path = tenant"), fl("SELECT 1"), fl("ROLLBACK"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "tx4/set_local_ends_at_commit", flights: []flight{
			fl("BEGIN"), fl("SET LOCAL search_path = tenant"), fl("SELECT 1"), fl("COMMIT"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "tx4/rollback_to_savepoint_path", flights: []flight{
			fl("BEGIN"), fl("SAVEPOINT s1"), fl("SET search_path = tenant"), fl("SELECT 1"), fl("ROLLBACK TO SAVEPOINT s1"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
			fl("COMMIT"),
		}},
		{name: "tx4/rollback_to_savepoint_temp_shadow", flights: []flight{
			fl("BEGIN"), fl("SAVEPOINT s2"), fl("CREATE TEMP TABLE legacy_notes (id int, body text)"), fl("SELECT count(*) FROM legacy_notes"), fl("ROLLBACK TO s2"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("COMMIT"),
		}},
		{name: "tx4/release_and_error_rollback", flights: []flight{
			fl("BEGIN"), fl("SAVEPOINT s3"), fl("SET search_path = tenant"), fl("RELEASE s3"), fl("SELECT 1/0"), fl("ROLLBACK"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "tx4/on_commit_drop_temp_shadow", flights: []flight{
			fl("BEGIN"), fl("CREATE TEMP TABLE legacy_notes (id int, body text) ON COMMIT DROP"), fl("SELECT count(*) FROM legacy_notes"), fl("COMMIT"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "tx4/implicit_tx_undone", flights: []flight{
			fl("CREATE TEMP TABLE legacy_notes (id int, body text); SELECT 1/0"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("SET search_path = tenant; SELECT 1/0"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "tx4/extended_implicit_tx_undone", flights: []flight{
			fl(ext("SET search_path = tenant"), ext("SELECT 1/0"), syncMsg()),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
		}},
		{name: "tx4/refused_query_with_set", flights: []flight{
			fl("SET search_path = tenant; SELECT lower(email) FROM public.clients"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "tx4/discard_temp", flights: []flight{
			fl("CREATE TEMP TABLE legacy_notes (id int, body text)"), fl("SELECT count(*) FROM legacy_notes"),
			fl("DISCARD TEMP"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		// N. The proxy's catalog read runs in the client's session: its
		// transaction snapshot and its search_path.
		{name: "snap4/rename_elsewhere_repeatable_read", maxAge: time.Millisecond, storedOnly: true, ddl: "; ALTER TABLE legacy_notes ADD CONSTRAINT pgcrypt_guard_body CHECK (body IS NULL OR body ~ '^v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/]+={0,2}$')", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl("BEGIN ISOLATION LEVEL REPEATABLE READ"), fl("SELECT count(*) FROM workspaces"),
			fl(direct("ALTER TABLE legacy_notes RENAME TO notes4")),
			fl("INSERT INTO notes4 (body) VALUES ('SECRET')"),
			fl("COMMIT"),
		}},
		{name: "snap4/attach_elsewhere_repeatable_read", maxAge: time.Millisecond, storedOnly: true, ddl: "; ALTER TABLE legacy_notes ADD CONSTRAINT pgcrypt_guard_body CHECK (body IS NULL OR body ~ '^v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/]+={0,2}$')", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl("BEGIN ISOLATION LEVEL REPEATABLE READ"), fl("SELECT count(*) FROM workspaces"),
			fl(direct("CREATE TABLE pn7 (id int, body text) PARTITION BY LIST (id); ALTER TABLE pn7 ATTACH PARTITION legacy_notes FOR VALUES IN (2)")),
			fl("INSERT INTO pn7 (id, body) VALUES (2, 'SECRET')"),
			fl("COMMIT"),
		}},
		{name: "snap4/view_elsewhere_serializable", maxAge: time.Millisecond, storedOnly: true, ddl: "; ALTER TABLE legacy_notes ADD CONSTRAINT pgcrypt_guard_body CHECK (body IS NULL OR body ~ '^v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/]+={0,2}$')", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl("BEGIN ISOLATION LEVEL SERIALIZABLE"), fl("SELECT count(*) FROM workspaces"),
			fl(direct("CREATE VIEW vv4 AS SELECT id, body FROM legacy_notes")),
			fl("INSERT INTO vv4 (body) VALUES ('SECRET')"),
			fl("COMMIT"),
		}},
		{name: "snap4/child_elsewhere_repeatable_read", maxAge: time.Millisecond, storedOnly: true, ddl: "; ALTER TABLE legacy_notes ADD CONSTRAINT pgcrypt_guard_body CHECK (body IS NULL OR body ~ '^v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/]+={0,2}$')", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl("BEGIN ISOLATION LEVEL REPEATABLE READ"), fl("SELECT count(*) FROM workspaces"),
			fl(direct("CREATE TABLE nchild4 () INHERITS (legacy_notes)")),
			fl("INSERT INTO nchild4 (body) VALUES ('SECRET')"),
			fl("COMMIT"),
		}},
		{name: "cat4/operator_hijack_through_proxy", flights: []flight{
			fl("CREATE FUNCTION public.neq4(name, name) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false'"),
			fl("CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.neq4)"),
			fl("CREATE FUNCTION public.oeq4(oid, oid) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false'"),
			fl("CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.oeq4)"),
			fl("SET search_path = public, pg_catalog"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl(insClients("'SECRET'")),
		}},
		{name: "cat4/oid_operator_hijack_through_proxy", flights: []flight{
			fl("CREATE FUNCTION public.oeq6(oid, oid) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false'"),
			fl("CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.oeq6)"),
			fl("SET search_path = public, pg_catalog"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl(ext("SELECT count(*) FROM clients WHERE email = $1", "SECRET"), syncMsg()),
		}},
		{name: "snap4/rename_column_elsewhere_repeatable_read", maxAge: time.Millisecond, storedOnly: true, ddl: "; ALTER TABLE legacy_notes ADD CONSTRAINT pgcrypt_guard_body CHECK (body IS NULL OR body ~ '^v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/]+={0,2}$')", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl("BEGIN ISOLATION LEVEL REPEATABLE READ"), fl("SELECT count(*) FROM workspaces"),
			fl(direct("ALTER TABLE legacy_notes RENAME COLUMN body TO b4")),
			fl("INSERT INTO legacy_notes (b4) VALUES ('SECRET')"),
			fl("COMMIT"),
		}},
		{name: "snap4/rename_read_committed_control", maxAge: time.Millisecond, flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl("BEGIN"), fl("SELECT count(*) FROM workspaces"),
			fl(direct("ALTER TABLE legacy_notes RENAME TO notes5")),
			fl("INSERT INTO notes5 (body) VALUES ('SECRET')"),
			fl("COMMIT"),
		}},
		{name: "cat4/operator_hijack_preexisting", ddl: "; CREATE FUNCTION public.neq5(name, name) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false'; CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.neq5); CREATE FUNCTION public.oeq5(oid, oid) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false'; CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.oeq5)", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl("SET search_path = public, pg_catalog"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
			fl("SELECT count(*) FROM clients WHERE email = 'SECRET'"),
		}},
		{name: "cat4/catalog_read_fails_in_transaction", ddl: "; CREATE FUNCTION public.slow4(name, name) RETURNS boolean LANGUAGE sql AS 'SELECT pg_sleep(0.05) IS NULL'; CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.slow4)", flights: []flight{
			fl("SET search_path = public, pg_catalog"),
			fl("SET statement_timeout = '20ms'"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("RESET statement_timeout"),
		}},
		{name: "cat4/role_without_catalog_rights", ddl: limitedRole, flights: []flight{
			fl("SET ROLE attack4_app"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
			fl("RESET ROLE"),
		}},
	}
}

// outCases also check what the proxy returns outside DataRows: COPY TO
// data and the text of errors and notices.
func outCases4() []attackCase {
	return []attackCase{
		{name: "copyout4/queries", flights: []flight{
			fl(seedRows),
			fl(q("COPY (SELECT email, notes FROM clients UNION ALL SELECT email, notes FROM clients) TO STDOUT")),
			fl(q("COPY (SELECT CASE WHEN true THEN email END FROM clients) TO STDOUT")),
			fl(q("COPY (SELECT COALESCE(phone, 'n/a') FROM clients) TO STDOUT")),
			fl(q("COPY (SELECT email::varchar FROM clients) TO STDOUT")),
			fl(q("COPY (SELECT c.email, w.name FROM clients c JOIN workspaces w ON w.id = c.workspace_id) TO STDOUT")),
			fl(q("COPY (SELECT (c).email FROM clients c) TO STDOUT")),
			fl(q("COPY (SELECT c FROM clients c) TO STDOUT")),
			fl(q("COPY (WITH x AS (SELECT email FROM clients) SELECT * FROM x) TO STDOUT")),
			fl(q("COPY (SELECT s.* FROM (SELECT email, phone FROM clients) s) TO STDOUT")),
			fl(q("COPY (SELECT ARRAY[email] FROM clients) TO STDOUT")),
			fl(q("COPY (TABLE clients) TO STDOUT")),
			fl(q("COPY (SELECT email, email AS e2 FROM clients) TO STDOUT")),
			fl(q("COPY (SELECT lag(email) OVER () FROM clients) TO STDOUT")),
		}, ddl: setofClients},
		{name: "copyout4/options", flights: []flight{
			fl(seedRows),
			fl(q("COPY clients TO STDOUT")),
			fl(q("COPY clients (email, notes) TO STDOUT (FORMAT binary)")),
			fl(q("COPY (SELECT * FROM clients) TO STDOUT (FORMAT csv, FORCE_QUOTE *)")),
			fl(q("COPY (SELECT email FROM clients) TO STDOUT WITH CSV")),
			fl(q("COPY BINARY clients (email) TO STDOUT")),
			fl(q("COPY clients (phone, email) TO STDOUT USING DELIMITERS '|'")),
			fl(q("COPY clients (email, phone) TO STDOUT (FORMAT csv, DELIMITER 'v')")),
			fl(q("COPY clients (email, phone) TO STDOUT (FORMAT csv, QUOTE 'v', DELIMITER ':')")),
			fl(q("COPY clients (email, phone) TO STDOUT (DELIMITER ':', NULL 'v1')")),
			fl(q("COPY clients (email) TO STDOUT (ENCODING 'LATIN1')")),
			fl(q("SELECT 1; COPY clients (email) TO STDOUT")),
			fl(ext("COPY clients (email) TO STDOUT"), syncMsg()),
		}},
		{name: "errout4/errors_carrying_values", echoes: true, ddl: "; CREATE UNIQUE INDEX ON clients (email)", flights: []flight{
			fl(seedRows),
			fl("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', 'SECRET' FROM workspaces UNION ALL SELECT id, 'a', 'b', 'SECRET' FROM workspaces"),
			fl("UPDATE clients SET phone = NULL, last_name = NULL"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET'), (1, 'SECRET')"),
			fl(ext("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, $1, 'b', $2 FROM workspaces", "x", "SECRET"), syncMsg()),
			fl(ext("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, $1, 'b', $2 FROM workspaces", "x", "SECRET"), syncMsg()),
		}},
	}
}

func TestAttackSuite4(t *testing.T) {
	cases := attackCases4()
	for _, c := range outCases4() {
		c.outputs = true
		cases = append(cases, c)
	}
	runAttacks(t, 3000, cases)
}
