package rewrite

import (
	"errors"
	"fmt"
)

// Mode is how a policy column is encrypted, as far as analysis cares.
type Mode uint8

const (
	// Randomized encryption: equal plaintexts give different ciphertexts, so
	// the server can store and return the column but never compare it.
	Randomized Mode = iota
	// Deterministic encryption (search: equality): equal plaintexts under the
	// same key and associated data give equal ciphertexts, so = and <> work.
	Deterministic
)

// String returns "randomized" or "deterministic".
func (m Mode) String() string {
	switch m {
	case Randomized:
		return "randomized"
	case Deterministic:
		return "deterministic"
	default:
		return fmt.Sprintf("mode(%d)", uint8(m))
	}
}

// ColumnSpec describes one policy column in plain data; the proxy builds it
// from its configuration.
//
// Names are identifiers as PostgreSQL stores them: unquoted names folded to
// lower case, quoted names exactly as written. An empty Schema means
// "public".
type ColumnSpec struct {
	Schema string
	Table  string
	Column string
	Mode   Mode
	// AssociatedData is the associated data the cipher binds values to (for
	// example "public.clients.email", or "" for none). Together with Key it
	// decides which columns share a ciphertext domain: a value may be copied
	// between two columns, or two deterministic columns compared, only when
	// both are equal.
	AssociatedData string
	// Key names the key material ("" for the proxy's single keyring).
	Key string
}

// Column is a policy column. Columns are created by NewPolicy, compared by
// pointer and immutable.
type Column struct {
	schema, table, name string
	mode                Mode
	ad, key             string
	index               int
	qualified           string
}

// Schema returns the column's schema.
func (c *Column) Schema() string { return c.schema }

// Table returns the column's table name.
func (c *Column) Table() string { return c.table }

// Name returns the column name.
func (c *Column) Name() string { return c.name }

// Mode returns the column's encryption mode.
func (c *Column) Mode() Mode { return c.mode }

// AssociatedData returns the associated data given in its ColumnSpec.
func (c *Column) AssociatedData() string { return c.ad }

// Key returns the key name given in its ColumnSpec.
func (c *Column) Key() string { return c.key }

// Index returns the position of the column's spec in the slice given to
// NewPolicy, so callers can keep per-column state (cipher, metrics) in a
// parallel slice.
func (c *Column) Index() int { return c.index }

// String returns "schema.table.column" (identifiers unquoted).
func (c *Column) String() string {
	if c == nil {
		return "<nil>"
	}
	return c.qualified
}

// sameDomain reports whether ciphertexts of a and b are interchangeable:
// same key and same associated data.
func sameDomain(a, b *Column) bool {
	return a == b || (a.key == b.key && a.ad == b.ad)
}

// comparable reports whether a = b works on ciphertext: both deterministic
// in the same domain.
func comparableCols(a, b *Column) bool {
	return a.mode == Deterministic && b.mode == Deterministic && sameDomain(a, b)
}

// copyable reports whether a stored value of src may be written into dst
// unchanged: it decrypts there (same domain), and a deterministic dst gets
// only deterministic ciphertext (else equality search on dst would miss it).
func copyable(src, dst *Column) bool {
	if src == dst {
		return true
	}
	return sameDomain(src, dst) && (dst.mode == Randomized || src.mode == Deterministic)
}

// encryptsAlike reports whether one plaintext encrypted for a is also right
// for b (so one parameter may serve both).
func encryptsAlike(a, b *Column) bool {
	return a == b || (sameDomain(a, b) && a.mode == b.mode)
}

type tableKey struct{ schema, table string }

// policyTable is one table of the policy and its columns by name.
type policyTable struct {
	schema, name string
	cols         map[string]*Column
	list         []*Column // in spec order
}

// Policy is the set of policy columns. It is immutable and safe for
// concurrent use.
type Policy struct {
	cols   []*Column
	tables map[tableKey]*policyTable
	names  map[string]struct{} // bare table names
}

// ErrPolicy reports an invalid policy.
var ErrPolicy = errors.New("rewrite: invalid policy")

// NewPolicy builds a Policy from column specs. It rejects empty names,
// unknown modes and duplicate columns.
func NewPolicy(specs []ColumnSpec) (*Policy, error) {
	p := &Policy{
		tables: make(map[tableKey]*policyTable),
		names:  make(map[string]struct{}),
	}
	for i, s := range specs {
		if s.Schema == "" {
			s.Schema = "public"
		}
		if s.Table == "" || s.Column == "" {
			return nil, fmt.Errorf("%w: column %d: table and column names are required", ErrPolicy, i)
		}
		if s.Mode != Randomized && s.Mode != Deterministic {
			return nil, fmt.Errorf("%w: column %s.%s.%s: unknown mode %d", ErrPolicy, s.Schema, s.Table, s.Column, s.Mode)
		}
		k := tableKey{s.Schema, s.Table}
		t := p.tables[k]
		if t == nil {
			t = &policyTable{schema: s.Schema, name: s.Table, cols: make(map[string]*Column)}
			p.tables[k] = t
			p.names[s.Table] = struct{}{}
		}
		if _, dup := t.cols[s.Column]; dup {
			return nil, fmt.Errorf("%w: column %s.%s.%s is listed twice", ErrPolicy, s.Schema, s.Table, s.Column)
		}
		c := &Column{
			schema: s.Schema, table: s.Table, name: s.Column,
			mode: s.Mode, ad: s.AssociatedData, key: s.Key, index: i,
			qualified: s.Schema + "." + s.Table + "." + s.Column,
		}
		t.cols[s.Column] = c
		t.list = append(t.list, c)
		p.cols = append(p.cols, c)
	}
	return p, nil
}

// Columns returns the policy columns in the order of their specs.
func (p *Policy) Columns() []*Column { return append([]*Column(nil), p.cols...) }

// Lookup returns the policy column schema.table.column, or nil.
func (p *Policy) Lookup(schema, table, column string) *Column {
	if t := p.tables[tableKey{schema, table}]; t != nil {
		return t.cols[column]
	}
	return nil
}

// HasTable reports whether schema.table has policy columns.
func (p *Policy) HasTable(schema, table string) bool {
	return p.tables[tableKey{schema, table}] != nil
}

func (p *Policy) table(schema, table string) *policyTable {
	return p.tables[tableKey{schema, table}]
}
