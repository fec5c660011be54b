package rewrite

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Use says how a parameter or literal meets its policy column.
type Use uint8

const (
	// UseWrite: the value is stored in the column (INSERT, UPDATE SET,
	// ON CONFLICT DO UPDATE SET, MERGE).
	UseWrite Use = 1 << iota
	// UseCompare: the value is compared with the column (=, <>, IN, IS
	// DISTINCT FROM, = ANY). Only deterministic columns get this use.
	UseCompare
)

// String returns "write", "compare" or "write+compare".
func (u Use) String() string {
	switch u {
	case UseWrite:
		return "write"
	case UseCompare:
		return "compare"
	case UseWrite | UseCompare:
		return "write+compare"
	default:
		return "use(" + strconv.Itoa(int(u)) + ")"
	}
}

// Expand says how a compared value meets a column whose stored values are
// under several key versions (a rotation): a deterministic envelope under
// one version never equals one under another, so the comparison must take
// the value's envelope under each version. It depends only on where the
// value stands in the statement.
type Expand uint8

const (
	// ExpandNone: the value can be compared under one key version only.
	ExpandNone Expand = iota
	// ExpandAny: the right operand of =. A literal becomes
	// ANY (ARRAY[e1, e2]); a parameter's text already reads
	// ANY (pg_catalog.string_to_array($n, ',')) (see Plan.Splices) and its
	// value is the envelopes joined by commas.
	ExpandAny
	// ExpandAll: the right operand of <>, likewise with ALL.
	ExpandAll
	// ExpandList: an item of an IN list or of an ARRAY[...] compared with
	// = ANY or <> ALL. A literal becomes e1, e2 in place; a parameter's
	// list already reads SELECT pg_catalog.unnest(...) over each item's
	// string_to_array, and its value is the envelopes joined by commas.
	ExpandList
	// ExpandElems: an array parameter compared with = ANY or <> ALL: each
	// element's envelopes under every version go in the array.
	ExpandElems
)

// Splice is a piece of the statement text the proxy replaces: SQL[Start:End]
// becomes Text.
type Splice struct {
	Start, End int
	Text       string
}

// ConstKind is the lexical kind of a literal.
type ConstKind uint8

const (
	ConstString  ConstKind = iota + 1 // '...', E'...', U&'...', $$...$$, also typed: text '...'
	ConstInteger                      // 42, -42, 0x2A, 1_000
	ConstNumeric                      // 1.5 (plain decimal notation only)
	ConstBoolean                      // TRUE, FALSE
)

// String returns the kind's name.
func (k ConstKind) String() string {
	switch k {
	case ConstString:
		return "string"
	case ConstInteger:
		return "integer"
	case ConstNumeric:
		return "numeric"
	case ConstBoolean:
		return "boolean"
	default:
		return "const(" + strconv.Itoa(int(k)) + ")"
	}
}

// Param is a bind parameter ($n) that belongs to a policy column: the proxy
// encrypts its value at Bind (NULL stays NULL).
type Param struct {
	Number int // n in $n, from 1
	Column *Column
	Use    Use
	// Array is true when the parameter is an array whose elements are
	// compared with Column (col = ANY($n), col <> ALL($n)): each element
	// must be encrypted, not the array as a whole.
	Array bool
	// Expand, for a compared parameter, says how its value meets several
	// key versions; ExpandNone when it cannot (see Expand).
	Expand Expand
}

// Joined reports whether the parameter's value is its envelopes under
// every key version joined by commas (the text reads string_to_array($n)).
func (p Param) Joined() bool {
	return p.Expand == ExpandAny || p.Expand == ExpandAll || p.Expand == ExpandList
}

// Literal is a constant in the SQL text that belongs to a policy column: the
// proxy replaces SQL[Start:End] by the quoted envelope of Value.
type Literal struct {
	// Start and End delimit the literal's tokens (End exclusive): the whole
	// of 'a''b', E'\n', U&'\0041' UESCAPE '!', $tag$...$tag$, 'a' 'b'
	// continued on a new line, or -42. A cast around the literal
	// ('x'::text, CAST('x' AS varchar), text 'x') is outside the range and
	// stays: only casts that keep the value unchanged are accepted.
	Start, End int
	// Value is the plaintext the literal denotes, as the server would store
	// it in a text column (escapes processed, numbers in canonical form).
	Value     string
	Kind      ConstKind
	Column    *Column
	Use       Use
	Statement int
	// Expand, for a compared literal, says how it meets several key
	// versions (see Expand); Joined, for an EXECUTE argument given to a
	// joined parameter (Param.Joined), says it is replaced by one literal
	// of the envelopes joined by commas.
	Expand Expand
	Joined bool
}

// String describes the literal without its value.
func (l Literal) String() string {
	return fmt.Sprintf("%s literal at %d-%d for %s (%s)", l.Kind, l.Start, l.End, l.Column, l.Use)
}

// GoString describes the literal without its value, for %#v.
func (l Literal) GoString() string { return "rewrite.Literal{" + l.String() + "}" }

// StmtKind is the kind of one statement.
type StmtKind uint8

const (
	StmtOther      StmtKind = iota // utility and DDL statements, not analysed further
	StmtSelect                     // SELECT, VALUES, TABLE, DECLARE CURSOR, SELECT INTO, CREATE TABLE AS
	StmtInsert                     // INSERT
	StmtUpdate                     // UPDATE
	StmtDelete                     // DELETE
	StmtMerge                      // MERGE
	StmtCopy                       // COPY; see Statement.Copy
	StmtExplain                    // EXPLAIN; the explained statement is analysed like itself
	StmtPrepare                    // PREPARE name AS ...; see Statement.Prepared
	StmtExecute                    // EXECUTE name(...); see Statement.Execute
	StmtDeallocate                 // DEALLOCATE name | ALL; see Statement.Name
	StmtDo                         // DO block
	StmtCall                       // CALL
)

var stmtKindNames = [...]string{"other", "select", "insert", "update", "delete", "merge", "copy", "explain", "prepare", "execute", "deallocate", "do", "call"}

// String returns the kind's name.
func (k StmtKind) String() string {
	if int(k) < len(stmtKindNames) {
		return stmtKindNames[k]
	}
	return "stmt(" + strconv.Itoa(int(k)) + ")"
}

// Statement describes one statement of the SQL text.
type Statement struct {
	// Start and End delimit the statement in the SQL text (End exclusive,
	// without the terminating semicolon).
	Start, End int
	Kind       StmtKind
	// Name is the prepared statement name of PREPARE, EXECUTE and
	// DEALLOCATE ("" for DEALLOCATE ALL).
	Name string
	// Copy is set for COPY.
	Copy *Copy
	// Prepared is set for PREPARE: the parameters of the prepared
	// statement that belong to policy columns. The proxy remembers them by
	// Name for later EXECUTEs (see ExecuteLiterals).
	Prepared []Param
	// Execute is set for EXECUTE: its arguments.
	Execute []ExecuteArg
	// TriggerFunction is set for CREATE OR REPLACE FUNCTION … RETURNS
	// trigger: the function's name (as pg_proc.proname holds it), without
	// its schema. A
	// trigger on a policy table that runs a function of that name would
	// run the new body, which may fill a policy column with anything; the
	// caller refuses the statement then, from its catalog.
	TriggerFunction string
}

// ExecuteArg is one argument of an SQL-level EXECUTE.
type ExecuteArg struct {
	Start, End int // the argument's literal tokens, when Kind != 0
	// Kind is the constant's kind, or 0 when the argument is not a single
	// constant (an expression, a parameter, NULL).
	Kind  ConstKind
	Value string
	Null  bool // the argument is NULL
	// Param is n when the argument is the bind parameter $n, else 0.
	Param int
	// Why is set when Kind is 0 and the argument is neither NULL nor a
	// parameter: what it is ("an expression", "a cast to integer"...).
	Why string
}

// ExecuteLiterals returns the literals of an EXECUTE statement (s.Kind ==
// StmtExecute) to encrypt, given the policy parameters the proxy recorded
// at the matching PREPARE, and the bind parameters of the EXECUTE itself
// that must be encrypted (EXECUTE p($1) sent with the extended protocol). An
// argument for a policy parameter that is not a constant, NULL or a bind
// parameter gives a *Rejection.
func (s *Statement) ExecuteLiterals(stmtIndex int, prepared []Param) ([]Literal, []Param, error) {
	var lits []Literal
	var params []Param
	for _, p := range prepared {
		i := p.Number - 1
		if i < 0 || i >= len(s.Execute) {
			continue // the server rejects a wrong argument count
		}
		a := s.Execute[i]
		switch {
		case a.Null:
		case a.Param > 0:
			// EXECUTE p($1): the server casts $1 to the declared type;
			// its value meets p's parameter as one value.
			params = append(params, Param{Number: a.Param, Column: p.Column, Use: p.Use, Array: p.Array, Expand: p.Expand})
		case a.Kind != 0 && !p.Array:
			lits = append(lits, Literal{Start: a.Start, End: a.End, Value: a.Value, Kind: a.Kind, Column: p.Column, Use: p.Use, Statement: stmtIndex, Joined: p.Joined()})
		default:
			why := a.Why
			if p.Array {
				why = "an array argument"
			}
			return nil, nil, &Rejection{Reason: ReasonPlaintextWrite, Column: p.Column, Detail: why + " given to EXECUTE", Statement: stmtIndex, Location: a.Start}
		}
	}
	return lits, params, nil
}

// CopyFormat is the data format of a COPY.
type CopyFormat uint8

const (
	CopyText CopyFormat = iota
	CopyCSV
	CopyBinary
)

// String returns "text", "csv" or "binary".
func (f CopyFormat) String() string {
	switch f {
	case CopyCSV:
		return "csv"
	case CopyBinary:
		return "binary"
	default:
		return "text"
	}
}

// Copy describes a COPY statement.
type Copy struct {
	// From is true for COPY ... FROM (data flows to the server; the proxy
	// encrypts policy fields of CopyData), false for COPY ... TO (the
	// proxy decrypts them).
	From bool
	// Stdio is true for STDIN/STDOUT; false for a server-side file or
	// program, whose data never passes through the proxy.
	Stdio  bool
	Format CopyFormat
	// Columns has one entry per field of a COPY row, in row order: the
	// policy column whose values the field carries, or nil. It is nil
	// when the row has no policy field or the row layout is unknown (see
	// the plan's rejections).
	Columns []*Column
	// Options as given (the server's defaults apply where empty):
	// DELIMITER, NULL, QUOTE, ESCAPE, DEFAULT (the marker string), ENCODING.
	Delimiter, Null, Quote, Escape, Default, Encoding string
	// NullSet is true when NULL was given (possibly as the empty string).
	NullSet bool
	// Header is true for HEADER true or HEADER MATCH.
	Header bool
	// ForceNull is true when FORCE_NULL or FORCE_NOT_NULL is given.
	ForceNull bool
	// Invalid says why PostgreSQL will refuse the options (an option given
	// twice, an unknown option or value); "" when it will not. The data of
	// such a COPY must not be read with the proxy's guess of the options.
	Invalid string
}

// Plan is the outcome of analysing a statement against a policy and a
// resolution of its relation names. It is shared between sessions through
// the cache: treat it and every slice it returns as read-only.
type Plan struct {
	stmts      []Statement
	params     []Param
	literals   []Literal
	rejections []Rejection
	notes      []Note
	columns    []ColumnList
	qualified  []ColumnList
	splices    []Splice
	// constContent: built from what a string constant holds (see
	// shape.go), so it is not moved to another text of the same shape.
	constContent bool
}

// ColumnList is a column list to write into the statement text: an INSERT
// or COPY of a policy table without one maps values to columns by
// position, which is the position the proxy's catalog knew. Written out,
// the names make PostgreSQL map them by name, so a column dropped or added
// since (on another connection, say) fails the statement instead of
// shifting a plaintext into a policy column or ciphertext out of one.
type ColumnList struct {
	At   int    // byte offset in the SQL text: after the relation name (and alias)
	Text string // " (a, b, c)"
}

// ColumnLists returns the column lists to write in, by offset.
func (p *Plan) ColumnLists() []ColumnList { return p.columns }

// Qualifications returns the schema prefixes to write in front of
// unqualified relation names that may denote a policy table, by offset:
// written in, the server resolves them as the proxy did, whatever its
// search_path has become.
func (p *Plan) Qualifications() []ColumnList { return p.qualified }

// Insertions returns ColumnLists and Qualifications merged by offset, for
// WithColumnLists.
func (p *Plan) Insertions() []ColumnList {
	if len(p.qualified) == 0 {
		return p.columns
	}
	if len(p.columns) == 0 {
		return p.qualified
	}
	out := append(append([]ColumnList(nil), p.columns...), p.qualified...)
	slices.SortStableFunc(out, func(a, b ColumnList) int { return cmp.Compare(a.At, b.At) })
	return out
}

// WithColumnLists returns sql with the lists written in (see ColumnList).
func WithColumnLists(sql string, lists []ColumnList) string {
	var b strings.Builder
	last := 0
	for _, l := range lists {
		b.WriteString(sql[last:l.At])
		b.WriteString(l.Text)
		last = l.At
	}
	b.WriteString(sql[last:])
	return b.String()
}

// Splices returns the pieces of text to replace, by Start, that let
// compared parameters meet several key versions (see Expand): the proxy
// applies them with the literals' replacements (RewriteAll), whatever the
// number of key versions, so a prepared statement stays right when a
// version is added.
func (p *Plan) Splices() []Splice { return p.splices }

// Statements returns one entry per statement of the SQL text.
func (p *Plan) Statements() []Statement { return p.stmts }

// Params returns the bind parameters that belong to policy columns, by
// ascending Number. Parameters not listed are relayed unchanged.
func (p *Plan) Params() []Param { return p.params }

// Literals returns the constants that belong to policy columns, by
// ascending Start.
func (p *Plan) Literals() []Literal { return p.literals }

// Rejections returns every problem found, in statement order.
func (p *Plan) Rejections() []Rejection { return p.rejections }

// Notes returns relations analysis could not see into.
func (p *Plan) Notes() []Note { return p.notes }

// Passthrough reports whether the statement needs no change and has no
// rejection: no parameter or literal to encrypt, no COPY data to handle.
func (p *Plan) Passthrough() bool {
	if len(p.params) > 0 || len(p.literals) > 0 || len(p.rejections) > 0 || len(p.splices) > 0 {
		return false
	}
	for i := range p.stmts {
		s := &p.stmts[i]
		if (s.Copy != nil && s.Copy.Columns != nil) || s.Kind == StmtPrepare || s.Kind == StmtExecute || s.Kind == StmtDeallocate {
			return false
		}
	}
	return true
}

// Check returns the first rejection that applies, as a *Rejection, or nil.
// With allowReads (on_unsupported: allow), relaxable rejections are
// ignored; the statement then runs with the encryptions the plan lists
// (values in relaxed constructs stay as written).
func (p *Plan) Check(allowReads bool) error {
	for i := range p.rejections {
		r := &p.rejections[i]
		if allowReads && r.Relaxable {
			continue
		}
		return r
	}
	return nil
}
