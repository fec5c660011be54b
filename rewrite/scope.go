package rewrite

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// relOut is the output of a query, subquery, CTE or VALUES list.
type relOut struct {
	cols []outCol
	// open is true when the list is incomplete: a * over a relation whose
	// column list is unknown. Policy columns are always listed, but
	// positions are not reliable.
	open bool
}

type outCol struct {
	name string
	v    val
	// figured: the name is the proxy's reading of PostgreSQL's
	// FigureColname for an unaliased expression; a reference by a name
	// not found may mean this column (see unknownColumn).
	figured bool
	// was is the name before a column alias renamed it.
	was string
}

type itemKind uint8

const (
	itemTable   itemKind = iota // a relation (table, view, ...)
	itemDerived                 // subquery, CTE reference, VALUES, function, EXCLUDED
	itemMerged                  // the merged columns of JOIN ... USING
)

// item is one FROM item visible to column references.
type item struct {
	kind    itemKind
	refname string // qualifier that reaches it ("" for none)
	aliased bool
	written RelName  // for tables: the name as written
	rel     Relation // for tables: what it resolved to
	ptable  *policyTable
	desc    string          // for messages: "table public.orders", "subquery s"
	out     relOut          // for derived and merged items
	hidden  map[string]bool // columns merged by USING: not reachable unqualified
	// joinAlias marks the item of (a JOIN b) AS j: its columns are those of
	// the joined items, which stay listed themselves.
	joinAlias bool
}

type lookup uint8

const (
	notFound lookup = iota
	found
	maybe
)

// column finds name among the item's columns.
func (it *item) column(name string) (val, lookup) {
	switch it.kind {
	case itemTable:
		if it.ptable != nil {
			if c := it.ptable.cols[name]; c != nil {
				return colVal(c), found
			}
		}
		pv := plainVal("column " + name + " of " + it.desc)
		if it.rel.Columns != nil {
			for _, c := range it.rel.Columns {
				if c == name {
					return pv, found
				}
			}
			return val{}, notFound
		}
		return pv, maybe
	default:
		var hits []val
		for _, oc := range it.out.cols {
			if oc.name == name {
				hits = append(hits, oc.v)
			}
		}
		switch len(hits) {
		case 0:
		case 1:
			return hits[0], found
		default:
			// PostgreSQL refuses the reference as ambiguous; analysis
			// takes every candidate, so a policy column among them is
			// not compared with a plaintext value.
			return mergeVals("an ambiguous column", hits...), found
		}
		if it.out.open {
			return plainVal("column " + name + " of " + it.desc), maybe
		}
		return val{}, notFound
	}
}

// star returns the item's columns for * (open when incomplete).
func (it *item) star() relOut {
	if it.kind != itemTable {
		return it.out
	}
	var out relOut
	if it.rel.Columns == nil {
		out.open = true
		if it.ptable != nil {
			for _, c := range it.ptable.list {
				out.cols = append(out.cols, outCol{name: c.name, v: colVal(c)})
			}
		}
		return out
	}
	for _, name := range it.rel.Columns {
		v, _ := it.column(name)
		out.cols = append(out.cols, outCol{name: name, v: v})
	}
	return out
}

// cteDef is a WITH query visible by name.
type cteDef struct {
	name string
	out  relOut
}

// scope is one level of name visibility: the FROM items of a query level
// and the CTEs declared there.
type scope struct {
	parent *scope
	items  []*item
	ctes   map[string]*cteDef
}

func newScope(parent *scope) *scope { return &scope{parent: parent} }

func (s *scope) cte(name string) *cteDef {
	for ; s != nil; s = s.parent {
		if d := s.ctes[name]; d != nil {
			return d
		}
	}
	return nil
}

// matches reports whether qualifier q (one to three names: [schema.]table
// or an alias) designates the item.
func (it *item) matches(q []string) bool {
	switch len(q) {
	case 1:
		return it.refname != "" && it.refname == q[0]
	case 2, 3:
		if it.kind != itemTable || it.aliased {
			return false
		}
		s, t := q[len(q)-2], q[len(q)-1]
		return it.written.Name == t && (it.written.Schema == s || (it.written.Schema == "" && it.rel.Schema == s))
	}
	return false
}

// resolveColumn finds what a column reference denotes. fields are the
// reference's names; a trailing "*" is handled by the caller.
func (p *planner) resolveColumn(sc *scope, fields []string, loc int32) val {
	name := fields[len(fields)-1]
	if len(fields) == 1 {
		return p.resolveUnqualified(sc, name, loc)
	}
	q := fields[:len(fields)-1]
	if len(q) > 3 {
		q = q[len(q)-3:]
	}
	for s := sc; s != nil; s = s.parent {
		for _, it := range s.items {
			if it.matches(q) {
				v, st := it.column(name)
				if st == notFound {
					// table.composite_column.field, or an error the server
					// will report: nothing analysis can use, unless the
					// item's own unaliased expressions may be named so.
					return p.unknownColumn(&scope{items: []*item{it}}, name, loc)
				}
				return v
			}
		}
	}
	// "a.b" where a is a column of composite type, not a table: a field
	// selection, which is an operator applied to the column.
	if len(fields) == 2 {
		v := p.resolveUnqualified(sc, fields[0], loc)
		p.useOpaque(v, ReasonOperator, "field selection", loc)
		return plainVal("a field of a composite column")
	}
	return plainVal("an unknown column")
}

func (p *planner) resolveUnqualified(sc *scope, name string, loc int32) val {
	for s := sc; s != nil; s = s.parent {
		var hit *val
		var isMaybe bool
		for _, it := range s.items {
			if it.hidden[name] {
				continue
			}
			v, st := it.column(name)
			switch st {
			case found:
				if hit == nil || (len(v.cols) > 0 && len(hit.cols) == 0) {
					hit = &v
				}
			case maybe:
				isMaybe = true
			}
		}
		if hit != nil {
			// If a "maybe" relation also had the column the server would
			// report an ambiguous reference, so the found one is it.
			return *hit
		}
		if isMaybe {
			// The name may be a column of a relation whose columns are
			// unknown here, or belong to an outer level. If an outer level
			// has a policy column of that name, analysis cannot tell.
			for o := s.parent; o != nil; o = o.parent {
				for _, it := range o.items {
					if it.hidden[name] {
						continue
					}
					if v, st := it.column(name); st == found && len(v.cols) > 0 {
						p.reject(ReasonAmbiguousColumn, v.cols[0], "the unqualified name "+quoteIdent(name), true, loc)
						return plainVal("an ambiguous column reference")
					}
				}
			}
			return plainVal("column " + name)
		}
	}
	// Not a column: a whole-row reference to a FROM item (SELECT c FROM t c).
	if findItem(sc, []string{name}) != nil {
		return p.wholeRow(sc, []string{name}, loc)
	}
	return p.unknownColumn(sc, name, loc)
}

// unknownColumn is a reference to a name no visible item has. PostgreSQL
// would refuse it, unless it names an unaliased expression whose name the
// proxy figured differently: if such an expression carries a policy
// column, analysis cannot tell, and refuses.
func (p *planner) unknownColumn(sc *scope, name string, loc int32) val {
	for s := sc; s != nil; s = s.parent {
		for _, it := range s.items {
			if it.kind == itemTable {
				continue
			}
			for _, oc := range it.out.cols {
				if oc.was == name && oc.v.hasPolicy() {
					// PostgreSQL refuses it (42703), but would log the
					// statement with the value compared as written.
					p.reject(ReasonAmbiguousColumn, policyColOf(oc.v), "the name "+quoteIdent(name)+" (a column alias renamed it in "+it.desc+")", false, loc)
					return plainVal("a renamed column")
				}
				if oc.figured && oc.v.hasPolicy() {
					p.reject(ReasonAmbiguousColumn, policyColOf(oc.v), "the name "+quoteIdent(name)+" (an unaliased expression of "+it.desc+" may be named so; give it an alias)", true, loc)
					return plainVal("an ambiguous column reference")
				}
			}
		}
	}
	return plainVal("an unknown column")
}

// rangeVarItem turns a FROM relation name into an item: a CTE reference when
// unqualified and a CTE of that name is visible, else a resolved relation.
func (p *planner) rangeVarItem(sc *scope, rv *pg_query.RangeVar, write bool) *item {
	alias := rv.GetAlias()
	if rv.Schemaname == "" && !write {
		if d := sc.cte(rv.Relname); d != nil {
			it := &item{kind: itemDerived, refname: rv.Relname, desc: "WITH query " + rv.Relname, out: d.out}
			if alias != nil {
				it.refname, it.aliased = alias.Aliasname, true
				it.out = renameOut(it.out, alias.Colnames)
			}
			return it
		}
	}
	n := RelName{Schema: rv.Schemaname, Name: rv.Relname}
	if _, watched := p.az.names[n.Name]; watched && p.resolutionChanged {
		p.reject(ReasonResolutionChange, nil, "relation "+quoteIdent(n.String())+" is named after a statement of the same query that can change what it refers to", false, rv.Location)
	}
	rel := p.rels[n]
	if _, watched := p.az.names[n.Name]; watched && n.Schema == "" && rel.Shadowed && rel.Kind != RelUnknown && rel.Schema != "" && rel.Name == n.Name {
		p.qualify(rv, rel.Schema)
	}
	it := &item{kind: itemTable, refname: rv.Relname, written: n, rel: rel}
	switch rel.Kind {
	case RelTable:
		it.ptable = p.pol.table(rel.Schema, rel.Name)
		it.desc = "table " + rel.Schema + "." + rel.Name
	case RelView:
		it.desc = "view " + n.String()
		p.note(NoteView, n, write)
	case RelOther:
		it.desc = "relation " + n.String()
		p.note(NoteOtherRelation, n, write)
	default:
		it.desc = "relation " + n.String()
		p.note(NoteUnknownRelation, n, write)
		if _, watched := p.az.names[n.Name]; watched {
			// Fail closed: the server will reject the statement if the
			// relation really does not exist, but if the resolver merely
			// failed, a policy table would be treated as a plain one.
			p.reject(ReasonUnresolvedRelation, nil, quoteIdent(n.String()), !write, rv.Location)
		}
	}
	if alias != nil {
		it.refname, it.aliased = alias.Aliasname, true
		if len(alias.Colnames) > 0 {
			// Column aliases rename the relation's columns by position:
			// turn it into a derived item.
			out := it.star()
			it = &item{kind: itemDerived, refname: alias.Aliasname, aliased: true, desc: it.desc, out: renameOut(out, alias.Colnames), written: n, rel: rel, ptable: it.ptable}
			if out.open && it.ptable != nil {
				p.reject(ReasonColumnsUnknown, nil, it.desc+" (renamed by column aliases)", !write, rv.Location)
			}
		}
	}
	return it
}

// renameOut applies column aliases to the first columns of out.
func renameOut(out relOut, names []*pg_query.Node) relOut {
	if len(names) == 0 {
		return out
	}
	cols := append([]outCol(nil), out.cols...)
	for i, n := range names {
		if i >= len(cols) {
			cols = append(cols, outCol{name: strVal(n), v: plainVal("column " + strVal(n))})
			continue
		}
		cols[i].was, cols[i].name, cols[i].figured = cols[i].name, strVal(n), false
	}
	return relOut{cols: cols, open: out.open}
}

// policyColOf returns the first policy column v carries, or nil.
func policyColOf(v val) *Column {
	if len(v.cols) > 0 {
		return v.cols[0]
	}
	for _, r := range v.row {
		if c := policyColOf(r); c != nil {
			return c
		}
	}
	return nil
}
