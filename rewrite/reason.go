package rewrite

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnsupported is matched (errors.Is) by every *Rejection.
var ErrUnsupported = errors.New("rewrite: statement unsupported on encrypted columns")

// Reason says why a statement cannot run correctly on ciphertext.
type Reason uint8

// Reasons. Their messages name the column and the construct, never values.
const (
	ReasonNone               Reason = iota
	ReasonPatternMatch              // LIKE, ILIKE, SIMILAR TO, ~ and friends
	ReasonRangeComparison           // <, >, <=, >=, BETWEEN
	ReasonOrderBy                   // ORDER BY (statement, window or aggregate)
	ReasonFunction                  // a function applied to the column
	ReasonOperator                  // an operator, cast, COLLATE or subscript applied to the column
	ReasonAggregate                 // an aggregate other than count
	ReasonRandomizedEquality        // =, <>, IN, join on a randomized column
	ReasonRandomizedGrouping        // GROUP BY, DISTINCT, PARTITION BY on a randomized column
	ReasonIncomparable              // compared with something of another ciphertext domain or unencrypted
	ReasonUntraceableOutput         // returned through UNION, CASE, COALESCE, ... so it cannot be decrypted
	ReasonPlaintextWrite            // a value that cannot be encrypted would be stored in the column
	ReasonCrossDomainCopy           // a stored value of another policy column would not decrypt here
	ReasonCast                      // a cast that cannot carry ciphertext (type or length)
	ReasonUnencryptableValue        // a constant form the proxy cannot encrypt (bit string, array literal, ...)
	ReasonParamConflict             // one parameter or literal needed in two incompatible forms
	ReasonAmbiguousColumn           // cannot tell whether a name refers to the policy column
	ReasonColumnsUnknown            // the column list of a policy table is needed but unknown
	ReasonCopyServerSide            // COPY FROM a server file or program into the column
	ReasonOpaqueCode                // a DO block that mentions a policy table
	ReasonUnresolvedRelation        // a relation named like a policy table did not resolve
	ReasonCreateAs                  // CREATE TABLE AS or SELECT INTO a table named like a policy table
	ReasonResolutionChange          // a policy table named after a statement of the same text that can change what names mean
	ReasonSchemaChange              // DDL that would store a policy value unencrypted or detach a table or column from the policy
	ReasonWholeTable                // a function that reads whole tables inside the server (table_to_xml and kin)
	ReasonCopyOut                   // a policy column's envelope stored in a column outside the policy
)

var reasonNames = [...]string{
	ReasonNone:               "none",
	ReasonPatternMatch:       "pattern_match",
	ReasonRangeComparison:    "range_comparison",
	ReasonOrderBy:            "order_by",
	ReasonFunction:           "function",
	ReasonOperator:           "operator",
	ReasonAggregate:          "aggregate",
	ReasonRandomizedEquality: "randomized_equality",
	ReasonRandomizedGrouping: "randomized_grouping",
	ReasonIncomparable:       "incomparable",
	ReasonUntraceableOutput:  "untraceable_output",
	ReasonPlaintextWrite:     "plaintext_write",
	ReasonCrossDomainCopy:    "cross_domain_copy",
	ReasonCast:               "cast",
	ReasonUnencryptableValue: "unencryptable_value",
	ReasonParamConflict:      "param_conflict",
	ReasonAmbiguousColumn:    "ambiguous_column",
	ReasonColumnsUnknown:     "columns_unknown",
	ReasonCopyServerSide:     "copy_server_side",
	ReasonOpaqueCode:         "opaque_code",
	ReasonUnresolvedRelation: "unresolved_relation",
	ReasonCreateAs:           "create_as",
	ReasonResolutionChange:   "resolution_change",
	ReasonSchemaChange:       "schema_change",
	ReasonWholeTable:         "whole_table",
	ReasonCopyOut:            "copy_out",
}

// String returns a stable snake_case name, suitable as a metric label.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Rejection is one reason a statement cannot be run as written. It is an
// error; errors.Is(r, ErrUnsupported) holds.
type Rejection struct {
	Reason Reason
	// Column is the policy column concerned, or nil when no single column
	// is (ReasonColumnsUnknown, ReasonOpaqueCode, ReasonUnresolvedRelation,
	// ReasonCreateAs, ReasonResolutionChange).
	Column *Column
	// Detail names the construct (an operator, a function, a clause, a
	// column, a table). It never holds a value from the statement.
	Detail string
	// Relaxable is true when the problem only concerns reading or comparing
	// (on_unsupported: allow may run the statement unchanged) and false
	// when a plaintext would be stored in a policy column.
	Relaxable bool
	// Statement is the index of the statement in the SQL text.
	Statement int
	// Location is the byte offset of the construct in the SQL text, or -1.
	Location int
}

// Error returns the message for the client, for example
// "column public.clients.email: LIKE cannot work on encrypted values
// (deterministic encryption supports only = and <>)".
func (r *Rejection) Error() string {
	var b strings.Builder
	if r.Column != nil {
		b.WriteString("column ")
		b.WriteString(r.Column.String())
		b.WriteString(": ")
	}
	b.WriteString(r.message())
	return b.String()
}

// Is reports whether target is ErrUnsupported.
func (r *Rejection) Is(target error) bool { return target == ErrUnsupported }

// SQLState returns the SQLSTATE the proxy should answer with.
func (r *Rejection) SQLState() string {
	if r.Reason == ReasonAmbiguousColumn {
		return "42702" // ambiguous_column
	}
	return "0A000" // feature_not_supported
}

func (r *Rejection) modeHint() string {
	if r.Column != nil && r.Column.Mode() == Randomized {
		return " (randomized encryption supports no comparison; use search: equality for = and <>)"
	}
	return " (deterministic encryption supports only = and <>)"
}

func (r *Rejection) message() string {
	d := r.Detail
	switch r.Reason {
	case ReasonPatternMatch:
		return d + " cannot work on encrypted values" + r.modeHint()
	case ReasonRangeComparison:
		return "range comparison " + d + " cannot work on encrypted values" + r.modeHint()
	case ReasonOrderBy:
		return d + " cannot sort encrypted values"
	case ReasonFunction:
		return "function " + d + "() cannot work on encrypted values"
	case ReasonOperator:
		return d + " cannot work on encrypted values"
	case ReasonAggregate:
		return "aggregate " + d + "() cannot work on encrypted values (only count() can)"
	case ReasonRandomizedEquality, ReasonRandomizedGrouping:
		return d + " needs deterministic encryption (search: equality) but the column is randomized"
	case ReasonIncomparable:
		return "compared with " + d + ", which is not encrypted under the same key and associated data; only parameters, literals and columns of the same equality domain can be compared"
	case ReasonUntraceableOutput:
		return "returned through " + d + ", so the proxy cannot tell it is this column and decrypt it; return the column itself"
	case ReasonPlaintextWrite:
		return "the value written comes from " + d + " and would be stored unencrypted; only parameters, literals, NULL, DEFAULT and values of the same column can be written"
	case ReasonCrossDomainCopy:
		return "the value written comes from column " + d + ", whose ciphertext would not be valid here (different key, associated data or mode)"
	case ReasonCast:
		return d + " cannot carry an encrypted value (only text and varchar without a length keep it intact)"
	case ReasonUnencryptableValue:
		return d + " cannot be encrypted; write the value as a string literal or a parameter"
	case ReasonParamConflict:
		return d
	case ReasonAmbiguousColumn:
		return "cannot tell whether " + d + " refers to this column; qualify it with its table name"
	case ReasonColumnsUnknown:
		return "the column list of " + d + " is unknown; name the columns explicitly"
	case ReasonCopyServerSide:
		return "COPY FROM a server file or program bypasses the proxy, so values would be stored unencrypted; use COPY FROM STDIN"
	case ReasonOpaqueCode:
		return d + "; its statements run inside PostgreSQL, where the proxy cannot encrypt: create it directly on the server"
	case ReasonUnresolvedRelation:
		return "relation " + d + " has the name of a policy table but could not be resolved"
	case ReasonCreateAs:
		return d + " would store its rows unencrypted; create the table, then INSERT through the proxy"
	case ReasonResolutionChange:
		return d + "; send statements that change the search_path, role, settings or schema (SET, set_config, pg_settings, DDL, DISCARD, COMMIT, ROLLBACK) as queries of their own, so the proxy reads the catalog again after them"
	case ReasonSchemaChange:
		return d
	case ReasonCopyOut:
		return "its envelope would be stored in a column outside the policy, where it can never be decrypted and reaches clients as ciphertext; add that column to the policy with the same associated_data, or copy the values through the application"
	case ReasonWholeTable:
		if strings.HasPrefix(d, "dblink") {
			return "function " + d + "() runs SQL on another connection, which bypasses the proxy's encryption; send the statements through the proxy"
		}
		return "function " + d + "() reads whole tables inside PostgreSQL and would return their encrypted columns as envelopes; select the columns instead"
	default:
		return "unsupported use (" + r.Reason.String() + ")"
	}
}

// NoteKind classifies a Note.
type NoteKind uint8

const (
	// NoteView: the statement reads or writes a view. Analysis cannot see
	// whether the view exposes policy columns; its results carry the view's
	// OID, not the table's, so the proxy will not decrypt them.
	NoteView NoteKind = iota + 1
	// NoteUnknownRelation: a relation name did not resolve.
	NoteUnknownRelation
	// NoteOtherRelation: a materialized view, foreign table or other
	// relation that analysis treats as opaque.
	NoteOtherRelation
)

// String returns the kind's name.
func (k NoteKind) String() string {
	switch k {
	case NoteView:
		return "view"
	case NoteUnknownRelation:
		return "unknown_relation"
	case NoteOtherRelation:
		return "other_relation"
	default:
		return fmt.Sprintf("note(%d)", uint8(k))
	}
}

// Note is something the proxy may want to act on that is not by itself a
// reason to reject: relations analysis cannot see into.
type Note struct {
	Kind     NoteKind
	Relation RelName
	// Write is true when the relation is the target of INSERT, UPDATE,
	// DELETE, MERGE or COPY FROM.
	Write     bool
	Statement int
}
