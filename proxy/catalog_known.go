package proxy

import (
	"strconv"
	"strings"
	"sync"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// knownTables remembers the OIDs of the policy tables the proxy has seen,
// per database, so that one renamed or moved by another connection is
// recognised by its OID and refused rather than served as a plain table.
type knownTables struct {
	mu   sync.Mutex
	oids map[string]map[uint32]string // database -> OID -> schema.name
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
