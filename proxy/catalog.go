package proxy

import (
	"errors"
	"fmt"
	"regexp"

	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgarray"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// catalog is what a session knows of its database: the relations whose
// names are those of policy tables (in any schema), their columns, and the
// session's search_path. It is built from the proxy's own query on the
// client's session, so it sees what the client's role and search_path see,
// and is replaced whole (never changed) when refreshed.
type catalog struct {
	byName     map[string][]*relation // bare name -> relations in any schema
	byOID      map[uint32]*relation
	searchPath []string                 // current_schemas(true): pg_temp and pg_catalog included
	cols       map[colKey]*policyColumn // table OID and attnum of policy columns
	// oldCols are the places policy columns had before another
	// connection renamed, moved or dropped them (knownTables): rows read
	// from them (a cursor opened before) hold envelopes of those columns.
	oldCols map[colKey]*policyColumn
	// views are the relations that reach a policy table's columns under
	// another name: views and materialized views that read it (directly or
	// through other views), its partitions and inheritance children, and
	// the tables it is a partition or child of (their rows include its
	// rows). The proxy cannot see through them, so statements that name
	// them are refused.
	views     map[string][]*relation
	viewNames []string // their names as statement text spells them (rewrite.TextSpellings)
	// viewSchemas are the schemas of views, and of the tables in
	// views, as statement text spells them.
	viewSchemas []string
	// maxLen is the length limit of policy columns of type varchar(n) or
	// char(n); hazards says why writes to a policy column would be wrong
	// (see readHazards).
	maxLen  map[*rewrite.Column]int
	hazards map[*rewrite.Column]string
	anyUse  map[*rewrite.Column]bool // hazards that refuse comparisons too
	// derived are the generated columns computed from a policy column
	// (named): they hold what it computes on ciphertext, so rows that
	// include them are refused.
	derived      map[colKey]string
	derivedNames []string // their names as statement text spells them
	// notText holds the policy columns whose type is not a string type
	// (changed on another connection): their values come back in another
	// form than the envelope, so their rows are refused.
	notText map[*rewrite.Column]string
	// guarded holds, for a policy column with a validated guard
	// constraint (pgcrypt-proxy guard), the key versions it accepts: no
	// stored value is under any other, so comparisons need not cover them
	// (see searchVersions).
	guarded map[*rewrite.Column]map[string]bool
	loaded  time.Time // when the proxy read it
	db      string    // current_database()
	// authTimeout is PostgreSQL's authentication_timeout (0: unknown).
	authTimeout time.Duration
	// triggerFuncs are the names of the functions that triggers on
	// policy tables (by name or known OID) and their partitions and
	// inheritance children run: CREATE OR REPLACE of one is refused.
	triggerFuncs map[string]bool
	maxOID       uint32 // the highest relation OID when it was read
}

// DefaultCatalogMaxAge is Options.CatalogMaxAge's default: schema changes
// made on other connections (a migration adding a view, recreating a
// table) are seen within this time. Changes made through the session
// itself are seen at once.
const DefaultCatalogMaxAge = 10 * time.Second

type relation struct {
	oid          uint32
	schema, name string
	kind         rewrite.RelKind
	columns      []string // attnum order, dropped columns left out
	attnums      []int16  // parallel to columns
	generated    []bool   // parallel to columns: a generated column (not a COPY field)
	maxAttnum    int16    // the highest attnum read: a higher one is a column added since
	policy       bool     // a policy table (not just a table of that name)
	// reach is, for a relation in catalog.views, how it reaches a policy
	// table: reachView, reachChild, reachParent or reachRenamed.
	reach string
	was   string // for reachRenamed: the policy table's name
}

// How a relation in catalog.views reaches a policy table's rows; the
// values are the ones catalogQuery returns.
const (
	reachView   = "v" // a view or materialized view reading it
	reachChild  = "d" // a partition or inheritance child (descendant)
	reachParent = "u" // a table it is a partition or child of (ancestor)
	// reachRenamed: the policy table itself, renamed or moved to another
	// schema since the proxy saw it (relation.was is its old name).
	reachRenamed = "r"
	// reachColumnGone: the policy table itself, one of whose policy
	// columns is gone (renamed or dropped by another connection): was
	// names it.
	reachColumnGone = "g"
	// reachForeignKey: a table (not a policy table) with a column a
	// foreign key links to a policy column: was names the policy column.
	reachForeignKey = "k"
)

type colKey struct {
	table  uint32
	attnum int16
}

// catalogQuery returns the proxy's catalog query for the policy's table
// names: one row per column of each relation with such a name, then the
// effective search_path.
func catalogQuery(names []string, tables [][2]string, known *knownTables) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = rewrite.QuoteLiteral(n)
	}
	pairs := make([]string, len(tables))
	for i, t := range tables {
		pairs[i] = "(" + rewrite.QuoteLiteral(t[0]) + ", " + rewrite.QuoteLiteral(t[1]) + ")"
	}
	return "SELECT c.oid, n.nspname, c.relname, c.relkind, a.attnum, a.attname, a.attgenerated <> ''" +
		" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" +
		" LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped" +
		" WHERE (c.relname IN (" + strings.Join(quoted, ", ") + ")" + known.predicate() + ") AND c.relkind IN ('r','p','v','m','f')" +
		" ORDER BY c.oid, a.attnum;" +
		" SELECT pg_catalog.array_to_string(pg_catalog.current_schemas(true), ','), (SELECT max(oid) FROM pg_catalog.pg_class)::text, pg_catalog.current_database()," +
		"  COALESCE((SELECT setting FROM pg_catalog.pg_settings WHERE name = 'authentication_timeout'), '')," +
		"  COALESCE((WITH RECURSIVE r(oid) AS (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname IN (" + strings.Join(quoted, ", ") + ")" + known.predicate() +
		"   UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN r ON i.inhparent = r.oid)" +
		"   SELECT pg_catalog.array_agg(DISTINCT p.proname)::text FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid" +
		"   WHERE t.tgrelid IN (SELECT oid FROM r)), '{}');" +
		// From the policy tables: views over anything reached, children
		// downwards and parents upwards (not a parent's other children,
		// which hold none of the policy table's rows).
		" WITH RECURSIVE dep(oid, reach) AS (" +
		"  SELECT c.oid, 's'::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" +
		"   WHERE ((n.nspname, c.relname) IN (" + strings.Join(pairs, ", ") + ")" + known.predicate() + ")" +
		"  UNION SELECT k.oid, k.reach FROM dep, LATERAL (" +
		"   SELECT r.ev_class AS oid, 'v'::text AS reach FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid" +
		"    WHERE d.refobjid = dep.oid AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass" +
		"    AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND r.ev_class <> d.refobjid" +
		"   UNION ALL SELECT i.inhrelid, 'd' FROM pg_catalog.pg_inherits i WHERE i.inhparent = dep.oid AND dep.reach IN ('s', 'd')" +
		"   UNION ALL SELECT i.inhparent, 'u' FROM pg_catalog.pg_inherits i WHERE i.inhrelid = dep.oid AND dep.reach IN ('s', 'u')) k)" +
		" SELECT DISTINCT ON (v.oid) v.oid, n.nspname, v.relname, v.relkind, dep.reach FROM dep JOIN pg_catalog.pg_class v ON v.oid = dep.oid" +
		" JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace WHERE dep.reach <> 's'" +
		// A policy table that is the parent of another keeps working: rows
		// written through it are encrypted for it.
		"  AND NOT (dep.reach = 'u' AND v.oid IN (SELECT oid FROM dep WHERE reach = 's')) ORDER BY v.oid, dep.reach;" +
		// Schema facts of each policy column that make writes to it wrong
		// without an error (see hazards).
		" SELECT n.nspname, c.relname, a.attname," +
		"  CASE WHEN bt.oid IN (1042, 1043) THEN GREATEST(CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END - 4, 0) ELSE 0 END," +
		"  EXISTS (WITH RECURSIVE d(oid) AS (SELECT a.atttypid UNION SELECT dt.typbasetype FROM pg_catalog.pg_type dt JOIN d ON dt.oid = d.oid WHERE dt.typtype = 'd')" +
		"   SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.contypid IN (SELECT oid FROM d) AND k.contype = 'c')," +
		"  EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND (i.indisunique OR i.indisexclusion) AND a.attnum = ANY (i.indkey::pg_catalog.int2[]))," +
		"  EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass" +
		"   AND d.objid = i.indexrelid AND d.refobjid = c.oid AND d.refobjsubid = a.attnum" +
		"   WHERE i.indrelid = c.oid AND NOT (a.attnum = ANY (i.indkey::pg_catalog.int2[])) AND (i.indexprs IS NOT NULL OR (i.indpred IS NOT NULL" +
		"    AND pg_catalog.pg_get_expr(i.indpred, i.indrelid) NOT IN ('(' || pg_catalog.quote_ident(a.attname) || ' IS NOT NULL)', '(' || pg_catalog.quote_ident(a.attname) || ' IS NULL)'))))," +
		"  EXISTS (SELECT 1 FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass" +
		"   AND d.objid = ad.oid AND d.refobjid = c.oid AND d.refobjsubid = a.attnum" +
		"   JOIN pg_catalog.pg_attribute g ON g.attrelid = c.oid AND g.attnum = ad.adnum" +
		"   WHERE ad.adrelid = c.oid AND g.attgenerated <> '' AND g.attnum <> a.attnum)," +
		"  pg_catalog.format_type(a.atttypid, a.atttypmod)," +
		// A validated guard constraint: the key versions values can be
		// under (see catalog.guarded).
		"  COALESCE((SELECT pg_catalog.pg_get_constraintdef(k.oid) FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid" +
		"   AND k.contype = 'c' AND k.convalidated AND pg_catalog.starts_with(k.conname, 'pgcrypt_guard_') AND k.conkey = ARRAY[a.attnum]" +
		"   ORDER BY k.oid LIMIT 1), '')," +
		// A string type (text, varchar, char, name, citext) holds the
		// envelope as written; any other (changed on another connection)
		// returns it in another form, which the proxy cannot decrypt.
		"  bt.typcategory = 'S'," +
		"  EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c' AND (a.attnum = ANY (k.conkey) OR 0 = ANY (k.conkey))" +
		"   AND NOT pg_catalog.starts_with(k.conname, 'pgcrypt_guard_')" +
		"   AND pg_catalog.pg_get_constraintdef(k.oid) <> 'CHECK ((' || pg_catalog.quote_ident(a.attname) || ' IS NOT NULL))')," +
		// Equality other than byte equality (a nondeterministic
		// collation, citext), on the column or in an index over it: on
		// envelopes it is byte equality.
		"  (bt.typname = 'citext' OR EXISTS (SELECT 1 FROM pg_catalog.pg_collation co WHERE co.oid = a.attcollation AND NOT co.collisdeterministic)" +
		"   OR EXISTS (SELECT 1 FROM pg_catalog.pg_index i CROSS JOIN LATERAL ROWS FROM (pg_catalog.unnest(i.indkey::pg_catalog.int2[]), pg_catalog.unnest(i.indcollation::pg_catalog.oid[])) AS u(k, coll)" +
		"    JOIN pg_catalog.pg_collation co ON co.oid = u.coll WHERE i.indrelid = c.oid AND u.k = a.attnum AND NOT co.collisdeterministic))," +
		// A table CHECK that compares the column with a string that is
		// not a deterministic envelope (made on the server: through the
		// proxy its literals are encrypted).
		"  EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c' AND (a.attnum = ANY (k.conkey) OR 0 = ANY (k.conkey))" +
		"   AND NOT pg_catalog.starts_with(k.conname, 'pgcrypt_guard_')" +
		"   AND EXISTS (SELECT 1 FROM pg_catalog.regexp_matches(pg_catalog.pg_get_constraintdef(k.oid), '''((?:[^'']|'''')*)''', 'g') AS m(l)" +
		"    WHERE m.l[1] !~ '^[^:'']+:siv:[A-Za-z0-9+/=]+$'))" +
		" FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" +
		" JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped" +
		" JOIN pg_catalog.pg_type t ON t.oid = a.atttypid" +
		" JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END" +
		" WHERE (n.nspname, c.relname) IN (" + strings.Join(pairs, ", ") + ") AND c.relkind IN ('r', 'p');" +
		linksQuery(pairs)
}

// buildCatalog turns the rows of catalogQuery into a catalog.
func buildCatalog(p *Policy, res *internalResult) (*catalog, error) {
	if res.err != nil {
		return nil, res.err
	}
	if len(res.sets) != 5 {
		return nil, fmt.Errorf("catalog query returned %d result sets, want 5", len(res.sets))
	}
	c := &catalog{byName: map[string][]*relation{}, byOID: map[uint32]*relation{}, cols: map[colKey]*policyColumn{},
		views: map[string][]*relation{}, loaded: time.Now()}
	for _, row := range res.sets[0] {
		if len(row) != 7 || row[0] == nil || row[1] == nil || row[2] == nil || row[3] == nil {
			return nil, fmt.Errorf("catalog query returned a malformed row")
		}
		oid64, err := strconv.ParseUint(string(row[0]), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("catalog query: bad oid: %w", err)
		}
		oid := uint32(oid64)
		r := c.byOID[oid]
		if r == nil {
			r = &relation{oid: oid, schema: string(row[1]), name: string(row[2]), kind: relKind(string(row[3]))}
			r.policy = r.kind == rewrite.RelTable && p.analyzer.Policy().HasTable(r.schema, r.name)
			c.byOID[oid] = r
			c.byName[r.name] = append(c.byName[r.name], r)
		}
		if row[4] == nil || row[5] == nil {
			continue // a relation without columns
		}
		attnum, err := strconv.ParseInt(string(row[4]), 10, 16)
		if err != nil {
			return nil, fmt.Errorf("catalog query: bad attnum: %w", err)
		}
		attname := string(row[5])
		r.columns = append(r.columns, attname)
		r.attnums = append(r.attnums, int16(attnum))
		r.maxAttnum = max(r.maxAttnum, int16(attnum))
		r.generated = append(r.generated, string(row[6]) == "t")
		if r.kind == rewrite.RelTable {
			if rc := p.analyzer.Policy().Lookup(r.schema, r.name, attname); rc != nil {
				c.cols[colKey{oid, int16(attnum)}] = p.column(rc)
			}
		}
	}
	if len(res.sets[1]) != 1 || len(res.sets[1][0]) != 5 || slices.ContainsFunc(res.sets[1][0], func(b []byte) bool { return b == nil }) {
		return nil, fmt.Errorf("catalog query: no search_path")
	}
	c.triggerFuncs = map[string]bool{}
	if err := pgarray.Parse(res.sets[1][0][4], func(name []byte, null bool) error {
		c.triggerFuncs[string(name)] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("catalog query: trigger functions: %w", err)
	}
	db := string(res.sets[1][0][2])
	c.db = db
	// A policy table this proxy has seen under its name, found now under
	// another (renamed or moved by another connection): statements naming
	// it are refused like views, as the policy no longer covers it.
	for _, r := range c.byOID {
		if r.policy {
			p.known.add(db, r.oid, r.schema+"."+r.name)
			continue
		}
		if was, ok := p.known.name(db, r.oid); ok && r.kind == rewrite.RelTable {
			v := &relation{oid: r.oid, schema: r.schema, name: r.name, kind: r.kind, reach: reachRenamed, was: was}
			if len(c.views[v.name]) == 0 {
				c.viewNames = append(c.viewNames, rewrite.TextSpellings(v.name)...)
			}
			c.db = db
			c.views[v.name] = append(c.views[v.name], v)
		}
	}
	// A policy table that lacks a policy column (renamed or dropped on
	// another connection), or whose policy column is under another name
	// (renamed, and a new column added under the old name): what the
	// client writes under the new name would be stored unencrypted, so
	// the table is refused until the policy or the schema is put right.
	for key, pc := range c.cols {
		p.known.addColumn(db, key, pc)
	}
	c.oldCols = p.known.moved(db, c.cols)
	for _, r := range c.byOID {
		if !r.policy {
			continue
		}
		if was := columnGone(p, c, r); was != "" {
			v := &relation{oid: r.oid, schema: r.schema, name: r.name, kind: r.kind, reach: reachColumnGone, was: was}
			if len(c.views[v.name]) == 0 {
				c.viewNames = append(c.viewNames, rewrite.TextSpellings(v.name)...)
			}
			c.views[v.name] = append(c.views[v.name], v)
		}
	}
	maxOID, err := strconv.ParseUint(string(res.sets[1][0][1]), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("catalog query: bad oid: %w", err)
	}
	c.maxOID = uint32(maxOID)
	if secs, err := strconv.Atoi(string(res.sets[1][0][3])); err == nil && secs > 0 {
		c.authTimeout = time.Duration(secs) * time.Second
	}
	if sp := string(res.sets[1][0][0]); sp != "" {
		c.searchPath = strings.Split(sp, ",")
	}
	for _, row := range res.sets[2] {
		if len(row) != 5 || row[0] == nil || row[1] == nil || row[2] == nil || row[3] == nil || row[4] == nil {
			return nil, fmt.Errorf("catalog query returned a malformed view row")
		}
		v := &relation{schema: string(row[1]), name: string(row[2]), kind: relKind(string(row[3])), reach: string(row[4])}
		if len(c.views[v.name]) == 0 {
			c.viewNames = append(c.viewNames, rewrite.TextSpellings(v.name)...)
		}
		c.views[v.name] = append(c.views[v.name], v)
	}
	if err := c.readHazards(p, res.sets[3]); err != nil {
		return nil, err
	}
	if err := c.readLinks(p, res.sets[4]); err != nil {
		return nil, err
	}
	for _, vs := range c.views {
		for _, v := range vs {
			c.viewSchemas = append(c.viewSchemas, rewrite.TextSpellings(v.schema)...)
		}
	}
	return c, nil
}

// policyView returns the view over a policy table that n names in the
// session, or nil. Like PostgreSQL, it takes the first relation on the
// search_path of that name, table or view.
func (c *catalog) policyView(n rewrite.RelName) *relation {
	views := c.views[n.Name]
	if len(views) == 0 {
		return nil
	}
	pick := func(schema string) (*relation, bool) {
		for _, v := range views {
			if v.schema == schema {
				return v, true
			}
		}
		for _, r := range c.byName[n.Name] {
			if r.schema == schema {
				return nil, true // a table of that name comes first
			}
		}
		return nil, false
	}
	if n.Schema != "" {
		v, _ := pick(n.Schema)
		return v
	}
	for _, s := range c.searchPath {
		if v, found := pick(s); found {
			return v
		}
	}
	return nil
}

func relKind(k string) rewrite.RelKind {
	switch k {
	case "r", "p":
		return rewrite.RelTable
	case "v":
		return rewrite.RelView
	default:
		return rewrite.RelOther
	}
}

// resolve finds what a relation name denotes in the session, as
// PostgreSQL would: a qualified name directly, an unqualified one through
// the search_path. Names unlike any policy table's are not in the catalog
// and resolve to unknown, which analysis treats as a table that is not a
// policy table.
func (c *catalog) resolve(n rewrite.RelName) rewrite.Relation {
	cands := c.byName[n.Name]
	if len(cands) == 0 {
		return rewrite.Relation{Kind: rewrite.RelUnknown}
	}
	pick := func(schema string) *relation {
		for _, r := range cands {
			if r.schema == schema {
				return r
			}
		}
		return nil
	}
	var r *relation
	if n.Schema != "" {
		r = pick(n.Schema)
	} else {
		for _, s := range c.searchPath {
			if r = pick(s); r != nil {
				break
			}
		}
	}
	if r == nil {
		return rewrite.Relation{Kind: rewrite.RelUnknown}
	}
	// With one relation of this name in the whole database, any
	// search_path finds it or nothing; with more, the statement is sent
	// with the schema written in.
	return rewrite.Relation{Kind: r.kind, Schema: r.schema, Name: r.name, Columns: r.columns, Generated: r.generated, Shadowed: len(cands) > 1}
}

// keywordsQuery reads, once per process, the server's grammar's keywords
// and the OIDs of the functions that read whole tables (the result sets
// after the catalog's).
var keywordsQuery = "; SELECT word, catcode FROM pg_catalog.pg_get_keywords()" +
	"; SELECT oid::text FROM pg_catalog.pg_proc WHERE proname IN (" + quoteList(wholeTableFuncs) + ")"

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = rewrite.QuoteLiteral(n)
	}
	return strings.Join(q, ", ")
}

// noteKeywords takes the last result set of res, the server's keywords,
// and records the words its grammar and the proxy's parser treat
// differently (see rewrite.KeywordsDiffer).
func (s *Server) noteKeywords(res *internalResult) error {
	if len(res.sets) < 2 {
		return errors.New("no result")
	}
	oids := map[uint32]bool{}
	for _, row := range res.sets[len(res.sets)-1] {
		if len(row) != 1 {
			return errors.New("a malformed function row")
		}
		oid, err := strconv.ParseUint(string(row[0]), 10, 32)
		if err != nil {
			return errors.New("a malformed function row")
		}
		oids[uint32(oid)] = true
	}
	s.wholeTableOIDs.Store(&oids)
	rows := res.sets[len(res.sets)-2]
	res.sets = res.sets[:len(res.sets)-2]
	server := make(map[string]rewrite.Keyword, len(rows))
	for _, row := range rows {
		if len(row) != 2 || len(row[1]) != 1 {
			return errors.New("a malformed row")
		}
		server[string(row[0])] = rewrite.Keyword{Category: row[1][0]}
	}
	d := rewrite.KeywordsDiffer(server)
	if len(d) > 0 {
		s.log.Info("the server's SQL grammar differs from the proxy's parser in some keywords; statements on encrypted columns that use them are refused", "words", strings.Join(d, " "))
	}
	s.keywordsDiffer.Store(&d)
	return nil
}

// grammarWord returns a word of sql that the server's grammar reads
// differently from the proxy's parser, or "".
func (s *Server) grammarWord(sql string) string {
	d := s.keywordsDiffer.Load()
	if d == nil {
		return ""
	}
	w := rewrite.FirstWord(sql, *d)
	if w == "json" {
		// A cast to json reads the same in every grammar.
		w = rewrite.FirstWord(jsonCast.ReplaceAllString(sql, "::jsonb"), *d)
	}
	return w
}

var jsonCast = regexp.MustCompile(`(?i)::\s*json\b`)

// grammarError refuses a statement on policy tables that uses a word the
// server's grammar reads differently from the proxy's parser.
type grammarError struct{ word string }

func (e *grammarError) Error() string {
	return fmt.Sprintf("this server's SQL grammar reads %q differently from the proxy's parser (PostgreSQL 17), so the proxy cannot tell what the statement does with encrypted columns; write it as a quoted identifier (\"%s\") or without it", e.word, e.word)
}
