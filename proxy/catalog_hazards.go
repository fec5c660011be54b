package proxy

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/migrate"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// Schema facts that make writes to (or comparisons with) a policy column
// wrong without an error from PostgreSQL: read with the catalog, checked
// against each statement's plan.

// readHazards reads the schema facts of policy columns: a length limit
// (varchar(n), char(n)), and what makes a write to the column wrong
// without an error from PostgreSQL: a domain CHECK (evaluated on the
// envelope), a unique index or exclusion constraint on a randomized column
// (equal values never collide), an expression index, partial-index
// predicate or generated column computed from it (on ciphertext), a table
// CHECK over it, a type that cannot hold the envelope as text, and, for a
// deterministic column, equality other than byte equality (which makes
// comparisons wrong too). Foreign keys are read by readLinks.
func (c *catalog) readHazards(p *Policy, rows [][][]byte) error {
	c.maxLen = map[*rewrite.Column]int{}
	c.hazards = map[*rewrite.Column]string{}
	for _, row := range rows {
		if len(row) != 14 || slices.ContainsFunc(row, func(b []byte) bool { return b == nil }) {
			return fmt.Errorf("catalog query returned a malformed column row")
		}
		rc := p.analyzer.Policy().Lookup(string(row[0]), string(row[1]), string(row[2]))
		if rc == nil {
			continue
		}
		if ids, ok := migrate.GuardKeyIDs(string(row[9])); ok {
			if c.guarded == nil {
				c.guarded = map[*rewrite.Column]map[string]bool{}
			}
			set := map[string]bool{}
			for _, id := range ids {
				set[id] = true
			}
			c.guarded[rc] = set
		}
		if n, err := strconv.Atoi(string(row[3])); err == nil && n > 0 {
			c.maxLen[rc] = n
		}
		typ := string(row[8])
		if string(row[10]) != "t" {
			if c.notText == nil {
				c.notText = map[*rewrite.Column]string{}
			}
			c.notText[rc] = typ
		}
		switch {
		case string(row[12]) == "t" && rc.Mode() == rewrite.Deterministic:
			c.hazards[rc] = "its collation or type (" + typ + ") compares values other than byte for byte (case-insensitive, say), which envelopes cannot; use text with a deterministic collation"
			if c.anyUse == nil {
				c.anyUse = map[*rewrite.Column]bool{}
			}
			c.anyUse[rc] = true
		case string(row[10]) != "t":
			c.hazards[rc] = "its type " + typ + " cannot hold the envelope as text; change it back to text"
		case string(row[4]) == "t":
			c.hazards[rc] = "its type " + typ + " is a domain with a CHECK constraint, which PostgreSQL would evaluate on the envelope; use text (or a domain without CHECK)"
		case string(row[5]) == "t" && rc.Mode() == rewrite.Randomized:
			c.hazards[rc] = "a unique index or constraint covers it, but randomized envelopes of equal values differ, so it no longer enforces anything; drop it or use search: equality"
		case string(row[6]) == "t":
			c.hazards[rc] = "an expression index is computed from it, on ciphertext; drop the index"
		case string(row[7]) == "t":
			c.hazards[rc] = "a generated column is computed from it, on ciphertext; drop the generated column"
		case string(row[13]) == "t" && rc.Mode() == rewrite.Deterministic:
			c.hazards[rc] = "a CHECK constraint of the table compares it with a value not encrypted (made on the server), which PostgreSQL evaluates against the envelope; make it through the proxy, which encrypts its values, or drop it"
		case string(row[11]) == "t" && rc.Mode() == rewrite.Randomized:
			c.hazards[rc] = "a CHECK constraint of the table reads it, which PostgreSQL evaluates on the envelope, so it no longer checks anything; drop it (IS NOT NULL is fine)"
		}
	}
	return nil
}

// searchVersions returns in buf the key versions (indices for
// cipher.Column.EqualityEnvelope, the active one first) a comparison with
// column rc must cover: every version of c, except those a validated
// guard constraint rules out, as it does after a rotation (NarrowGuards).
func (c *catalog) searchVersions(rc *rewrite.Column, cc *cipher.Column, buf []int) []int {
	buf = buf[:0]
	var ids map[string]bool
	if c != nil {
		ids = c.guarded[rc]
	}
	for k := range cc.KeyVersions() {
		if k == 0 || ids == nil || ids[cc.KeyVersionID(k)] {
			buf = append(buf, k)
		}
	}
	return buf
}

// hazardError refuses a write to a policy column whose schema makes it
// wrong (catalog.hazards).
type hazardError struct {
	col     *rewrite.Column
	what    string
	compare bool // comparisons are refused too
}

func (e *hazardError) Error() string {
	what := "writes to it are"
	if e.compare {
		what = "writes to it and comparisons with it are"
	}
	return "column " + e.col.String() + ": " + e.what + "; " + what + " refused until the schema is fixed (pgcrypt-proxy check lists such problems)"
}

// checkWrites returns a *hazardError for the first policy column p writes
// that has a hazard.
func (c *catalog) checkWrites(p *rewrite.Plan) error {
	if len(c.hazards) == 0 {
		return nil
	}
	check := func(col *rewrite.Column, use rewrite.Use) error {
		if h, ok := c.hazards[col]; ok && (use&rewrite.UseWrite != 0 || c.anyUse[col]) {
			return &hazardError{col: col, what: h, compare: c.anyUse[col]}
		}
		return nil
	}
	for _, l := range p.Literals() {
		if err := check(l.Column, l.Use); err != nil {
			return err
		}
	}
	for _, prm := range p.Params() {
		if err := check(prm.Column, prm.Use); err != nil {
			return err
		}
	}
	for _, st := range p.Statements() {
		for _, prm := range st.Prepared {
			if err := check(prm.Column, prm.Use); err != nil {
				return err
			}
		}
		if st.Copy != nil && st.Copy.From {
			for _, col := range st.Copy.Columns {
				if col != nil {
					if err := check(col, rewrite.UseWrite); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}
