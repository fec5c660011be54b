package proxy

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// knownTables remembers the OIDs of the policy tables the proxy has seen,
// per database, so that one renamed or moved by another connection is
// recognised by its OID and refused rather than served as a plain table.
// It also remembers where their policy columns were (OID and attnum): the
// rows of a cursor opened before a rename or drop still carry those, and
// a policy column renamed with another added under its name is still
// recognised.
type knownTables struct {
	mu   sync.Mutex
	oids map[string]map[uint32]string // database -> OID -> schema.name
	cols map[string]map[colKey]*policyColumn
}

// addColumn remembers that key is policy column pc in db, unless it
// already knows key as another: the first is what values there were
// written as.
func (k *knownTables) addColumn(db string, key colKey, pc *policyColumn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cols == nil {
		k.cols = map[string]map[colKey]*policyColumn{}
	}
	if k.cols[db] == nil {
		k.cols[db] = map[colKey]*policyColumn{}
	}
	if k.cols[db][key] == nil {
		k.cols[db][key] = pc
	}
}

// moved returns the policy columns known in db whose place is not that
// column in current (a catalog's cols): renamed, dropped, moved or
// swapped with another since; nil if none.
func (k *knownTables) moved(db string, current map[colKey]*policyColumn) map[colKey]*policyColumn {
	k.mu.Lock()
	defer k.mu.Unlock()
	var old map[colKey]*policyColumn
	for key, pc := range k.cols[db] {
		if current[key] != pc {
			if old == nil {
				old = map[colKey]*policyColumn{}
			}
			old[key] = pc
		}
	}
	return old
}

func (k *knownTables) add(db string, oid uint32, name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.oids == nil {
		k.oids = map[string]map[uint32]string{}
	}
	if k.oids[db] == nil {
		k.oids[db] = map[uint32]string{}
	}
	k.oids[db][oid] = name
}

func (k *knownTables) name(db string, oid uint32) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n, ok := k.oids[db][oid]
	return n, ok
}

// predicate returns the catalog query's condition for the known OIDs,
// each under its database's name; "" when none are known.
func (k *knownTables) predicate() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var b strings.Builder
	for db, m := range k.oids {
		if len(m) == 0 {
			continue
		}
		b.WriteString(" OR (pg_catalog.current_database() = " + rewrite.QuoteLiteral(db) + " AND c.oid IN (")
		first := true
		for oid := range m {
			if !first {
				b.WriteString(", ")
			}
			first = false
			b.WriteString(strconv.FormatUint(uint64(oid), 10))
		}
		b.WriteString("))")
	}
	return b.String()
}

// columnGone returns the name of a policy column of policy table r that
// is missing, or that the proxy knew at an attnum that now holds another
// column (renamed, or swapped with another policy column); "" when none
// is.
func columnGone(p *Policy, c *catalog, r *relation) string {
	for _, spec := range p.specs {
		if p.analyzer.Policy().Lookup(r.schema, r.name, spec.Column) != nil && !slices.Contains(r.columns, spec.Column) {
			return spec.Column
		}
	}
	for _, attnum := range r.attnums {
		if pc := c.oldCols[colKey{r.oid, attnum}]; pc != nil {
			return pc.rc.Name()
		}
	}
	return ""
}
