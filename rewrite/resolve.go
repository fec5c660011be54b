package rewrite

import "slices"

// RelName is a relation name as a statement writes it: Schema is empty when
// the name is unqualified (the proxy resolves it with the session's
// search_path). Identifiers are as PostgreSQL folds them.
type RelName struct {
	Schema string
	Name   string
}

// String returns the name as written, unquoted.
func (n RelName) String() string {
	if n.Schema == "" {
		return n.Name
	}
	return n.Schema + "." + n.Name
}

// RelKind is what a relation name resolved to.
type RelKind uint8

const (
	// RelUnknown: no such relation is visible (or the resolver does not
	// know); the server will most likely reject the statement.
	RelUnknown RelKind = iota
	// RelTable is an ordinary or partitioned table.
	RelTable
	// RelView is a view. Analysis cannot see through it.
	RelView
	// RelOther is anything else that can appear in FROM: materialized
	// view, foreign table, sequence.
	RelOther
)

// String returns the kind's name.
func (k RelKind) String() string {
	switch k {
	case RelTable:
		return "table"
	case RelView:
		return "view"
	case RelOther:
		return "other relation"
	default:
		return "unknown relation"
	}
}

// Relation is what a RelName resolved to in the session.
type Relation struct {
	Kind RelKind
	// Schema and Name are the resolved relation's identity. For a
	// partition or inheritance child of a policy table the resolver may
	// return the policy table's identity, so that it is treated as one.
	Schema, Name string
	// Columns are the relation's column names in attnum order, dropped
	// columns left out, or nil when the resolver does not provide them.
	// They are needed for INSERT without a column list, COPY without a
	// column list and positional references (SELECT *, ORDER BY 1) on
	// policy tables, and they let analysis tell which relation an
	// unqualified column name belongs to. Providing them for every table is
	// recommended.
	Columns []string
	// Generated marks the Columns that are generated (parallel to Columns;
	// nil when none are or it is not known). COPY without a column list
	// leaves them out.
	Generated []bool
	// Shadowed is true when relations of this name exist in more than one
	// schema, so that another search_path could find another one. The
	// proxy then writes the schema into the statement (Plan.Qualifications).
	Shadowed bool
}

func (r Relation) equal(o Relation) bool {
	return r.Kind == o.Kind && r.Schema == o.Schema && r.Name == o.Name && r.Shadowed == o.Shadowed &&
		(r.Columns == nil) == (o.Columns == nil) && slices.Equal(r.Columns, o.Columns) &&
		slices.Equal(r.Generated, o.Generated)
}

// Resolver maps a relation name to what it denotes in the session. It is
// called once per distinct name of Analysis.Relations each time
// Analysis.Plan runs, and must be cheap and side-effect free.
type Resolver func(RelName) Relation

// MapResolver returns a Resolver backed by m; names missing from m resolve
// to RelUnknown.
func MapResolver(m map[RelName]Relation) Resolver {
	return func(n RelName) Relation { return m[n] }
}
