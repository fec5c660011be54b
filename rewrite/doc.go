// Package rewrite analyses SQL statements for pgcrypt-proxy: which bind
// parameters and literals belong to which policy column, whether they are
// written into it or compared with it, and which uses of policy columns
// cannot work on ciphertext. It uses PostgreSQL's own parser (libpg_query
// through pg_query_go) and is pure: no I/O, no database access, nothing of
// the wire protocol.
//
// # Use
//
// The proxy builds a Policy from its configuration and one Analyzer per
// policy, shared by all sessions. For every Query and Parse message:
//
//  1. Analyzer.Analyze(sql) parses the text (cached by exact text in a
//     bounded cache with CLOCK eviction, an LRU approximation whose hits take
//     only a read lock; a hit costs a map lookup and does not allocate), or
//     by shape: a SELECT, INSERT, UPDATE, DELETE or MERGE text that differs
//     from one analysed before only in what its '…' strings hold shares that
//     one's parse tree, and its plan is that plan with the literals moved
//     (see shape.go). It returns the relation names the text references. When
//     Analysis.MayInvolvePolicy is false (no referenced relation has the bare
//     name of a policy table, the common case) the proxy relays the message
//     untouched.
//  2. Otherwise the proxy resolves those names in the session (search_path,
//     catalog; relation OIDs never reach this package) and calls
//     Analysis.Plan(resolver). The Plan lists the parameters to encrypt at
//     Bind (Plan.Params), the literals to replace in the text
//     (Plan.Literals, Plan.Rewrite), COPY row layouts (Statement.Copy), the
//     rejections (Plan.Check) and notes about views and unknown relations.
//     The plan of the last resolution is memoized in the Analysis.
//
// Analyses and plans are immutable and safe for concurrent use. Slices they
// return are shared: do not modify them.
//
// # Model
//
// Analysis follows values. A value is anything an expression can produce:
// a stored policy value (ciphertext of column C), a parameter or literal
// (plaintext the proxy can encrypt), or anything else (a non-policy column,
// a function result: plaintext the proxy cannot touch). Column references
// are resolved through FROM items, JOINs (including USING and NATURAL),
// subqueries, CTEs (including data-modifying and recursive ones), LATERAL
// and correlated references, the way PostgreSQL resolves them. Each value
// then meets a context:
//
//   - write (INSERT values or SELECT source, UPDATE SET, ON CONFLICT DO
//     UPDATE SET, MERGE): parameters and literals get encrypted for the
//     target column; NULL and DEFAULT pass; a stored value may be copied
//     only from the same column, or from a column with the same key and
//     associated data (and, into a deterministic column, the same mode);
//     anything else would store plaintext and is rejected, never relaxably.
//   - equality (=, <>, IN, NOT IN, = ANY, <> ALL, IS [NOT] DISTINCT FROM,
//     NULLIF, CASE x WHEN, JOIN ... USING, IN (subquery)): every policy
//     column involved must be deterministic and share key and associated
//     data; parameters and literals on either side get encrypted for it;
//     a non-policy column or an expression on the other side is rejected.
//   - output (the result rows of the statement: select list, RETURNING,
//     DECLARE CURSOR): the proxy decrypts a field when RowDescription
//     carries a policy table's OID and attribute number, which the server
//     fills only for plain column references (through aliases, subqueries,
//     CTEs, joins). A policy value returned through UNION/INTERSECT/EXCEPT,
//     CASE, COALESCE, NULLIF, a cast, a scalar subquery, a row or a FULL
//     JOIN USING column would reach the client as ciphertext: rejected.
//   - anything else is an operation on ciphertext and is rejected: LIKE,
//     ILIKE, SIMILAR TO, regular expressions, <, >, <=, >=, BETWEEN,
//     GREATEST/LEAST, ORDER BY (also in windows and aggregates), functions
//     (lower(email), length(email)...), operators (email || 'x'), casts to
//     anything but text or varchar, COLLATE, subscripts, aggregates other
//     than count, and GROUP BY, DISTINCT, DISTINCT ON, PARTITION BY, UNION
//     (deduplication) or count(DISTINCT) on a randomized column.
//
// Rejections that only concern reading or comparing are Relaxable:
// with on_unsupported: allow the proxy may run the statement with the
// encryptions the plan does list. A parameter used both for a policy column
// and elsewhere ($1 written to email and returned as a plain column) is
// rejected, except in IS [NOT] NULL tests, which encryption does not change.
//
// Parameters and literals may be wrapped in casts to text or varchar
// without a length ($1::text, CAST($1 AS varchar), text 'x'); a cast to
// another type, or with a length (which would truncate the ciphertext), is
// rejected when the value belongs to a policy column.
//
// # Literals
//
// A Literal's Start and End cover exactly the constant's tokens as
// PostgreSQL's lexer sees them, in any of these forms (and strings continued
// on a new line):
//
//	'a''b'   E'\n'   U&'\0041' UESCAPE '!'   $tag$...$tag$   -42   0x2A   TRUE
//
// A surrounding cast is kept, since only value-preserving casts are
// accepted. Its Value is the string the server would store: escapes
// processed, numbers in canonical form (integers in any notation, numerics
// only in plain decimal notation).
// Rewrite replaces each by a standard '...' literal with quotes doubled (an
// E'...' literal when the value has a backslash), valid whatever the
// session's standard_conforming_strings. The lexer runs with
// standard_conforming_strings = on; with it off, offsets of literals that
// contain backslashes would be wrong, so the proxy must not rewrite
// literals in such a session.
//
// # Parse errors
//
// A text the parser rejects gives a *ParseError. The server would reject it
// too, so relaying it cannot store plaintext, unless the server is newer and
// accepts syntax this parser does not know. ParseError.MayInvolvePolicy is
// true when the text contains a policy table name anywhere (even in a
// comment or string); the proxy then rejects the statement, and otherwise
// may relay it.
//
// # Limits
//
//   - The fast path is by name. A view, a function, a trigger, a rule or
//     a partition that touches a policy table under another name is not
//     seen unless its name is in Options.ExtraNames; then the resolver
//     decides what it is (a partition may be resolved as its policy
//     table). Views found while planning are reported as Notes; the safe
//     default is to reject writes through them. A relation that has the
//     name of a policy table but does not resolve is rejected
//     (ReasonUnresolvedRelation): if the resolver failed, the table would
//     otherwise be taken for a plain one.
//   - Function and procedure bodies are not analysed: SELECT f('x') or
//     CALL p('x') cannot be told to write 'x' into a policy column. DO
//     blocks that mention a policy table by name are rejected.
//   - Column types are not known: a cast of a policy column to text is
//     assumed not to change the stored value (it is still accepted in
//     comparisons and writes, and rejected in output because the server
//     loses the column origin).
//   - Column lists are needed for INSERT or COPY without a column list and
//     for positional references (ORDER BY 1, SELECT * feeding INSERT ...
//     SELECT) on policy tables, and to tell which relation an unqualified
//     column name belongs to when a subquery uses tables of unknown
//     columns; without them such statements are rejected
//     (ReasonColumnsUnknown, ReasonAmbiguousColumn). Resolvers should
//     provide Relation.Columns for every table.
//   - Column DEFAULT expressions, generated columns and triggers of policy
//     tables are not seen: a non-NULL default on a policy column stores
//     plaintext.
//   - SQL-level PREPARE/EXECUTE: the plan of PREPARE lists the policy
//     parameters (Statement.Prepared); the proxy must remember them by name
//     (in statement order, also within one multi-statement text), forget
//     them at DEALLOCATE and DISCARD ALL, and for EXECUTE encrypt the
//     matching arguments (Statement.ExecuteLiterals).
//   - Offsets assume the text is UTF-8 (or an ASCII-safe single-byte
//     encoding). With client_encoding SJIS, BIG5, GBK, UHC or GB18030 a
//     trailing byte of a multibyte character can look like a quote or a
//     backslash; the proxy must not rewrite literals in such sessions.
//   - Comparisons with a deterministic column match only envelopes of the
//     active key; during a key rotation the proxy must widen them itself
//     (UseCompare tells which parameters and literals are compared).
//   - Writes of stored values into non-policy columns (INSERT INTO audit
//     SELECT email FROM clients) copy ciphertext and are not reported.
package rewrite
