package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// ColumnSpec is one policy column as the configuration gives it.
type ColumnSpec struct {
	Schema, Table, Column string
	Deterministic         bool
	AssociatedData        []byte // nil for none
}

// Policy is what a proxy encrypts: the analyzer shared by all sessions and
// one cipher per policy column. Build it once with NewPolicy.
type Policy struct {
	analyzer   *rewrite.Analyzer
	cols       []*policyColumn // by rewrite.Column.Index()
	tableNames []string        // bare names of policy tables, for the catalog query
	tables     [][2]string     // schema and name of each policy table
	allowReads bool
	known      knownTables // policy tables seen, by OID (see catalog.go)
	shared     sharedCatalogs
	specs      []ColumnSpec
	// keysGen counts SetKeys calls: a statement whose text holds literals
	// encrypted under an older keyring must be prepared again.
	keysGen atomic.Uint64
}

// policyColumn is one column's cipher and per-column metrics.
type policyColumn struct {
	rc *rewrite.Column
	// c is the column's cipher under the current keys: SetKeys replaces
	// it for every session at once.
	c          atomic.Pointer[cipher.Column]
	name       string // schema.table.column, for messages
	encrypted  prometheus.Counter
	decrypted  prometheus.Counter
	plaintexts prometheus.Counter
}

// NewPolicy builds the policy for specs with keys from kr. allowReads is
// on_unsupported: allow.
func NewPolicy(specs []ColumnSpec, kr *cipher.Keyring, allowReads bool, m *metrics.Metrics) (*Policy, error) {
	if len(specs) == 0 {
		return nil, errors.New("proxy: a policy needs at least one column")
	}
	rs := make([]rewrite.ColumnSpec, len(specs))
	for i, s := range specs {
		mode := rewrite.Randomized
		if s.Deterministic {
			mode = rewrite.Deterministic
		}
		rs[i] = rewrite.ColumnSpec{Schema: s.Schema, Table: s.Table, Column: s.Column, Mode: mode, AssociatedData: string(s.AssociatedData)}
	}
	rp, err := rewrite.NewPolicy(rs)
	if err != nil {
		return nil, err
	}
	p := &Policy{analyzer: rewrite.NewAnalyzer(rp, rewrite.Options{}), allowReads: allowReads, specs: slices.Clone(specs)}
	seen := map[string]bool{}
	for _, rc := range rp.Columns() {
		s := specs[rc.Index()]
		mode := cipher.Randomized
		if s.Deterministic {
			mode = cipher.Deterministic
		}
		name := rc.String()
		cc, err := kr.Column(name, mode, s.AssociatedData)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		pc := &policyColumn{rc: rc, name: name}
		pc.c.Store(cc)
		if m != nil {
			pc.encrypted = m.FieldsEncrypted.WithLabelValues(rc.Schema()+"."+rc.Table(), rc.Name())
			pc.decrypted = m.FieldsDecrypted.WithLabelValues(rc.Schema()+"."+rc.Table(), rc.Name())
			pc.plaintexts = m.PlaintextValues.WithLabelValues(rc.Schema()+"."+rc.Table(), rc.Name())
		}
		p.cols = append(p.cols, pc)
		if !seen[rc.Table()] {
			seen[rc.Table()] = true
			p.tableNames = append(p.tableNames, rc.Table())
		}
		if !seen[rc.Schema()+"."+rc.Table()] {
			seen[rc.Schema()+"."+rc.Table()] = true
			p.tables = append(p.tables, [2]string{rc.Schema(), rc.Table()})
		}
	}
	if m != nil {
		err := m.WatchAnalysisCache(func() (hits, misses uint64) {
			st := p.analyzer.CacheStats()
			return st.Hits, st.Misses
		})
		if err != nil {
			return nil, fmt.Errorf("registering cache metrics: %w", err)
		}
	}
	return p, nil
}

func (p *Policy) column(rc *rewrite.Column) *policyColumn { return p.cols[rc.Index()] }

// cipher returns the column's cipher under the current keys.
func (pc *policyColumn) cipher() *cipher.Column { return pc.c.Load() }

// SameColumns reports whether specs and allowReads describe this policy's
// columns exactly (in the same order): a configuration that differs from
// it only in its keys can then be applied with SetKeys.
func (p *Policy) SameColumns(specs []ColumnSpec, allowReads bool) bool {
	if allowReads != p.allowReads || len(specs) != len(p.specs) {
		return false
	}
	for i, s := range specs {
		o := p.specs[i]
		if s.Schema != o.Schema || s.Table != o.Table || s.Column != o.Column || s.Deterministic != o.Deterministic ||
			!bytes.Equal(s.AssociatedData, o.AssociatedData) || (s.AssociatedData == nil) != (o.AssociatedData == nil) {
			return false
		}
	}
	return true
}

// SetKeys switches every column to the keys of kr, for open sessions as
// well as new ones, from their next statement: a key added, the active
// version changed or a retired version removed. Values already stored
// stay readable as long as kr still holds their version. On error the
// previous keys stay in force.
func (p *Policy) SetKeys(kr *cipher.Keyring) error {
	next := make([]*cipher.Column, len(p.cols))
	for i, pc := range p.cols {
		s := p.specs[pc.rc.Index()]
		mode := cipher.Randomized
		if s.Deterministic {
			mode = cipher.Deterministic
		}
		cc, err := kr.Column(pc.name, mode, s.AssociatedData)
		if err != nil {
			return fmt.Errorf("column %s: %w", pc.name, err)
		}
		next[i] = cc
	}
	for i, pc := range p.cols {
		pc.c.Store(next[i])
	}
	p.keysGen.Add(1)
	return nil
}
