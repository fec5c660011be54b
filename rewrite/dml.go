package rewrite

import (
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// targetColumns returns, for each value position of an INSERT (explicit
// column list or the table's columns), the policy column it fills or nil.
// ok is false when the table has policy columns but its column order is
// unknown.
func (p *planner) targetColumns(target *item, cols []*pg_query.Node) (tcols []*Column, ok bool) {
	if len(cols) > 0 {
		for _, n := range cols {
			rt := n.GetResTarget()
			if rt == nil {
				tcols = append(tcols, nil)
				continue
			}
			c := target.policyCol(rt.Name)
			if c != nil && len(rt.Indirection) > 0 {
				p.reject(ReasonPlaintextWrite, c, "an assignment to an element or field of the column", false, rt.Location)
				c = nil
			}
			p.knownColumn(target, rt.Name, rt.Location)
			tcols = append(tcols, c)
		}
		return tcols, true
	}
	if target.ptable == nil {
		return nil, true
	}
	if target.rel.Columns == nil {
		return nil, false
	}
	for _, name := range target.rel.Columns {
		tcols = append(tcols, target.ptable.cols[name])
	}
	return tcols, true
}

// knownColumn refuses a write to a column of a policy table that the
// resolver does not list: the table changed since its columns were read
// (a policy column renamed or dropped and another added, perhaps by a
// write to pg_attribute), and the value may be bound for the policy
// column under its new name.
func (p *planner) knownColumn(target *item, name string, loc int32) {
	if target.ptable == nil || target.rel.Columns == nil || slices.Contains(target.rel.Columns, name) {
		return
	}
	p.reject(ReasonColumnsUnknown, nil, "column "+quoteIdent(name)+" of "+target.ptable.schema+"."+target.ptable.name+", which the proxy has not seen (the table changed since it read it; run the statement again)", false, loc)
}

// policyCol returns the policy column name of a target table item, or nil.
func (it *item) policyCol(name string) *Column {
	if it.ptable == nil {
		return nil
	}
	return it.ptable.cols[name]
}

func (p *planner) columnsUnknown(target *item, loc int32) {
	p.reject(ReasonColumnsUnknown, nil, target.desc, false, loc)
}

func (p *planner) insertStmt(s *pg_query.InsertStmt, parent *scope) relOut {
	sc := newScope(parent)
	p.withClause(s.WithClause, sc)
	target := p.rangeVarItem(sc, s.Relation, true)
	tcols, known := p.targetColumns(target, s.Cols)

	if sel := s.SelectStmt.GetSelectStmt(); sel != nil {
		if len(sel.ValuesLists) > 0 && (sel.Op == pg_query.SetOperation_SETOP_NONE || sel.Op == pg_query.SetOperation_SET_OPERATION_UNDEFINED) {
			vsc := newScope(sc)
			p.withClause(sel.WithClause, vsc)
			if !known {
				p.columnsUnknown(target, s.Relation.Location)
			}
			if len(s.Cols) == 0 && target.ptable != nil && known {
				n := 0
				for _, rn := range sel.ValuesLists {
					n = max(n, len(rn.GetList().GetItems()))
				}
				// More values than columns: name them all, so that the
				// proxy reads the columns again and PostgreSQL refuses if
				// there are still more.
				p.nameColumns(s.Relation, target.rel.Columns[:min(n, len(target.rel.Columns))], true)
			}
			for _, rn := range sel.ValuesLists {
				lst := rn.GetList()
				if lst == nil {
					continue
				}
				if hasCol(tcols) && starInList(lst.Items) {
					p.reject(ReasonColumnsUnknown, nil, "a * expansion in VALUES", false, s.Relation.Location)
					continue
				}
				for i, e := range lst.Items {
					v := p.expr(e, vsc)
					if i < len(tcols) && tcols[i] != nil && e.GetSetToDefault() == nil {
						p.write(tcols[i], v, exprLocation(e))
					} else {
						p.storePlain(v, exprLocation(e))
					}
				}
			}
		} else {
			out := p.selectStmt(sel, sc)
			switch {
			case !known:
				p.columnsUnknown(target, s.Relation.Location)
			case out.open && hasCol(tcols):
				p.reject(ReasonColumnsUnknown, nil, "the INSERT's SELECT * source", false, s.Relation.Location)
			default:
				for i, c := range tcols {
					// Columns beyond the SELECT's get their defaults.
					if c != nil && i < len(out.cols) {
						p.write(c, out.cols[i].v, s.Relation.Location)
					} else if i < len(out.cols) {
						p.storePlain(out.cols[i].v, s.Relation.Location)
					}
				}
				if len(s.Cols) == 0 && target.ptable != nil && !out.open {
					p.nameColumns(s.Relation, target.rel.Columns[:min(len(out.cols), len(target.rel.Columns))], true)
				}
			}
		}
	}

	tsc := newScope(sc)
	tsc.items = []*item{target}
	if oc := s.OnConflictClause; oc != nil {
		if inf := oc.Infer; inf != nil {
			for _, e := range inf.IndexElems {
				if ie := e.GetIndexElem(); ie != nil && ie.Expr != nil {
					p.useOpaque(p.expr(ie.Expr, tsc), ReasonFunction, "an ON CONFLICT index expression", inf.Location)
				}
			}
			p.expr(inf.WhereClause, tsc)
		}
		if oc.Action == pg_query.OnConflictAction_ONCONFLICT_UPDATE {
			excluded := &item{kind: itemDerived, refname: "excluded", aliased: true, desc: "EXCLUDED", out: target.star()}
			usc := newScope(sc)
			usc.items = []*item{target, excluded}
			p.setList(oc.TargetList, target, usc)
			p.useOpaque(p.expr(oc.WhereClause, usc), ReasonOperator, "a WHERE condition", oc.Location)
		}
	}
	return p.targetList(s.ReturningList, tsc)
}

// storePlain handles a value stored in a column outside the policy: its
// parameters and literals are stored as written, and a policy column's
// envelope copied there could never be decrypted (and would reach clients
// as ciphertext), so that is refused.
func (p *planner) storePlain(v val, loc int32) {
	markPlain(v)
	if v.row != nil {
		v = flattenRow(v)
	}
	for _, c := range v.cols {
		p.reject(ReasonCopyOut, c, "", false, loc)
		return
	}
}

func hasCol(cs []*Column) bool {
	for _, c := range cs {
		if c != nil {
			return true
		}
	}
	return false
}

// setList handles the assignments of UPDATE SET, ON CONFLICT DO UPDATE SET
// and MERGE ... UPDATE SET.
func (p *planner) setList(targets []*pg_query.Node, target *item, sc *scope) {
	for _, n := range targets {
		rt := n.GetResTarget()
		if rt == nil {
			continue
		}
		c := target.policyCol(rt.Name)
		p.knownColumn(target, rt.Name, rt.Location)
		var v val
		if m := rt.Val.GetMultiAssignRef(); m != nil {
			v = p.multiAssign(m, c, sc)
		} else {
			v = p.expr(rt.Val, sc)
		}
		if c == nil {
			p.storePlain(v, rt.Location)
			continue
		}
		if rt.Val.GetSetToDefault() != nil {
			continue
		}
		if len(rt.Indirection) > 0 {
			p.reject(ReasonPlaintextWrite, c, "an assignment to an element or field of the column", false, rt.Location)
			continue
		}
		p.write(c, v, rt.Location)
	}
}

// multiAssign returns the value one column gets from SET (a, b) = source.
func (p *planner) multiAssign(m *pg_query.MultiAssignRef, c *Column, sc *scope) val {
	i := int(m.Colno) - 1
	switch src := m.Source.GetNode().(type) {
	case *pg_query.Node_RowExpr:
		if c != nil && starInList(src.RowExpr.Args) {
			p.reject(ReasonColumnsUnknown, c, "a * expansion in SET (...) = ROW(...)", false, src.RowExpr.Location)
			return val{}
		}
		if i >= 0 && i < len(src.RowExpr.Args) {
			a := src.RowExpr.Args[i]
			if a.GetSetToDefault() != nil {
				return val{}
			}
			return p.expr(a, sc)
		}
		if c != nil {
			p.reject(ReasonColumnsUnknown, c, "SET (...) = ROW(...) with fewer values than columns", false, src.RowExpr.Location)
		}
		return val{}
	case *pg_query.Node_SubLink:
		out, ok := p.sublinks[src.SubLink]
		if !ok {
			out = p.query(src.SubLink.Subselect, sc)
			p.sublinks[src.SubLink] = out
		}
		if out.open && c != nil {
			p.reject(ReasonColumnsUnknown, c, "the subquery's *", false, src.SubLink.Location)
			return val{}
		}
		if i >= 0 && i < len(out.cols) {
			return out.cols[i].v.indirect("a subquery")
		}
		if c != nil {
			p.reject(ReasonColumnsUnknown, c, "SET (...) = (subquery) whose columns cannot be matched", false, src.SubLink.Location)
		}
		return val{}
	}
	v := p.expr(m.Source, sc)
	if v.row != nil && i >= 0 && i < len(v.row) {
		return v.row[i]
	}
	return v
}

func (p *planner) updateStmt(s *pg_query.UpdateStmt, parent *scope) relOut {
	sc := newScope(parent)
	p.withClause(s.WithClause, sc)
	target := p.rangeVarItem(sc, s.Relation, true)
	sc.items = append(sc.items, target)
	for _, f := range s.FromClause {
		p.fromItem(f, sc)
	}
	p.setList(s.TargetList, target, sc)
	p.useOpaque(p.expr(s.WhereClause, sc), ReasonOperator, "a WHERE condition", -1)
	return p.targetList(s.ReturningList, sc)
}

func (p *planner) deleteStmt(s *pg_query.DeleteStmt, parent *scope) relOut {
	sc := newScope(parent)
	p.withClause(s.WithClause, sc)
	target := p.rangeVarItem(sc, s.Relation, true)
	sc.items = append(sc.items, target)
	for _, f := range s.UsingClause {
		p.fromItem(f, sc)
	}
	p.useOpaque(p.expr(s.WhereClause, sc), ReasonOperator, "a WHERE condition", -1)
	return p.targetList(s.ReturningList, sc)
}

func (p *planner) mergeStmt(s *pg_query.MergeStmt, parent *scope) relOut {
	sc := newScope(parent)
	p.withClause(s.WithClause, sc)
	target := p.rangeVarItem(sc, s.Relation, true)
	sc.items = append(sc.items, target)
	source := p.fromItem(s.SourceRelation, sc)
	p.useOpaque(p.expr(s.JoinCondition, sc), ReasonOperator, "a join condition", -1)
	// What a WHEN clause sees: both sides when matched; only the source
	// in NOT MATCHED [BY TARGET], where an unqualified column is the
	// source's even if the target has one of that name; only the target
	// in NOT MATCHED BY SOURCE (PostgreSQL 17).
	onlySource := &scope{parent: parent, ctes: sc.ctes, items: slices.Clip(source)}
	onlyTarget := &scope{parent: parent, ctes: sc.ctes, items: []*item{target}}
	for _, wn := range s.MergeWhenClauses {
		w := wn.GetMergeWhenClause()
		if w == nil {
			continue
		}
		wsc := sc
		switch w.MatchKind {
		case pg_query.MergeMatchKind_MERGE_WHEN_NOT_MATCHED_BY_TARGET:
			wsc = onlySource
		case pg_query.MergeMatchKind_MERGE_WHEN_NOT_MATCHED_BY_SOURCE:
			wsc = onlyTarget
		}
		p.useOpaque(p.expr(w.Condition, wsc), ReasonOperator, "a WHEN condition", -1)
		switch w.CommandType {
		case pg_query.CmdType_CMD_UPDATE:
			p.setList(w.TargetList, target, wsc)
		case pg_query.CmdType_CMD_INSERT:
			tcols, known := p.targetColumns(target, w.TargetList)
			if !known && len(w.Values) > 0 {
				p.columnsUnknown(target, s.Relation.Location)
			}
			if hasCol(tcols) && starInList(w.Values) {
				p.reject(ReasonColumnsUnknown, nil, "a * expansion in MERGE's INSERT VALUES", false, s.Relation.Location)
			}
			if len(w.TargetList) == 0 && len(w.Values) > 0 && target.ptable != nil {
				// By position, in an order another connection may have
				// changed; the clause has no location to write a list at.
				p.reject(ReasonColumnsUnknown, nil, "MERGE's INSERT", false, s.Relation.Location)
			}
			for i, e := range w.Values {
				v := p.expr(e, wsc)
				if i < len(tcols) && tcols[i] != nil && e.GetSetToDefault() == nil {
					p.write(tcols[i], v, exprLocation(e))
				} else {
					p.storePlain(v, exprLocation(e)) // as INSERT does
				}
			}
		}
	}
	return p.targetList(s.ReturningList, sc)
}
