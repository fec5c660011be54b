package e2e

// A thirteenth round of the attacker's suite (see attack_test.go), written
// by a review helper against commit 2f1420d. Its themes:
//
//   - the extended protocol at the message level: named portals whose
//     name an SQL CLOSE / DECLARE (or a COMMIT) run through Parse/Bind/
//     Execute gives to another query within one group, portals executed
//     with a row limit and interleaved, binary parameters (an empty
//     binary array that carries bytes after its header, per-parameter
//     format codes), ParameterOIDs that differ from the column's type, a
//     named statement closed and parsed again, Flush without Sync, a
//     Query in the middle of an extended group, errors mid-pipeline;
//   - the FunctionCall message and settings a session starts with (from
//     ALTER DATABASE … SET, as a startup parameter would give them);
//   - writes that reach a policy column through a row or record
//     (populate_record, ROW(…)::legacy_notes, multi-column SET from a
//     subquery, ON CONFLICT, MERGE, writable CTEs feeding each other);
//   - results: cursors WITH HOLD fetched in a later transaction, NOTIFY
//     payloads, large objects and server files feeding a policy column.
//
// Four of its 37 cases leaked, from two faults, both fixed: the proxy
// trusted what a portal name held after other statements ran in the
// group (it now describes a portal again when anything ran since its
// Bind), and relayed an empty binary array whole, bytes after its header
// included.

import (
	"encoding/binary"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// insBody13 stores an envelope of SECRET in legacy_notes through the proxy.
const insBody13 = "INSERT INTO legacy_notes (body) VALUES ('SECRET')"

// dbSet13 sets a parameter for every later session of the case's
// database, as a startup parameter (options=-c …) would.
func dbSet13(name, value string) string {
	return "; DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET " + name + " = " + value + "', current_database()); END$$"
}

// emptyBinArray13 is a binary text[] with no dimensions, followed by
// trailing bytes that array_recv never reads.
func emptyBinArray13(trailing string) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 0)  // ndim
	b = binary.BigEndian.AppendUint32(b, 0)  // flags
	b = binary.BigEndian.AppendUint32(b, 25) // element type text
	return append(b, trailing...)
}

func int4bin13(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func attackCases13() []attackCase {
	return []attackCase{
		// A. Named portals whose name SQL gives to another query.
		// Leaked before the fix: proxy/frontend.go frontendExecute trusts sp.portals["p13"] (bound and described as a plain query) within the group; an SQL CLOSE/DECLARE run through Parse/Bind/Execute gives the name to a cursor over legacy_notes, nothing clears the map, no Describe is sent, and backendDataRow passes the envelope on.
		{name: "portal13/sql_close_declare_same_name", flights: []flight{
			fl(insBody13),
			fl("BEGIN"),
			fl(&pgproto3.Parse{Query: "SELECT 'plain'::text AS body"},
				&pgproto3.Bind{DestinationPortal: "p13"},
				&pgproto3.Describe{ObjectType: 'P', Name: "p13"},
				&pgproto3.Execute{Portal: "p13"},
				ext("CLOSE p13"),
				ext("DECLARE p13 CURSOR FOR SELECT body FROM legacy_notes"),
				&pgproto3.Execute{Portal: "p13"},
				syncMsg()),
			fl("COMMIT"),
		}},
		// Leaked before the fix: proxy/frontend.go frontendExecute skips its own Describe for a portal whose statement has a shape (portal.rowShape falls back to statement.shape); CLOSE ALL and DECLARE through the extended protocol rebind the portal name to a policy query unseen, and the envelope is returned.
		{name: "portal13/close_all_declare_statement_described", flights: []flight{
			fl(insBody13),
			fl(&pgproto3.Parse{Name: "s13", Query: "SELECT 'plain'::text AS body UNION ALL SELECT 'more'"},
				&pgproto3.Describe{ObjectType: 'S', Name: "s13"}, syncMsg()),
			fl("BEGIN"),
			fl(&pgproto3.Bind{DestinationPortal: "p13", PreparedStatement: "s13"},
				&pgproto3.Execute{Portal: "p13", MaxRows: 1},
				ext("CLOSE ALL"),
				ext("DECLARE p13 CURSOR FOR SELECT body FROM legacy_notes"),
				&pgproto3.Execute{Portal: "p13", MaxRows: 1},
				syncMsg()),
			fl("COMMIT"),
		}},
		// Leaked before the fix: proxy/frontend.go frontendExecute keeps sp.portals across a COMMIT run through Execute (only Sync and simple Queries clear it); the WITH HOLD cursor declared under the freed portal name is read with the old plain shape, so the envelope reaches the client.
		{name: "portal13/commit_begin_declare_same_name", flights: []flight{
			fl(insBody13),
			fl(&pgproto3.Parse{Name: "s13", Query: "SELECT 'plain'::text AS body"},
				&pgproto3.Describe{ObjectType: 'S', Name: "s13"}, syncMsg()),
			fl("BEGIN"),
			fl(&pgproto3.Bind{DestinationPortal: "p13", PreparedStatement: "s13"},
				&pgproto3.Execute{Portal: "p13"},
				ext("COMMIT"),
				ext("DECLARE p13 CURSOR WITH HOLD FOR SELECT body FROM legacy_notes"),
				&pgproto3.Execute{Portal: "p13"},
				syncMsg()),
			fl("CLOSE ALL"),
		}},
		{name: "portal13/declare_by_query_mid_group", flights: []flight{
			fl(insBody13),
			fl("BEGIN"),
			fl(&pgproto3.Parse{Query: "SELECT 'plain'::text AS body"},
				&pgproto3.Bind{DestinationPortal: "p13"},
				&pgproto3.Describe{ObjectType: 'P', Name: "p13"},
				&pgproto3.Execute{Portal: "p13"},
				q("CLOSE p13; DECLARE p13 CURSOR FOR SELECT body FROM legacy_notes"),
				&pgproto3.Execute{Portal: "p13"},
				syncMsg()),
			fl("COMMIT"),
		}},
		{name: "portal13/interleaved_row_limits", flights: []flight{
			fl(insBody13, insBody13, "INSERT INTO legacy_notes (body) VALUES ('y')"),
			fl("BEGIN"),
			fl(&pgproto3.Parse{Name: "a13", Query: "SELECT body, id FROM legacy_notes"},
				&pgproto3.Parse{Name: "b13", Query: "SELECT id, 'v1:AAAAAAAAAAAAAAAA' || '' AS x FROM legacy_notes WHERE false"},
				&pgproto3.Bind{DestinationPortal: "pa", PreparedStatement: "a13"},
				&pgproto3.Bind{DestinationPortal: "pb", PreparedStatement: "a13"},
				&pgproto3.Execute{Portal: "pa", MaxRows: 1},
				&pgproto3.Execute{Portal: "pb", MaxRows: 2},
				&pgproto3.Bind{DestinationPortal: "pc", PreparedStatement: "b13"},
				&pgproto3.Execute{Portal: "pc"},
				&pgproto3.Execute{Portal: "pa", MaxRows: 1},
				syncMsg()),
			fl(&pgproto3.Execute{Portal: "pb"}, &pgproto3.Execute{Portal: "pa"}, syncMsg()),
			fl("COMMIT"),
		}},
		{name: "portal13/hold_cursor_executed_as_portal", flights: []flight{
			fl(insBody13),
			fl("BEGIN", "DECLARE h13 CURSOR WITH HOLD FOR SELECT id, body FROM legacy_notes", "COMMIT"),
			fl(&pgproto3.Execute{Portal: "h13", MaxRows: 1}, syncMsg()),
			fl("BEGIN"),
			fl(&pgproto3.Describe{ObjectType: 'P', Name: "h13"}, ext("MOVE ABSOLUTE 0 IN h13"), &pgproto3.Execute{Portal: "h13"}, syncMsg()),
			fl("ROLLBACK", "CLOSE h13"),
		}},
		// B. Binary parameters and declared types.
		// An array with no dimensions is relayed whole, whatever follows
		// its header; the server refuses it only after it has the bytes.
		// Leaked before the fix: proxy/arrays.go encryptBinaryArray relays a binary array with ndim = 0 whole ("return append(dst, v...)"), so bytes after its header reach PostgreSQL as plaintext (the server rejects the Bind with 22P03 only after receiving them).
		{name: "bin13/empty_array_trailing_bytes", flights: []flight{
			fl(&pgproto3.Parse{Query: "SELECT count(*) FROM clients WHERE email = ANY($1)", ParameterOIDs: []uint32{1009}},
				&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{emptyBinArray13("SECRET")}},
				&pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "SELECT count(*) FROM clients WHERE email <> ALL($1)"},
				&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{emptyBinArray13("SECRET")}},
				&pgproto3.Execute{}, syncMsg()),
		}},
		{name: "bin13/per_parameter_formats", flights: []flight{
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (id, body) VALUES ($1, $2), ($3, $4)"},
				&pgproto3.Bind{ParameterFormatCodes: []int16{1, 0, 1, 1}, Parameters: [][]byte{int4bin13(31), []byte("SECRET"), int4bin13(32), []byte("SECRET")}},
				&pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "SELECT id FROM legacy_notes WHERE id = $1 AND body IS NOT NULL"},
				&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{int4bin13(31)}, ResultFormatCodes: []int16{1}},
				&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "SELECT body, id FROM legacy_notes"},
				&pgproto3.Bind{ResultFormatCodes: []int16{1, 0}}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "bin13/unknown_oid_binary", flights: []flight{
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1)", ParameterOIDs: []uint32{705}},
				&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1)", ParameterOIDs: []uint32{0}},
				&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "bin13/declared_bytea_array_record", flights: []flight{
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1)", ParameterOIDs: []uint32{17}},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1)", ParameterOIDs: []uint32{1009}},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("{SECRET}")}}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1)", ParameterOIDs: []uint32{2249}},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("(SECRET)")}}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (id, body) VALUES ($2, $1)", ParameterOIDs: []uint32{0, 25}},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("SECRET"), []byte("5")}}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "bin13/declared_domain_over_text", ddl: "; CREATE DOMAIN d13 AS text", flights: []flight{
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1::d13)"},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
			fl(ext("INSERT INTO legacy_notes (body) SELECT x FROM (SELECT $1::d13 AS x) s", "SECRET"), syncMsg()),
		}},
		// C. Named statements parsed again, pipelines with errors.
		{name: "stmt13/close_and_reparse_in_group", flights: []flight{
			fl(&pgproto3.Parse{Name: "r13", Query: "SELECT $1::text AS x"}, syncMsg()),
			fl(&pgproto3.Close{ObjectType: 'S', Name: "r13"},
				&pgproto3.Parse{Name: "r13", Query: "INSERT INTO legacy_notes (body) VALUES ($1)"},
				&pgproto3.Bind{PreparedStatement: "r13", Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Bind{PreparedStatement: "r13", Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "stmt13/deallocate_query_then_reparse", flights: []flight{
			fl(&pgproto3.Parse{Name: "r13", Query: "SELECT $1::text AS x"}, syncMsg()),
			fl(q("DEALLOCATE r13"),
				&pgproto3.Parse{Name: "r13", Query: "INSERT INTO legacy_notes (body) VALUES ($1)"},
				&pgproto3.Bind{PreparedStatement: "r13", Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "stmt13/failed_reparse_keeps_old", flights: []flight{
			fl(&pgproto3.Parse{Name: "r13", Query: "INSERT INTO legacy_notes (body) VALUES ($1)"}, syncMsg()),
			fl(&pgproto3.Parse{Name: "r13", Query: "SELECT $1::text AS x"}, syncMsg()),
			fl(&pgproto3.Bind{PreparedStatement: "r13", Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "pipe13/flush_then_query_then_bind", ddl: "; CREATE TABLE tenant.legacy_notes (id serial, body text)", flights: []flight{
			fl(&pgproto3.Parse{Name: "f13", Query: "INSERT INTO legacy_notes (body) VALUES ($1)"},
				&pgproto3.Bind{PreparedStatement: "f13", Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{},
				&pgproto3.Flush{},
				q("SET search_path = tenant, public"),
				&pgproto3.Bind{PreparedStatement: "f13", Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{},
				syncMsg()),
		}},
		{name: "pipe13/error_then_write_then_sync", flights: []flight{
			fl(ext("SELECT 1/0"), ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg(),
				ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
			fl(ext("SELECT body FROM legacy_notes"), syncMsg()),
		}},
		{name: "pipe13/search_path_by_execute_then_named_bind", ddl: tenantLikePublic, flights: []flight{
			fl(&pgproto3.Parse{Name: "n13", Query: insClients("$1")}, syncMsg()),
			fl(ext("SELECT set_config('search_path', 'tenant, public', false)"),
				&pgproto3.Bind{PreparedStatement: "n13", Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Bind{PreparedStatement: "n13", Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
		}},
		// D. FunctionCall and session-start settings.
		{name: "fc13/set_config_array_nulls", flights: []flight{
			fl(callSetConfig("array_nulls", "off")),
			fl(ext("SELECT count(*) FROM clients WHERE email = ANY($1)", "{SECRET,NULL}"), syncMsg()),
		}},
		{name: "fc13/set_config_scs_then_named_parse", flights: []flight{
			fl(callSetConfig("standard_conforming_strings", "off"),
				&pgproto3.Parse{Name: "c13", Query: `INSERT INTO legacy_notes (id, body) SELECT 1, 'x' WHERE 'a\' <> 'b' -- ' <> 'c' UNION ALL SELECT 2, 'SECRET' --`},
				&pgproto3.Bind{PreparedStatement: "c13"}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "start13/database_scs_off", ddl: dbSet13("standard_conforming_strings", "off"), flights: []flight{
			fl(`INSERT INTO legacy_notes (id, body) SELECT 1, 'x' WHERE 'a\' <> 'b' -- ' <> 'c' UNION ALL SELECT 2, 'SECRET' --`),
			fl(ext(`INSERT INTO legacy_notes (id, body) SELECT 1, 'x' WHERE 'a\' <> 'b' -- ' <> 'c' UNION ALL SELECT 2, 'SECRET' --`), syncMsg()),
		}},
		{name: "start13/database_client_encoding_sjis", ddl: dbSet13("client_encoding", "SJIS"), flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
		}},
		{name: "start13/database_search_path_tenant", ddl: tenantLikePublic + dbSet13("search_path", "tenant, public"), plainOK: true, flights: []flight{
			fl(insClients("'SECRET'")),
			fl("SELECT first_name FROM public.clients"),
		}},
		{name: "start13/database_output_styles", ddl: dbSet13("bytea_output", "escape") + dbSet13("extra_float_digits", "3") + dbSet13("DateStyle", "''SQL, DMY''"), flights: []flight{
			fl(insBody13),
			fl("INSERT INTO legacy_notes (body) VALUES (1.50), (true)"),
			fl(ext("SELECT body, body::bytea IS NOT NULL FROM legacy_notes"), syncMsg()),
			fl("SELECT body FROM legacy_notes"),
		}},
		// E. Writes through rows and records.
		{name: "row13/populate_recordset_column_list", flights: []flight{
			fl(`INSERT INTO legacy_notes (id, body) SELECT id, body FROM jsonb_populate_recordset(NULL::legacy_notes, '[{"id": 7, "body": "SECRET"}]')`),
			fl(ext(`INSERT INTO legacy_notes (id, body) SELECT r.id, r.body FROM json_populate_record(NULL::legacy_notes, $1) r`, `{"id": 8, "body": "SECRET"}`), syncMsg()),
		}},
		{name: "row13/composite_field_of_row_cast", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT (ROW(1, 'SECRET')::legacy_notes).body"),
			fl("INSERT INTO legacy_notes (body) SELECT (r).body FROM (SELECT ROW(1, 'SECRET')::legacy_notes AS r) s"),
			fl("UPDATE legacy_notes SET body = (ROW(1, 'SECRET')::legacy_notes).body"),
		}},
		{name: "row13/update_set_row_from_record_subquery", ddl: "; INSERT INTO legacy_notes (id) VALUES (1)", flights: []flight{
			fl(`UPDATE legacy_notes SET (id, body) = (SELECT * FROM json_populate_record(NULL::legacy_notes, '{"id": 1, "body": "SECRET"}'))`),
			fl(`UPDATE legacy_notes SET (id, body) = (SELECT r.* FROM json_populate_record(NULL::legacy_notes, '{"id": 1, "body": "SECRET"}') r)`),
			fl(`UPDATE legacy_notes SET (body, id) = (SELECT x.b, 1 FROM (SELECT 'SECRET') x(b))`),
		}},
		{name: "row13/on_conflict_excluded_concat_and_row", ddl: "; INSERT INTO legacy_notes (id) VALUES (1)", flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body || 'SECRET'"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET') ON CONFLICT (id) DO UPDATE SET (body, id) = (SELECT EXCLUDED.body, EXCLUDED.id)"),
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (1, 'y') ON CONFLICT ON CONSTRAINT legacy_notes_pkey DO UPDATE SET (body) = ROW($1)", "SECRET"), syncMsg()),
			fl("SELECT body FROM legacy_notes"),
		}},
		{name: "row13/merge_source_record_function", flights: []flight{
			fl(`MERGE INTO legacy_notes t USING json_populate_record(NULL::legacy_notes, '{"id": 4, "body": "SECRET"}') s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id, body) VALUES (s.id, s.body)`),
			fl(`MERGE INTO legacy_notes t USING (SELECT (ROW(5, 'SECRET')::legacy_notes).*) s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id, body) VALUES (s.id, s.body)`),
			fl(`MERGE INTO legacy_notes t USING (SELECT 6 AS id, 'SECRET' AS body) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET body = s.body WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.body)`),
		}},
		{name: "row13/writable_ctes_feeding", flights: []flight{
			fl("WITH a AS (INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING id, body), b AS (INSERT INTO legacy_notes (body) SELECT body FROM a RETURNING body) SELECT body FROM b"),
			fl("WITH a AS (UPDATE legacy_notes SET body = 'SECRET' RETURNING legacy_notes) SELECT a FROM a"),
			fl("WITH a AS (DELETE FROM legacy_notes RETURNING *) INSERT INTO legacy_notes SELECT * FROM a RETURNING body"),
		}},
		{name: "row13/writable_cte_plain_returning_into_body", plainOK: true, flights: []flight{
			fl("WITH a AS (INSERT INTO tenant.clients (first_name) VALUES ('SECRET') RETURNING first_name) INSERT INTO legacy_notes (body) SELECT first_name FROM a"),
			fl("WITH a AS (INSERT INTO tenant.clients (first_name) VALUES ('SECRET') RETURNING first_name), b AS (UPDATE legacy_notes SET body = a.first_name FROM a) SELECT 1"),
		}},
		{name: "row13/insert_select_whole_row_as_text", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT s FROM (SELECT 'SECRET' AS x) s"),
			fl("INSERT INTO legacy_notes (body) SELECT s::text FROM (SELECT 'SECRET' AS x) s"),
			fl("INSERT INTO legacy_notes (body) VALUES ((SELECT s FROM (VALUES ('SECRET')) s))"),
		}},
		{name: "row13/cte_named_like_policy_table", flights: []flight{
			fl("WITH legacy_notes AS (SELECT 'SECRET' AS body) INSERT INTO legacy_notes (body) SELECT body FROM legacy_notes"),
			fl("INSERT INTO legacy_notes (body) SELECT body FROM (WITH legacy_notes AS MATERIALIZED (SELECT 'SECRET' AS body) SELECT body FROM legacy_notes) s"),
			fl(ext("WITH RECURSIVE legacy_notes(body) AS (SELECT $1::text UNION ALL SELECT body FROM legacy_notes WHERE false) INSERT INTO public.legacy_notes (body) SELECT body FROM legacy_notes", "SECRET"), syncMsg()),
			fl("SELECT body FROM public.legacy_notes"),
		}},
		// F. Results, cursors, notifications and server-side sources.
		{name: "out13/hold_cursor_fetch_later_tx", flights: []flight{
			fl(insBody13),
			fl("BEGIN", "DECLARE k13 SCROLL CURSOR WITH HOLD FOR SELECT body AS b, id FROM legacy_notes", "COMMIT"),
			fl("BEGIN", "MOVE LAST IN k13", "FETCH PRIOR FROM k13", "FETCH ABSOLUTE 1 FROM k13", "COMMIT"),
			fl(&pgproto3.Parse{Name: "fk13", Query: "FETCH ABSOLUTE 1 FROM k13"}, &pgproto3.Bind{PreparedStatement: "fk13"}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "out13/notify_payload", outputs: true, flights: []flight{
			fl(insBody13),
			fl("LISTEN c13"),
			fl("SELECT pg_notify('c13', body) FROM legacy_notes"),
			fl("WITH i AS (INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING body) SELECT pg_notify('c13', (SELECT body FROM i))"),
		}},
		{name: "out13/large_object_into_body", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT convert_from(lo_get(lo_from_bytea(0, convert_to('SECRET', 'UTF8'))), 'UTF8')"),
			fl(ext("INSERT INTO legacy_notes (body) SELECT convert_from(lo_get(lo_from_bytea(0, $1)), 'UTF8')", "SECRET"), syncMsg()),
		}},
		{name: "out13/server_file_into_body", plainOK: true, flights: []flight{
			fl("COPY (SELECT 'SECRET') TO '/tmp/pgcrypt_attack13.txt'"),
			fl("COPY legacy_notes (body) FROM '/tmp/pgcrypt_attack13.txt'"),
			fl("INSERT INTO legacy_notes (body) SELECT pg_read_file('/tmp/pgcrypt_attack13.txt')"),
			fl("CREATE TEMP TABLE f13 (x text)", "COPY f13 FROM '/tmp/pgcrypt_attack13.txt'", "INSERT INTO legacy_notes (body) SELECT x FROM f13"),
		}},
		{name: "out13/copy_through_extended", outputs: true, flights: []flight{
			fl(insBody13),
			fl(&pgproto3.Parse{Query: "COPY (SELECT body FROM legacy_notes) TO STDOUT"}, &pgproto3.Bind{}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "COPY legacy_notes (body) TO STDOUT"}, &pgproto3.Bind{}, &pgproto3.Execute{}, syncMsg()),
		}},
	}
}

func TestAttackSuite13(t *testing.T) { runAttacks(t, 13000, attackCases13()) }
