package e2e

// A third round of the attacker's suite (see attack_test.go and
// attack_review_test.go), written by a second review helper against the
// fixes of the first two rounds.

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// bindNamed binds statement name with text parameters and executes it.
func bindNamed(name string, params ...string) []pgproto3.FrontendMessage {
	vals := make([][]byte, len(params))
	for i, p := range params {
		vals[i] = []byte(p)
	}
	return []pgproto3.FrontendMessage{
		&pgproto3.Bind{PreparedStatement: name, Parameters: vals},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
	}
}

func parseNamed(name, sql string) pgproto3.FrontendMessage {
	return &pgproto3.Parse{Name: name, Query: sql}
}

// A plpgsql function that drops nothing but changes the search_path, as
// sneaky does, callable whatever the search_path is.
const sneakyPublic = `; CREATE FUNCTION public.sneaky2(name text, val text) RETURNS text LANGUAGE sql AS $$ SELECT pg_catalog.set_config(name, val, false) $$`

// A column default that changes the search_path as a side effect.
const sneakyDefault = `; CREATE TABLE public.side (id int, x text DEFAULT pg_catalog.set_config('search_path', 'public', false))`

func attackCases3() []attackCase {
	return []attackCase{
		// A. search_path changed unseen while the proxy resolves a policy
		// table's name to nothing: the name is sent unqualified and the
		// server then finds the policy table.
		{name: "path3/unresolved_function_call", flights: []flight{
			fl("SET search_path = tenant"),
			fl(callSetConfig("search_path", "public"), q("INSERT INTO legacy_notes (body) VALUES ('SECRET')")),
		}},
		{name: "path3/unresolved_user_function_same_query", ddl: sneakyPublic, flights: []flight{
			fl("SET search_path = tenant"),
			fl("SELECT public.sneaky2('search_path', 'public'); INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "path3/unresolved_user_function_separate", ddl: sneakyPublic, flights: []flight{
			fl("SET search_path = tenant"),
			fl("SELECT public.sneaky2('search_path', 'public')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "path3/unresolved_user_function_extended", ddl: sneakyPublic, flights: []flight{
			fl("SET search_path = tenant"),
			fl(ext("SELECT public.sneaky2('search_path', 'public')"), ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
		}},
		{name: "path3/unresolved_empty_path_clients", ddl: tenantLikePublic + sneakyPublic, flights: []flight{
			fl("SET search_path = ''"),
			fl("SELECT public.sneaky2('search_path', 'public')"),
			fl(ext("INSERT INTO clients (workspace_id, first_name, last_name) SELECT id, $1, 'x' FROM public.workspaces", "SECRET"), syncMsg()),
		}},
		{name: "path3/unresolved_default_side_effect", ddl: sneakyDefault, flights: []flight{
			fl("SET search_path = tenant"),
			fl("INSERT INTO public.side (id) VALUES (1); INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "path3/unresolved_named_statement_then_set", flights: []flight{
			fl("SET search_path = tenant"),
			fl(parseNamed("u1", "INSERT INTO legacy_notes (body) VALUES ($1)"), syncMsg()),
			fl("SET search_path = public"),
			fl(bindNamed("u1", "SECRET"), syncMsg()),
		}},
		{name: "path3/unresolved_sql_prepare_then_set", flights: []flight{
			fl("SET search_path = tenant"),
			fl("PREPARE u2 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("SET search_path = public"),
			fl("EXECUTE u2('SECRET')"),
		}},
		{name: "path3/unresolved_named_statement_unseen", ddl: sneakyPublic, flights: []flight{
			fl("SET search_path = tenant"),
			fl(parseNamed("u3", "INSERT INTO legacy_notes (body) VALUES ($1)"), syncMsg()),
			fl("SELECT public.sneaky2('search_path', 'public')"),
			fl(bindNamed("u3", "SECRET"), syncMsg()),
		}},
		{name: "path3/temp_shadow_then_drop_unseen", plainOK: true, ddl: "; CREATE FUNCTION public.droptemp() RETURNS int LANGUAGE plpgsql AS $$ BEGIN DROP TABLE pg_temp.legacy_notes; RETURN 1; END $$", flights: []flight{
			fl("CREATE TEMP TABLE legacy_notes (id int, body text)"),
			fl("SELECT public.droptemp()"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "path3/quoted_schema_spelling", plainOK: true, ddl: tenantLikePublic, flights: []flight{
			fl(`SET search_path = "tenant", public`),
			fl(insClients("'SECRET'")),
			fl(`INSERT INTO "public"."clients" (workspace_id, first_name, last_name) SELECT id, 'SECRET', 'x' FROM workspaces`),
		}},
		{name: "path3/only_inheritance_parent", flights: []flight{
			fl("INSERT INTO ONLY legacy_notes (body) VALUES ('SECRET')"),
			fl("UPDATE ONLY legacy_notes SET body = 'SECRET'"),
			fl("SELECT count(*) FROM ONLY clients WHERE email = 'SECRET'"),
		}},
		// B. Prepared statement names as the server keeps them.
		{name: "prep3/duplicate_parse_name", flights: []flight{
			fl(parseNamed("d1", "INSERT INTO legacy_notes (body) VALUES ($1)"), syncMsg()),
			fl(parseNamed("d1", "SELECT $1::text AS x"), syncMsg()),
			fl(bindNamed("d1", "SECRET"), syncMsg()),
		}},
		{name: "prep3/duplicate_prepare_sql", flights: []flight{
			fl("PREPARE d2 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("PREPARE d2 AS SELECT $1::text AS x"),
			fl("EXECUTE d2('SECRET')"),
		}},
		{name: "prep3/aborted_reprepare", flights: []flight{
			fl("PREPARE d3 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("SELECT 1/0; DEALLOCATE d3; PREPARE d3 AS SELECT $1::text AS x"),
			fl("EXECUTE d3('SECRET')"),
		}},
		{name: "prep3/failed_txn_reprepare", flights: []flight{
			fl("PREPARE d4 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("BEGIN"), fl("SELECT 1/0"), fl("DEALLOCATE d4"), fl("PREPARE d4 AS SELECT $1::text AS x"), fl("ROLLBACK"),
			fl("EXECUTE d4('SECRET')"),
		}},
		{name: "prep3/failed_txn_reprepare_pipelined", flights: []flight{
			fl("PREPARE d5 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("BEGIN", "SELECT 1/0", "DEALLOCATE d5", "PREPARE d5 AS SELECT $1::text AS x", "ROLLBACK"),
			fl("EXECUTE d5('SECRET')"),
		}},
		{name: "prep3/name_case", flights: []flight{
			fl("PREPARE pq AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl(`PREPARE "PQ" AS SELECT $1::text AS x`),
			fl("EXECUTE pq('SECRET')"),
			fl("EXECUTE PQ('SECRET')"),
		}},
		{name: "prep3/protocol_name_case", flights: []flight{
			fl(parseNamed("INS", "SELECT $1::text AS x"), syncMsg()),
			fl("PREPARE ins AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("EXECUTE ins('SECRET')"),
			fl(bindNamed("ins", "SECRET"), syncMsg()),
		}},
		{name: "prep3/refused_unnamed_parse_then_bind", flights: []flight{
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1)"}, syncMsg()),
			fl(&pgproto3.Parse{Query: "SELECT $1::text FROM clients WHERE first_name = 'x'"}, &pgproto3.Bind{Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Bind{Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "prep3/refused_named_parse_keeps_old", flights: []flight{
			fl(parseNamed("r1", "INSERT INTO legacy_notes (body) VALUES ($1)"), syncMsg()),
			fl(&pgproto3.Close{ObjectType: 'S', Name: "r1"}, parseNamed("r1", "SELECT $1::text FROM clients WHERE first_name = 'x'"), syncMsg()),
			fl(bindNamed("r1", "SECRET"), syncMsg()),
		}},
		{name: "prep3/server_failed_parse_keeps_old", flights: []flight{
			fl(parseNamed("r2", "INSERT INTO legacy_notes (body) VALUES ($1)"), syncMsg()),
			fl(parseNamed("r2", "SELECT $1::text AS x FROM nonexistent_table"), syncMsg()),
			fl(bindNamed("r2", "SECRET"), syncMsg()),
		}},
		{name: "prep3/ctas_execute_args", check: noTable("copy9"), flights: []flight{
			fl("PREPARE c9(text) AS SELECT id FROM clients WHERE email = $1"),
			fl("CREATE TABLE copy9 AS EXECUTE c9('SECRET')"),
			fl("EXPLAIN EXECUTE c9('SECRET')"),
		}, echoes: true},
		{name: "prep3/execute_in_pipeline_after_deallocate_all", flights: []flight{
			fl("PREPARE e1 AS SELECT $1::text AS x"),
			fl("DEALLOCATE ALL", "PREPARE e1 AS INSERT INTO legacy_notes (body) VALUES ($1)", "EXECUTE e1('SECRET')"),
		}},
		{name: "prep3/discard_all_multi", flights: []flight{
			fl("PREPARE e2 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("SELECT 1/0; DISCARD ALL"),
			fl("PREPARE e2 AS SELECT $1::text AS x"),
			fl("EXECUTE e2('SECRET')"),
		}},
		// C. ON CONFLICT, MERGE, RETURNING, COPY of a query.
		{name: "write3/on_conflict_infer_where", ddl: "; CREATE UNIQUE INDEX ON clients (email) WHERE email IS NOT NULL", flights: []flight{
			fl("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', 'c' FROM workspaces ON CONFLICT (email) WHERE email <> 'SECRET' DO NOTHING"),
		}},
		{name: "write3/on_conflict_update_where", flights: []flight{
			fl("INSERT INTO clients (id, workspace_id, first_name, last_name) SELECT gen_random_uuid(), id, 'a', 'b' FROM workspaces ON CONFLICT (id) DO UPDATE SET phone = 'SECRET' WHERE clients.email = 'SECRET' AND excluded.email IS DISTINCT FROM 'SECRET'"),
		}},
		{name: "write3/merge_when_conditions", flights: []flight{
			fl("MERGE INTO clients c USING workspaces w ON c.workspace_id = w.id AND c.email = 'SECRET' WHEN MATCHED AND c.email <> 'SECRET' THEN UPDATE SET phone = 'SECRET' WHEN NOT MATCHED THEN INSERT (workspace_id, first_name, last_name, email) VALUES (w.id, 'SECRET', 'SECRET', 'SECRET')"),
		}},
		{name: "write3/merge_source_literal_compared", flights: []flight{
			fl("MERGE INTO clients c USING (SELECT 'SECRET' AS e) s ON c.email = s.e WHEN MATCHED THEN DELETE"),
			fl("MERGE INTO legacy_notes n USING (VALUES ('SECRET')) s(b) ON n.body IS NULL WHEN NOT MATCHED THEN INSERT (body) VALUES (s.b) WHEN MATCHED AND s.b = 'x' THEN DO NOTHING"),
		}},
		{name: "write3/copy_query_out", flights: []flight{
			fl(seedRows),
			fl(q("COPY (SELECT id FROM clients WHERE email = 'SECRET') TO STDOUT")),
			fl(q("COPY (SELECT first_name, email FROM clients) TO STDOUT")),
		}},
		{name: "write3/copy_dml_returning", flights: []flight{
			fl(q("COPY (INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING id, body) TO STDOUT")),
			fl(q("COPY (UPDATE legacy_notes SET body = 'SECRET' RETURNING body) TO STDOUT")),
		}},
		{name: "write3/returning_compare_and_literal", flights: []flight{
			fl("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', 'SECRET' FROM workspaces RETURNING email = 'SECRET', email"),
			fl("UPDATE clients SET email = 'x' WHERE email = 'SECRET' RETURNING (SELECT 'SECRET' = email)"),
		}},
		{name: "write3/returning_cte_value", flights: []flight{
			fl("WITH v(x) AS (VALUES ('SECRET')) INSERT INTO legacy_notes (body) SELECT x FROM v RETURNING (SELECT x FROM v)"),
		}},
		{name: "write3/cte_plain_table_too", flights: []flight{
			fl("WITH v(x) AS (VALUES ('SECRET')), w AS (INSERT INTO legacy_notes (body) SELECT x FROM v RETURNING id) INSERT INTO tenant.clients (first_name) SELECT x FROM v"),
			fl("WITH v(x) AS (VALUES ('SECRET')), w AS (INSERT INTO tenant.clients (first_name) SELECT x FROM v) INSERT INTO legacy_notes (body) SELECT x FROM v"),
		}},
		{name: "write3/values_compared_plain_literal", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT x FROM (VALUES ('SECRET')) v(x) WHERE x = 'SECRET'"),
			fl("INSERT INTO legacy_notes (body) SELECT x FROM (VALUES ('SECRET')) v(x) WHERE x IN (SELECT 'SECRET')"),
			fl("INSERT INTO legacy_notes (body) SELECT x FROM (VALUES ('SECRET')) v(x) WHERE x > 'a'"),
		}},
		{name: "write3/distinct_on_rollup", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT DISTINCT ON (x) x FROM (VALUES ('SECRET'), ('SECRET')) v(x)"),
			fl("INSERT INTO legacy_notes (body) SELECT x FROM (VALUES ('SECRET'), ('SECRET')) v(x) GROUP BY ROLLUP (x)"),
			fl("INSERT INTO legacy_notes (body) SELECT x FROM (VALUES ('SECRET')) v(x) INTERSECT SELECT 'SECRET'"),
		}},
		{name: "write3/window_partition_written", flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) SELECT count(*) OVER (PARTITION BY x), x FROM (VALUES ('SECRET'), ('SECRET')) v(x)"),
			fl("INSERT INTO legacy_notes (id, body) SELECT row_number() OVER w, x FROM (VALUES ('SECRET'), ('b')) v(x) WINDOW w AS (ORDER BY x)"),
		}},
		{name: "write3/aggregate_of_written", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT max(x) FROM (VALUES ('SECRET')) v(x)"),
			fl("INSERT INTO legacy_notes (body) SELECT string_agg(x, ',') FROM (VALUES ('SECRET'), ('b')) v(x)"),
		}},
		{name: "write3/case_coalesce_update", ddl: "; INSERT INTO legacy_notes (id) VALUES (7)", flights: []flight{
			fl("UPDATE legacy_notes SET body = CASE WHEN id = 7 THEN 'SECRET' ELSE body END"),
			fl("UPDATE legacy_notes SET body = COALESCE(NULL, 'SECRET')"),
			fl("UPDATE legacy_notes SET body = CASE 'z' WHEN 'x' THEN 'y' ELSE 'SECRET' END"),
		}},
		{name: "write3/json_record_sources", flights: []flight{
			fl(`INSERT INTO legacy_notes (body) SELECT r.b FROM jsonb_to_record('{"b": "SECRET"}') AS r(b text)`),
			fl(`INSERT INTO legacy_notes (body) SELECT j->>'b' FROM (SELECT '{"b": "SECRET"}'::jsonb AS j) s`),
			fl(`INSERT INTO legacy_notes (body) SELECT (ARRAY['SECRET'])[1]`),
		}},
		{name: "write3/select_into_plain", flights: []flight{
			fl("SELECT 'x'::text AS x INTO copy10 FROM clients WHERE email = 'SECRET'"),
		}},
		// D. Comparisons in odd places.
		{name: "cmp3/literal_left", flights: []flight{
			fl("SELECT 'SECRET' IN (SELECT email FROM clients)"),
			fl("SELECT 'SECRET' = ANY (SELECT email FROM clients)"),
			fl("SELECT EXISTS (SELECT 1 FROM clients WHERE 'SECRET' = email)"),
		}},
		{name: "cmp3/array_of_columns", flights: []flight{
			fl("SELECT count(*) FROM clients WHERE 'SECRET' = ANY (ARRAY[email, email])"),
			fl("SELECT count(*) FROM clients WHERE ARRAY[email] = ARRAY['SECRET']"),
			fl("SELECT count(*) FROM clients WHERE ARRAY[email] @> ARRAY['SECRET']"),
		}},
		{name: "cmp3/subquery_forms", flights: []flight{
			fl("SELECT count(*) FROM clients WHERE email = (VALUES ('SECRET'))"),
			fl("SELECT count(*) FROM clients WHERE email = (WITH x AS (SELECT 'SECRET' AS y) SELECT y FROM x)"),
			fl("SELECT count(*) FROM clients WHERE email IN (SELECT * FROM (VALUES ('SECRET')) v)"),
			fl("SELECT count(*) FROM clients WHERE email = ANY (VALUES ('SECRET'))"),
			fl("SELECT count(*) FROM clients WHERE email <> ALL (SELECT 'SECRET' UNION ALL SELECT 'y')"),
		}},
		{name: "cmp3/row_forms", flights: []flight{
			fl("SELECT count(*) FROM clients WHERE (email, notes) = (SELECT 'SECRET', 'y')"),
			fl("SELECT count(*) FROM clients WHERE (notes, email) IN (SELECT 'y', 'SECRET')"),
			fl("SELECT count(*) FROM clients WHERE ROW(email, id) IS DISTINCT FROM ROW('SECRET', id)"),
			fl("SELECT count(*) FROM clients WHERE (email, 1) = ANY (SELECT 'SECRET', 1)"),
			fl("SELECT count(*) FROM clients WHERE (email, notes) = ('SECRET', 'x')"),
		}},
		{name: "cmp3/nullif_case", flights: []flight{
			fl("SELECT count(*) FROM clients WHERE NULLIF(email, 'SECRET') IS NULL"),
			fl("SELECT count(*) FROM clients WHERE CASE email WHEN 'SECRET' THEN true END"),
			fl("SELECT count(*) FROM clients WHERE email = CASE WHEN true THEN 'SECRET' END"),
			fl("SELECT count(*) FROM clients WHERE COALESCE(email, 'SECRET') = 'SECRET'"),
		}},
		{name: "cmp3/filter_window_grouping", flights: []flight{
			fl("SELECT count(*) FILTER (WHERE email = 'SECRET') FROM clients"),
			fl("SELECT count(*) OVER (PARTITION BY email = 'SECRET') FROM clients"),
			fl("SELECT count(*) OVER w FROM clients WINDOW w AS (PARTITION BY email IN ('SECRET'))"),
			fl("SELECT email, count(*) FROM clients GROUP BY ROLLUP (email) HAVING email = 'SECRET'"),
			fl("SELECT count(*) FROM clients GROUP BY CUBE (email = 'SECRET')"),
		}},
		{name: "cmp3/json_path", flights: []flight{
			fl(`SELECT count(*) FROM clients c WHERE jsonb_path_exists(to_jsonb(c), '$.email ? (@ == "SECRET")')`),
			fl(`SELECT count(*) FROM clients WHERE jsonb_path_exists(jsonb_build_object('e', email), '$.e ? (@ == $x)', jsonb_build_object('x', 'SECRET'))`),
			fl(`SELECT count(*) FROM clients WHERE to_jsonb(email) = '"SECRET"'`),
			fl(`SELECT count(*) FROM clients WHERE email = ANY (SELECT jsonb_array_elements_text('["SECRET"]'))`),
		}},
		{name: "cmp3/json_table_pg17", flights: []flight{
			fl(`SELECT count(*) FROM clients c, JSON_TABLE(jsonb_build_object('e', c.email), '$' COLUMNS (e text PATH '$.e')) jt WHERE jt.e = 'SECRET'`),
			fl(`SELECT count(*) FROM clients c WHERE JSON_VALUE(jsonb_build_object('e', c.email), '$.e') = 'SECRET'`),
			fl(`SELECT count(*) FROM clients c WHERE JSON_EXISTS(jsonb_build_object('e', c.email), '$.e ? (@ == $v)' PASSING 'SECRET' AS v)`),
		}},
		{name: "cmp3/lateral_and_functions_in_from", flights: []flight{
			fl("SELECT count(*) FROM clients c, LATERAL unnest(ARRAY[c.email]) u(e) WHERE u.e = 'SECRET'"),
			fl("SELECT count(*) FROM clients c CROSS JOIN LATERAL (SELECT c.email UNION ALL SELECT c.phone) l(e) WHERE l.e = 'SECRET'"),
			fl("SELECT count(*) FROM clients c, ROWS FROM (generate_series(1,1)) g, LATERAL (SELECT c.email AS e OFFSET 0) l WHERE l.e = 'SECRET'"),
		}},
		{name: "cmp3/join_forms", flights: []flight{
			fl("SELECT count(*) FROM clients c JOIN tenant.clients t ON t.email = c.email WHERE t.email = 'SECRET'"),
			fl("SELECT count(*) FROM clients c JOIN (VALUES ('SECRET')) v(email) USING (email)"),
			fl("SELECT count(*) FROM clients c FULL JOIN (SELECT 'SECRET'::text AS email) v USING (email) WHERE email IS NOT NULL"),
			fl("SELECT count(*) FROM clients c LEFT JOIN tenant.clients t ON c.email = 'SECRET' AND t.email = 'x'"),
		}},
		{name: "cmp3/param_two_roles", flights: []flight{
			fl(ext("SELECT set_config('app.x', $1, false) FROM clients WHERE email = $1", "SECRET"), syncMsg()),
			fl(ext("SELECT id FROM clients c JOIN tenant.clients t ON t.email = $1 WHERE c.email = $1", "SECRET"), syncMsg()),
			fl(ext("SELECT id FROM clients WHERE email = $1 LIMIT length($1)", "SECRET"), syncMsg()),
			fl(ext("INSERT INTO legacy_notes (body) SELECT $1 WHERE $1 <> ''", "SECRET"), syncMsg()),
			fl(ext("SELECT id FROM clients WHERE email = $1 ORDER BY $1", "SECRET"), syncMsg()),
		}},
		{name: "cmp3/recursive_cte_compare", flights: []flight{
			fl("WITH RECURSIVE r(e, n) AS (SELECT email, 1 FROM clients UNION ALL SELECT 'SECRET', n + 1 FROM r WHERE n < 2) SELECT count(*) FROM r WHERE e = 'SECRET'"),
			fl("WITH RECURSIVE r(e) AS (SELECT 'SECRET'::text UNION SELECT email FROM clients) SELECT count(*) FROM r"),
		}},
		{name: "cmp3/recursive_counter_ordinary", flights: []flight{
			fl("WITH RECURSIVE r(e, n) AS (SELECT email, 1 FROM clients UNION ALL SELECT e, n + 1 FROM r WHERE n < 3) SELECT e FROM r WHERE e = 'SECRET'"),
		}},
		{name: "cmp3/nested_cte_shadowing", flights: []flight{
			fl("WITH x AS (SELECT email FROM clients) SELECT (WITH x AS (SELECT 'y'::text AS email) SELECT count(*) FROM x WHERE email = 'y') FROM x WHERE email = 'SECRET'"),
			fl("WITH x AS (SELECT 'SECRET'::text AS email) SELECT (WITH y AS (SELECT email FROM clients) SELECT count(*) FROM y, x WHERE y.email = x.email)"),
		}},
		{name: "cmp3/cte_name_policy_write", flights: []flight{
			fl("WITH legacy_notes AS (SELECT 1 AS id) INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("WITH legacy_notes AS (SELECT 'SECRET'::text AS body) INSERT INTO public.legacy_notes (body) SELECT body FROM legacy_notes"),
		}},
		// E. Output naming (FigureColname) and unknown names.
		{name: "names3/figure_forms", flights: []flight{
			fl("SELECT 1 FROM (SELECT COALESCE(email) FROM clients) s WHERE s.coalesce = 'SECRET'"),
			fl("SELECT 1 FROM (SELECT NULLIF(email, NULL) FROM clients) s WHERE s.nullif = 'SECRET'"),
			fl("SELECT 1 FROM (SELECT (email) FROM clients) s WHERE s.email = 'SECRET'"),
			fl("SELECT 1 FROM (SELECT email COLLATE \"C\" FROM clients) s WHERE s.email = 'SECRET'"),
			fl("SELECT 1 FROM (SELECT (SELECT c2.email FROM clients c2 LIMIT 1) FROM clients) s WHERE s.email = 'SECRET'"),
			fl("SELECT 1 FROM (SELECT ARRAY(SELECT email FROM clients)) s WHERE s.array = ARRAY['SECRET']"),
			fl("SELECT 1 FROM (SELECT GREATEST(email) FROM clients) s WHERE s.greatest = 'SECRET'"),
		}},
		{name: "names3/subquery_column_aliases", flights: []flight{
			fl("SELECT 1 FROM (SELECT notes, email FROM clients) s(a) WHERE s.email = 'SECRET'"),
			fl("SELECT 1 FROM clients AS c(a, b, c, d, e) WHERE c.e = 'SECRET'"),
			fl("SELECT 1 FROM clients AS c(a, b, c, d, e) WHERE c.email = 'SECRET'"),
		}},
		{name: "names3/table_column_aliases", flights: []flight{
			fl("SELECT 1 FROM clients AS x(a, b, c, d, e) WHERE x.e = 'SECRET'"),
			fl("SELECT 1 FROM clients AS x(a, b, c, d, e) WHERE e = 'SECRET'"),
			fl("SELECT 1 FROM clients x(i, w, f, l, e) WHERE e IN ('SECRET')"),
			fl("SELECT 1 FROM legacy_notes n(i, b) WHERE n.b = 'SECRET'"),
			fl("SELECT count(*) FROM clients c(a, b, f, l, x) NATURAL JOIN (SELECT 'SECRET'::text AS x) s"),
			fl("SELECT count(*) FROM clients c(a, b, f, l, x) JOIN (SELECT 'SECRET'::text AS x) s USING (x)"),
			fl("SELECT count(*) FROM (clients c JOIN workspaces w ON w.id = c.workspace_id) AS j(a, b, f, l, e) WHERE j.e = 'SECRET'"),
			fl("SELECT count(*) FROM ROWS FROM (generate_series(1, 1)) g, clients AS c(a, b, f, l, e) WHERE c.e = 'SECRET'"),
		}},
		{name: "names3/cte_column_aliases", flights: []flight{
			fl("WITH s(notes, email) AS (SELECT email, notes FROM clients) SELECT count(*) FROM s WHERE notes = 'SECRET'"),
			fl("WITH s(x) AS (SELECT notes, email FROM clients) SELECT count(*) FROM s WHERE email = 'SECRET'"),
		}},
		{name: "names3/whole_row_and_composite", flights: []flight{
			fl("SELECT count(*) FROM clients c WHERE c = c AND c.email = 'SECRET'"),
			fl("SELECT count(*) FROM clients c WHERE (c.*).email = 'SECRET'"),
			fl("SELECT count(*) FROM (SELECT c FROM clients c) s WHERE (s.c).email = 'SECRET'"),
			fl("SELECT count(*) FROM clients c WHERE c::text LIKE '%SECRET%'"),
		}},
		{name: "names3/returned_via_alias_of_case", flights: []flight{
			fl(seedRows),
			fl("SELECT x FROM (SELECT CASE WHEN true THEN email END AS x FROM clients) s"),
			fl("SELECT s.* FROM (SELECT COALESCE(phone, email) FROM clients) s"),
			fl("SELECT (SELECT email) FROM clients"),
			fl("SELECT email FROM clients UNION ALL SELECT 'SECRET'"),
		}},
		// F. Lexing.
		{name: "lex3/national_and_bit_forms", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES (N'SECRET')"),
			fl("SELECT count(*) FROM clients WHERE email = N'SECRET'"),
			fl("INSERT INTO legacy_notes (body) VALUES (X'5345435245')"),
		}},
		{name: "lex3/uescape_dollar_comment", flights: []flight{
			fl(`INSERT INTO legacy_notes (body) VALUES (U&'SECRET' UESCAPE '$')`),
			fl(`INSERT INTO legacy_notes (body) VALUES (U&'SEC!+000052ET' UESCAPE '!') /* $$ ' */`),
			fl(`INSERT INTO legacy_notes (body) VALUES ($a$SECRET$a$ /* $a$ */)`),
			fl("INSERT INTO legacy_notes (body) VALUES ($_$SECRET$_$), ($ä$SECRET$ä$)"),
		}},
		{name: "lex3/backslash_in_comment_pipeline", ddl: sneakyPublic, flights: []flight{
			fl("SELECT public.sneaky2('standard_conforming_strings', 'off')",
				`INSERT INTO legacy_notes (id, body) SELECT 1, 'x' /* \ */ WHERE 'a\' <> 'b' -- ' <> 'c' UNION ALL SELECT 2, 'SECRET' --`),
		}},
		{name: "lex3/scs_off_reported_no_backslash", flights: []flight{
			fl("SET standard_conforming_strings = off"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET'), (E'SECRET')"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", `SECRET\'`), syncMsg()),
			fl("SET standard_conforming_strings = on"),
		}},
		{name: "lex3/client_encoding_pipeline", flights: []flight{
			fl("SELECT set_config('client_encoding', 'SJIS', false)", "INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("SET client_encoding = 'UTF8'"),
		}},
		{name: "lex3/client_encoding_function_call", flights: []flight{
			fl(callSetConfig("client_encoding", "LATIN1"), q("INSERT INTO legacy_notes (body) VALUES ('SECRET')")),
			fl("SET client_encoding = 'UTF8'"),
		}},
		// G. DDL.
		{name: "ddl3/alter_column_type_using_param_like", ddl: "; INSERT INTO legacy_notes (id) VALUES (1)", flights: []flight{
			fl("ALTER TABLE legacy_notes ALTER COLUMN body SET DATA TYPE text USING CASE WHEN id = 1 THEN 'SECRET' ELSE body END"),
		}},
		{name: "ddl3/like_including_defaults", flights: []flight{
			fl("ALTER TABLE legacy_notes ALTER body SET DEFAULT 'SECRET'"),
			fl("CREATE TABLE copy11 (LIKE legacy_notes INCLUDING DEFAULTS)"),
			fl("INSERT INTO copy11 (id) VALUES (1)"),
			fl("SELECT body FROM copy11"),
		}},
		{name: "ddl3/add_column_with_check_and_default_other", flights: []flight{
			fl("ALTER TABLE clients ADD COLUMN extra text DEFAULT 'x' CHECK (email <> 'SECRET')"),
			fl("ALTER TABLE clients ADD COLUMN extra2 text, ADD CONSTRAINT ck CHECK (first_name IS DISTINCT FROM 'SECRET')"),
		}},
		{name: "ddl3/create_table_inherits_like", flights: []flight{
			fl("CREATE TABLE n3 () INHERITS (legacy_notes); ALTER TABLE n3 ALTER body SET DEFAULT 'SECRET'"),
		}},
		{name: "ddl3/comment_on", flights: []flight{
			fl("COMMENT ON COLUMN clients.email IS 'SECRET'"),
		}, plainOK: true},
		{name: "ddl3/partition_attach_default", maxAge: time.Millisecond, ddl: "; CREATE TABLE pnotes (id int, body text) PARTITION BY LIST (id); CREATE TABLE pnotes1 PARTITION OF pnotes FOR VALUES IN (1)", flights: []flight{
			fl(direct("ALTER TABLE pnotes ATTACH PARTITION legacy_notes FOR VALUES IN (2)")),
			fl("INSERT INTO pnotes (id, body) VALUES (2, 'SECRET')"),
		}, check: func(t *testing.T, f *encFixture) {}},
		{name: "ddl3/inherit_after", maxAge: time.Millisecond, ddl: "; CREATE TABLE base (id int, body text)", flights: []flight{
			fl(direct("ALTER TABLE legacy_notes INHERIT base")),
			fl("UPDATE base SET body = 'SECRET'"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (1, 'a')"),
			fl("UPDATE base SET body = 'SECRET'"),
		}},
		{name: "ddl3/create_rule_other_table", plainOK: true, ddl: "; CREATE TABLE t9 (x text)", flights: []flight{
			fl("CREATE RULE r9 AS ON INSERT TO t9 DO INSTEAD INSERT INTO legacy_notes (body) VALUES (NEW.x)"),
			fl("INSERT INTO t9 VALUES ('SECRET')"),
		}},
		// H. Functions that run SQL text.
		{name: "fn3/ts_stat_query", ddl: "; INSERT INTO legacy_notes (body) VALUES ('v1:AAAAAAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==')", flights: []flight{
			fl("SELECT word FROM ts_stat('SELECT to_tsvector(''simple'', body) FROM legacy_notes')"),
			fl("SELECT query_to_xml('SELECT body FROM U&\"legacy\\005fnotes\"', true, false, '')"),
			fl("SELECT query_to_xml('SELECT body FROM \"LEGACY_NOTES\"', true, false, '')"),
			fl("SELECT xpath('/row/body/text()', query_to_xml('SELECT * FROM legacy_notes', false, false, ''))"),
		}},
		{name: "fn3/query_to_xml_concat", ddl: "; INSERT INTO legacy_notes (body) VALUES ('v1:AAAAAAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==')", flights: []flight{
			fl("SELECT query_to_xml('SELECT body FROM legacy' || '_notes', true, false, '')"),
			fl("SELECT query_to_xml(format('SELECT body FROM %I', 'legacy_notes'), true, false, '')"),
			fl("SELECT table_to_xml(to_regclass('public.legacy_notes'), true, false, '')"),
		}},
		// J. Relations that reach a policy table, made in this session or
		// by another connection: statements on them name no policy table.
		{name: "rel3/child_created_then_written", maxAge: time.Millisecond, flights: []flight{
			fl(direct("CREATE TABLE nchild () INHERITS (legacy_notes)")),
			fl("INSERT INTO nchild (body) VALUES ('SECRET')"),
		}},
		{name: "rel3/child_created_same_query", flights: []flight{
			fl("CREATE TABLE nchild3 () INHERITS (legacy_notes); INSERT INTO nchild3 (body) VALUES ('SECRET')"),
		}},
		{name: "rel3/child_by_alter_inherit_then_written", maxAge: time.Millisecond, ddl: "; CREATE TABLE nchild2 (id int NOT NULL, body text)", flights: []flight{
			fl(direct("ALTER TABLE nchild2 INHERIT legacy_notes")),
			fl("INSERT INTO nchild2 (id, body) VALUES (1, 'SECRET')"),
		}},
		{name: "rel3/attach_then_copy_into_parent", maxAge: time.Millisecond, ddl: "; CREATE TABLE pn2 (id int, body text) PARTITION BY LIST (id)", flights: []flight{
			fl(direct("ALTER TABLE pn2 ATTACH PARTITION legacy_notes FOR VALUES IN (2)")),
			fl(q("COPY pn2 (id, body) FROM STDIN"), copyData("2\tSECRET\n"), copyDone()),
		}},
		{name: "rel3/attach_then_parse_parent", maxAge: time.Millisecond, ddl: "; CREATE TABLE pn3 (id int, body text) PARTITION BY LIST (id)", flights: []flight{
			fl(direct("ALTER TABLE pn3 ATTACH PARTITION legacy_notes FOR VALUES IN (2)")),
			fl(ext("INSERT INTO pn3 (id, body) VALUES (2, $1)", "SECRET"), syncMsg()),
		}},
		{name: "rel3/attach_then_read_parent", ddl: "; CREATE TABLE pn4 (id int, body text) PARTITION BY LIST (id)", flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES (2, 'SECRET')"),
			fl("ALTER TABLE pn4 ATTACH PARTITION legacy_notes FOR VALUES IN (2)"),
			fl("SELECT body FROM pn4"),
		}},
		{name: "rel3/view_on_parent_after_attach", maxAge: time.Millisecond, ddl: "; CREATE TABLE pn5 (id int, body text) PARTITION BY LIST (id); CREATE VIEW pv5 AS SELECT * FROM pn5", flights: []flight{
			fl(direct("ALTER TABLE pn5 ATTACH PARTITION legacy_notes FOR VALUES IN (2)")),
			fl("INSERT INTO pv5 (id, body) VALUES (2, 'SECRET')"),
		}},
		{name: "rel3/view_elsewhere", maxAge: time.Millisecond, flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl(direct("CREATE VIEW vv AS SELECT id, body FROM legacy_notes")),
			fl("INSERT INTO vv (body) VALUES ('SECRET')"),
		}},
		{name: "rel3/attach_elsewhere", maxAge: time.Millisecond, flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl(direct("CREATE TABLE pn6 (id int, body text) PARTITION BY LIST (id); ALTER TABLE pn6 ATTACH PARTITION legacy_notes FOR VALUES IN (2)")),
			fl("INSERT INTO pn6 (id, body) VALUES (2, 'SECRET')"),
		}},
		// K. The statement cache and pinned statements after search_path
		// changes.
		{name: "cache3/same_text_after_path_change", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl(ext("INSERT INTO clients (workspace_id, first_name, last_name) SELECT id, $1, 'x' FROM public.workspaces", "y"), syncMsg()),
			fl("SET search_path = public, tenant"),
			fl(ext("INSERT INTO clients (workspace_id, first_name, last_name) SELECT id, $1, 'x' FROM public.workspaces", "SECRET"), syncMsg()),
		}},
		{name: "cache3/named_pinned_after_path_change", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl(parseNamed("pin", "INSERT INTO clients (workspace_id, first_name, last_name) SELECT id, $1, 'x' FROM public.workspaces"), syncMsg()),
			fl("SET search_path = public, tenant"),
			fl(bindNamed("pin", "SECRET"), syncMsg()),
		}},
		{name: "cache3/sql_prepared_pinned_after_path_change", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl("PREPARE pin2 AS INSERT INTO clients (workspace_id, first_name, last_name) SELECT id, $1, 'x' FROM public.workspaces"),
			fl("SET search_path = public, tenant"),
			fl("EXECUTE pin2('SECRET')"),
		}},
		// L. COPY data at its edges.
		{name: "copy3/last_record_without_newline", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN"), copyData("1\tSECRET"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv)"), copyData("1,\"SECRET"), copyData("\""), copyDone()),
		}},
		{name: "copy3/mixed_line_endings", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN"), copyData("1\tx\r\n2\tSECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN"), copyData("1\tx\n2\tSECRET\r\n"), copyDone()),
		}},
		{name: "copy3/query_during_copy", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN"), copyData("1\tSEC"), q("SELECT 1"), copyData("RET\n"), copyDone(), syncMsg()),
		}},
		{name: "copy3/end_marker_variants", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN"), copyData("1\tx\n\\.\n2\tSECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv)"), copyData("1,x\n\\.\n2,SECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv)"), copyData("1,\"x\n\\.\n\"\n2,SECRET\n"), copyDone()),
		}},
		{name: "copy3/csv_quote_letter", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv, QUOTE 'S', ESCAPE 'E')"), copyData("1,SSECRETS\n2,xSECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (body, id) FROM STDIN (FORMAT csv, DELIMITER 'R')"), copyData("SECRETR3\n"), copyDone()),
		}},
		{name: "copy3/text_delimiter_escape_letters", flights: []flight{
			fl(q("COPY legacy_notes (id, body) FROM STDIN (DELIMITER '|', NULL 'N')"), copyData("1|SEC\\RET\n2|S\\x45CRET\n3|SECRET\n"), copyDone()),
		}},
		{name: "copy3/where_and_columns", flights: []flight{
			fl(q("COPY legacy_notes (body, id) FROM STDIN WHERE id > 1"), copyData("SECRET\t2\n"), copyDone()),
			fl(q("COPY public.legacy_notes FROM STDIN (FORMAT text, FREEZE false)"), copyData("5\tSECRET\n"), copyDone()),
		}},
		// I. Extended protocol details.
		{name: "ext3/param_types_declared", flights: []flight{
			fl(&pgproto3.Parse{Query: "SELECT count(*) FROM clients WHERE email = $1", ParameterOIDs: []uint32{19}}, // name
				&pgproto3.Bind{Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "SELECT count(*) FROM clients WHERE email = $1", ParameterOIDs: []uint32{18}}, // "char"
				&pgproto3.Bind{Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1)", ParameterOIDs: []uint32{3802}}, // jsonb
				&pgproto3.Bind{Parameters: [][]byte{[]byte(`"SECRET"`)}}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "ext3/portal_reuse_after_set_path", ddl: tenantLikePublic, flights: []flight{
			fl("BEGIN"),
			fl(&pgproto3.Parse{Name: "pp", Query: "SELECT first_name FROM clients WHERE email = $1"}, &pgproto3.Bind{DestinationPortal: "po", PreparedStatement: "pp", Parameters: [][]byte{[]byte("SECRET")}}, syncMsg()),
			fl("SET search_path = tenant, public"),
			fl(&pgproto3.Execute{Portal: "po"}, syncMsg()),
			fl(bindNamed("pp", "SECRET"), syncMsg()),
			fl("COMMIT"),
		}, plainOK: true},
		{name: "ext3/describe_statement_then_bind", flights: []flight{
			fl(parseNamed("ds", "INSERT INTO legacy_notes (body) VALUES ($1) RETURNING body"), &pgproto3.Describe{ObjectType: 'S', Name: "ds"}, syncMsg()),
			fl(bindNamed("ds", "SECRET"), syncMsg()),
		}},
		{name: "ext3/fetch_prepared", flights: []flight{
			fl(seedRows),
			fl("BEGIN", "DECLARE cf CURSOR FOR SELECT email, first_name FROM clients WHERE email = 'SECRET' OR true"),
			fl(ext("FETCH 1 FROM cf"), ext("MOVE BACKWARD 1 IN cf"), ext("FETCH ALL IN cf"), syncMsg()),
			fl("CLOSE cf", "DECLARE cf SCROLL CURSOR FOR SELECT notes, email FROM clients", "FETCH ALL FROM cf", "COMMIT"),
		}},
	}
}
