package migrate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// Finding is one thing Check reports about a column or its table.
type Finding struct {
	// Blocking: the proxy would refuse writes to the column, or values
	// could not be decrypted, until it is fixed.
	Blocking bool   `json:"blocking"`
	What     string `json:"what"`
}

// ColumnReport is what Check found for one policy column.
type ColumnReport struct {
	Column   string `json:"column"`
	Mode     string `json:"mode"`
	Exists   bool   `json:"exists"`
	Type     string `json:"type,omitempty"`
	MaxChars int    `json:"max_chars,omitempty"` // varchar(n)/char(n): n
	// MaxPlaintextBytes is the longest plaintext (in UTF-8 bytes) whose
	// envelope under the longest key id fits MaxChars.
	MaxPlaintextBytes int            `json:"max_plaintext_bytes,omitempty"`
	Guard             string         `json:"guard"` // absent, not valid, validated
	Rows              int64          `json:"rows"`
	Nulls             int64          `json:"nulls"`
	Envelopes         map[string]int `json:"envelopes"`   // by key version
	OtherKey          int64          `json:"unknown_key"` // envelopes of a key version not configured
	Plaintext         int64          `json:"plaintext"`
	Findings          []Finding      `json:"findings"`
}

// Blocking reports whether any finding blocks.
func (r *ColumnReport) Blocking() bool {
	return slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.Blocking })
}

// genericEnvelope matches an envelope of any key id and mode.
const genericEnvelope = `^[A-Za-z0-9_.-]{1,32}:(siv:|[A-Za-z0-9+/]{16}:)[A-Za-z0-9+/]+={0,2}$`

// Check reports, read-only, on each policy column of the live database:
// its type and whether envelopes fit, the schema facts that would make
// writes wrong (the proxy refuses writes to such columns) or that run
// server-side code over it, the guard's state, and its rows by key
// version, plaintext and envelopes of unknown keys. It scans every policy
// table once per column.
func Check(ctx context.Context, conn *pgx.Conn, cols []Column, keyIDs []string) ([]ColumnReport, error) {
	var out []ColumnReport
	for _, c := range cols {
		r, err := checkColumn(ctx, conn, c, keyIDs)
		if err != nil {
			return out, fmt.Errorf("column %s: %w", c, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func checkColumn(ctx context.Context, conn *pgx.Conn, c Column, keyIDs []string) (ColumnReport, error) {
	r := ColumnReport{Column: c.String(), Mode: "randomized", Envelopes: map[string]int{}, Guard: "absent"}
	if c.Deterministic {
		r.Mode = "deterministic"
	}
	add := func(blocking bool, format string, args ...any) {
		r.Findings = append(r.Findings, Finding{Blocking: blocking, What: fmt.Sprintf(format, args...)})
	}
	var (
		typ, baseType                     string
		typmod                            int
		domainCheck, domainDefault        bool
		unique, exprIndex, genFrom, hasPK bool
		generated                         bool
		def                               *string
		views, rules, triggers, functions []string
		checks, policies, fks             []string
		relkind                           string
	)
	err := conn.QueryRow(ctx, `
		SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), bt.typname,
		  CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
		  EXISTS (WITH RECURSIVE d(oid) AS (SELECT a.atttypid UNION SELECT dt.typbasetype FROM pg_catalog.pg_type dt JOIN d ON dt.oid = d.oid WHERE dt.typtype = 'd')
		    SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.contypid IN (SELECT oid FROM d) AND k.contype = 'c'),
		  t.typtype = 'd' AND t.typdefaultbin IS NOT NULL,
		  EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND (i.indisunique OR i.indisexclusion) AND a.attnum = ANY (i.indkey::pg_catalog.int2[])),
		  EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
		    AND d.objid = i.indexrelid AND d.refobjid = c.oid AND d.refobjsubid = a.attnum
		    WHERE i.indrelid = c.oid AND NOT (a.attnum = ANY (i.indkey::pg_catalog.int2[])) AND (i.indexprs IS NOT NULL OR (i.indpred IS NOT NULL
		      AND pg_catalog.pg_get_expr(i.indpred, i.indrelid) NOT IN ('(' || pg_catalog.quote_ident(a.attname) || ' IS NOT NULL)', '(' || pg_catalog.quote_ident(a.attname) || ' IS NULL)')))),
		  EXISTS (SELECT 1 FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
		    AND d.objid = ad.oid AND d.refobjid = c.oid AND d.refobjsubid = a.attnum
		    JOIN pg_catalog.pg_attribute g ON g.attrelid = c.oid AND g.attnum = ad.adnum
		    WHERE ad.adrelid = c.oid AND g.attgenerated <> '' AND g.attnum <> a.attnum),
		  a.attgenerated <> '',
		  (SELECT pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) FROM pg_catalog.pg_attrdef ad WHERE ad.adrelid = c.oid AND ad.adnum = a.attnum),
		  EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'),
		  ARRAY(SELECT DISTINCT v.oid::pg_catalog.regclass::text FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid
		    JOIN pg_catalog.pg_class v ON v.oid = w.ev_class WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
		    AND d.refobjid = c.oid AND v.oid <> c.oid ORDER BY 1),
		  ARRAY(SELECT w.rulename::text FROM pg_catalog.pg_rewrite w WHERE w.ev_class = c.oid AND w.rulename <> '_RETURN' ORDER BY 1),
		  ARRAY(SELECT g.tgname::text FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal ORDER BY 1),
		  ARRAY(SELECT p.oid::pg_catalog.regprocedure::text FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
		    WHERE pn.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prosrc ILIKE '%' || c.relname || '%' ORDER BY 1),
		  ARRAY(SELECT k.conname::text FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c'
		    AND a.attnum = ANY (k.conkey) AND k.conname NOT LIKE 'pgcrypt\_guard\_%' ORDER BY 1),
		  ARRAY(SELECT y.polname::text FROM pg_catalog.pg_policy y WHERE y.polrelid = c.oid ORDER BY 1),
		  ARRAY(SELECT k.conname::text FROM pg_catalog.pg_constraint k WHERE k.contype = 'f'
		    AND ((k.conrelid = c.oid AND a.attnum = ANY (k.conkey)) OR (k.confrelid = c.oid AND a.attnum = ANY (k.confkey))) ORDER BY 1),
		  c.relkind::text
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = $3 AND NOT a.attisdropped
		JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
		JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
		WHERE n.nspname = $1 AND c.relname = $2`, c.Schema, c.Table, c.Name).Scan(
		&typ, &baseType, &typmod, &domainCheck, &domainDefault, &unique, &exprIndex, &genFrom, &generated, &def, &hasPK,
		&views, &rules, &triggers, &functions, &checks, &policies, &fks, &relkind)
	if errors.Is(err, pgx.ErrNoRows) {
		add(false, "the table or column does not exist (yet): nothing to check")
		return r, nil
	}
	if err != nil {
		return r, err
	}
	r.Exists, r.Type = true, typ
	longestID := 0
	for _, id := range keyIDs {
		longestID = max(longestID, len(id))
	}
	mode := cipher.Randomized
	if c.Deterministic {
		mode = cipher.Deterministic
	}
	switch baseType {
	case "text":
	case "varchar", "bpchar":
		if typmod > 4 {
			r.MaxChars = typmod - 4
			r.MaxPlaintextBytes = -1
			for n := 0; cipher.EnvelopeLenBytes(n, mode, strings.Repeat("k", longestID)) <= r.MaxChars; n++ {
				r.MaxPlaintextBytes = n
			}
			if r.MaxPlaintextBytes < 0 {
				add(true, "type %s cannot hold even the envelope of an empty value; use text", typ)
			} else {
				add(false, "type %s holds envelopes of plaintexts up to %d bytes; longer writes are refused (use text for no limit)", typ, r.MaxPlaintextBytes)
			}
		}
	default:
		add(true, "type %s cannot hold an envelope (text); change it to text", typ)
	}
	if domainCheck {
		add(true, "its domain type (or a domain under it) has a CHECK constraint, which PostgreSQL would evaluate on the envelope")
	}
	if domainDefault {
		add(true, "its domain type has a default, stored unencrypted in rows that omit the column")
	}
	if unique && !c.Deterministic {
		add(true, "a unique index, unique or exclusion constraint covers it, which randomized envelopes make enforce nothing")
	}
	if exprIndex {
		add(true, "an expression index or a partial index's predicate is computed from it, on ciphertext")
	}
	if genFrom {
		add(true, "a generated column is computed from it, on ciphertext")
	}
	if generated {
		add(true, "it is a generated column, computed inside PostgreSQL unencrypted")
	}
	if def != nil && !strings.HasPrefix(*def, "NULL") && !isEnvelopeDefault(*def) {
		add(true, "its default (%d characters, set directly on the server) is stored unencrypted; set it through the proxy, which encrypts it, or drop it", len(*def))
	}
	if !hasPK && relkind == "r" {
		add(false, "the table has no primary key, which backfill and rotate need")
	}
	list := func(what string, names []string) {
		if len(names) > 0 {
			add(false, "%s: %s", what, strings.Join(names, ", "))
		}
	}
	list("views or materialized views read the table (the proxy refuses them)", views)
	list("rules on the table run server-side", rules)
	list("triggers on the table see only ciphertext and may write plaintext", triggers)
	list("functions whose body names the table run server-side, unseen by the proxy", functions)
	list("CHECK constraints over the column are evaluated on ciphertext", checks)
	list("row-security policies on the table are evaluated on ciphertext", policies)
	list("foreign keys over the column compare ciphertext", fks)

	var guardValid *bool
	if err := conn.QueryRow(ctx, `SELECT k.convalidated FROM pg_catalog.pg_constraint k
		JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND k.conname = $3`, c.Schema, c.Table, GuardName(c)).Scan(&guardValid); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return r, err
	}
	switch {
	case guardValid == nil:
		add(false, "no guard constraint: plaintext written around the proxy is accepted (run pgcrypt-proxy guard)")
	case *guardValid:
		r.Guard = "validated"
	default:
		r.Guard = "not valid"
	}

	expr, err := GuardExpr(c, keyIDs)
	if err != nil {
		return r, err
	}
	col := quoteIdent(c.Name)
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT CASE WHEN %[1]s IS NULL THEN 'null' WHEN %[2]s THEN 'key:' || pg_catalog.split_part(%[1]s::text, ':', 1)
		WHEN %[1]s::text ~ %[3]s THEN 'other' ELSE 'plain' END, count(*) FROM %[4]s GROUP BY 1`,
		col, "("+expr+")", quoteLiteral(genericEnvelope), c.table()))
	if err != nil {
		return r, err
	}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return r, err
		}
		r.Rows += n
		switch {
		case k == "null":
			r.Nulls = n
		case k == "other":
			r.OtherKey = n
		case k == "plain":
			r.Plaintext = n
		default:
			r.Envelopes[strings.TrimPrefix(k, "key:")] = int(n)
		}
	}
	if err := rows.Err(); err != nil {
		return r, err
	}
	if r.OtherKey > 0 {
		add(true, "%d rows hold envelopes of a key version not configured (or of the other search mode), which cannot be decrypted", r.OtherKey)
	}
	if r.Plaintext > 0 {
		add(false, "%d rows hold plaintext (returned as is and counted; run backfill)", r.Plaintext)
	}
	return r, nil
}

// isEnvelopeDefault reports whether a default expression, as
// pg_get_expr prints it, is a constant envelope ('v1:…'::text).
func isEnvelopeDefault(def string) bool {
	s, _, _ := strings.Cut(def, "::")
	s = strings.Trim(s, "'")
	return cipher.LooksLikeEnvelope([]byte(s))
}
