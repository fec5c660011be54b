package rewrite

import (
	"strconv"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// query analyses a query nested in another (subquery, CTE body, INSERT
// source) with parent as the enclosing scope, and returns its output.
func (p *planner) query(n *pg_query.Node, parent *scope) relOut {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		return p.selectStmt(x.SelectStmt, parent)
	case *pg_query.Node_InsertStmt:
		return p.insertStmt(x.InsertStmt, parent)
	case *pg_query.Node_UpdateStmt:
		return p.updateStmt(x.UpdateStmt, parent)
	case *pg_query.Node_DeleteStmt:
		return p.deleteStmt(x.DeleteStmt, parent)
	case *pg_query.Node_MergeStmt:
		return p.mergeStmt(x.MergeStmt, parent)
	}
	return relOut{open: true}
}

// withClause analyses CTEs in order and makes them visible in sc.
func (p *planner) withClause(w *pg_query.WithClause, sc *scope) {
	if w == nil {
		return
	}
	sc.ctes = make(map[string]*cteDef, len(w.Ctes))
	if w.Recursive {
		// In WITH RECURSIVE a CTE may name one declared after it. Until
		// that one is analysed its columns are unknown: a placeholder
		// whose every column counts as unencrypted.
		for _, n := range w.Ctes {
			if cte := n.GetCommonTableExpr(); cte != nil {
				sc.ctes[cte.Ctename] = &cteDef{name: cte.Ctename, out: relOut{open: true}}
			}
		}
	}
	for _, n := range w.Ctes {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		d := &cteDef{name: cte.Ctename}
		sel := cte.Ctequery.GetSelectStmt()
		if w.Recursive && sel != nil && sel.Op != pg_query.SetOperation_SETOP_NONE && sel.Larg != nil {
			// The recursive term sees the CTE with the columns of the
			// non-recursive term. Values move between columns from one
			// iteration to the next, so every column may carry what any
			// column carries: merging them reaches the fixpoint at once.
			d.out = mergeColumns(renameOut(p.selectStmt(sel.Larg, sc), cte.Aliascolnames), "a recursive WITH")
			sc.ctes[cte.Ctename] = d
			d.out = mergeColumns(renameOut(p.selectStmt(sel, sc), cte.Aliascolnames), "a recursive WITH")
			p.searchCycle(cte, d)
			continue
		}
		d.out = renameOut(p.query(cte.Ctequery, sc), cte.Aliascolnames)
		sc.ctes[cte.Ctename] = d
	}
}

// searchCycle adds the columns of a recursive CTE's SEARCH and CYCLE
// clauses. SEARCH sorts by its columns and CYCLE compares them, which
// ciphertext supports only for equality of deterministic columns; the
// sequence and path columns they add carry those columns' values in a row
// or array, where the proxy cannot decrypt or encrypt them.
func (p *planner) searchCycle(cte *pg_query.CommonTableExpr, d *cteDef) {
	cols := func(list []*pg_query.Node) val {
		var vs []val
		for _, n := range list {
			for _, c := range d.out.cols {
				if c.name == strVal(n) {
					vs = append(vs, c.v)
				}
			}
		}
		return mergeVals("a SEARCH or CYCLE column", vs...)
	}
	if sc := cte.SearchClause; sc != nil {
		v := cols(sc.SearchColList)
		p.useOpaque(v, ReasonOrderBy, "SEARCH … FIRST BY", sc.Location)
		d.out.cols = append(d.out.cols, outCol{name: sc.SearchSeqColumn, v: v.indirect("a SEARCH sequence column")})
	}
	if cc := cte.CycleClause; cc != nil {
		v := cols(cc.CycleColList)
		p.grouping(v, "CYCLE", cc.Location)
		d.out.cols = append(d.out.cols,
			outCol{name: cc.CycleMarkColumn, v: plainVal("a CYCLE mark")},
			outCol{name: cc.CyclePathColumn, v: v.indirect("a CYCLE path column")})
	}
}

// mergeColumns gives every column the merge of all columns' values.
func mergeColumns(out relOut, via string) relOut {
	vs := make([]val, len(out.cols))
	for i, c := range out.cols {
		vs[i] = c.v
	}
	m := mergeVals(via, vs...)
	for i := range out.cols {
		out.cols[i].v = m
	}
	return out
}

// selectStmt analyses a SELECT, VALUES or set operation.
func (p *planner) selectStmt(s *pg_query.SelectStmt, parent *scope) relOut {
	if s == nil {
		return relOut{}
	}
	sc := newScope(parent)
	p.withClause(s.WithClause, sc)

	var out relOut
	switch {
	case s.Op != pg_query.SetOperation_SETOP_NONE && s.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED:
		via := map[pg_query.SetOperation]string{
			pg_query.SetOperation_SETOP_UNION:     "UNION",
			pg_query.SetOperation_SETOP_INTERSECT: "INTERSECT",
			pg_query.SetOperation_SETOP_EXCEPT:    "EXCEPT",
		}[s.Op]
		l := p.selectStmt(s.Larg, sc)
		r := p.selectStmt(s.Rarg, sc)
		out.open = l.open || r.open
		for i, c := range l.cols {
			v := c.v
			if i < len(r.cols) {
				v = mergeVals(via, c.v, r.cols[i].v)
			}
			if !s.All || s.Op != pg_query.SetOperation_SETOP_UNION {
				// INTERSECT and EXCEPT compare rows even with ALL.
				p.grouping(v, via, -1)
			}
			out.cols = append(out.cols, outCol{name: c.name, v: v.indirect(via), figured: c.figured})
		}
		p.sortClause(s.SortClause, outputScope(sc, out), out)
	case len(s.ValuesLists) > 0:
		rows := make([][]val, 0, len(s.ValuesLists))
		width := 0
		for _, rn := range s.ValuesLists {
			lst := rn.GetList()
			if lst == nil {
				continue
			}
			row := make([]val, len(lst.Items))
			for i, e := range lst.Items {
				row[i] = p.expr(e, sc)
			}
			width = max(width, len(row))
			rows = append(rows, row)
		}
		for i := range width {
			vs := make([]val, 0, len(rows))
			for _, r := range rows {
				if i < len(r) {
					vs = append(vs, r[i])
				}
			}
			v := mergeVals("VALUES", vs...)
			if len(vs) == 1 {
				v = v.indirect("VALUES")
			}
			out.cols = append(out.cols, outCol{name: "column" + strconv.Itoa(i+1), v: v})
		}
		p.sortClause(s.SortClause, outputScope(sc, out), out)
	default:
		for _, f := range s.FromClause {
			p.fromItem(f, sc)
		}
		p.useOpaque(p.expr(s.WhereClause, sc), ReasonOperator, "a WHERE condition", -1)
		out = p.targetList(s.TargetList, sc)
		for _, g := range s.GroupClause {
			p.groupItem(g, sc, out)
		}
		p.useOpaque(p.expr(s.HavingClause, sc), ReasonOperator, "a HAVING condition", -1)
		for _, w := range s.WindowClause {
			if wd := w.GetWindowDef(); wd != nil {
				p.windowDef(wd, sc)
			}
		}
		if len(s.DistinctClause) > 0 {
			if len(s.DistinctClause) == 1 && s.DistinctClause[0].GetNode() == nil {
				for _, c := range out.cols {
					p.grouping(c.v, "DISTINCT", -1)
				}
			} else {
				for _, d := range s.DistinctClause {
					p.grouping(p.outputRef(d, sc, out, true), "DISTINCT ON", exprLocation(d))
				}
			}
		}
		p.sortClause(s.SortClause, sc, out)
	}
	p.expr(s.LimitCount, sc)
	p.expr(s.LimitOffset, sc)
	return out
}

// outputScope is a scope whose only item is a query's output, for ORDER BY
// on set operations and VALUES.
func outputScope(parent *scope, out relOut) *scope {
	return &scope{parent: parent, items: []*item{{kind: itemDerived, desc: "the query result", out: out}}}
}

// sortClause handles ORDER BY: no policy column may be sorted. A bare
// name means an output column first, as in PostgreSQL.
func (p *planner) sortClause(sorts []*pg_query.Node, sc *scope, out relOut) {
	for _, n := range sorts {
		sb := n.GetSortBy()
		if sb == nil {
			continue
		}
		v := p.outputRef(sb.Node, sc, out, true)
		p.useOpaque(v, ReasonOrderBy, "ORDER BY", exprLocation(sb.Node))
	}
}

// outputRef evaluates an ORDER BY, DISTINCT ON or GROUP BY item: an
// output column position, an output column name (preferred over input
// columns when outputFirst), or an expression over the input.
func (p *planner) outputRef(n *pg_query.Node, sc *scope, out relOut, outputFirst bool) val {
	if k := n.GetAConst(); k != nil {
		if iv, ok := k.Val.(*pg_query.A_Const_Ival); ok {
			i := int(iv.Ival.Ival) - 1
			if out.open && outHasPolicy(out) {
				p.reject(ReasonColumnsUnknown, firstPolicyCol(out), "the * that ORDER BY, GROUP BY or DISTINCT ON refers to by position", true, k.Location)
				return val{}
			}
			if i >= 0 && i < len(out.cols) {
				return out.cols[i].v
			}
			return val{}
		}
	}
	if cr := n.GetColumnRef(); cr != nil && len(cr.Fields) == 1 && cr.Fields[0].GetString_() != nil {
		name := strVal(cr.Fields[0])
		if outputFirst {
			for _, c := range out.cols {
				if c.name == name {
					return c.v
				}
			}
		} else if v, st := lookupLevel(sc, name); st == found {
			return v
		} else {
			for _, c := range out.cols {
				if c.name == name {
					return c.v
				}
			}
		}
	}
	return p.expr(n, sc)
}

// lookupLevel finds an unqualified name among the items of one level.
func lookupLevel(sc *scope, name string) (val, lookup) {
	for _, it := range sc.items {
		if it.hidden[name] {
			continue
		}
		if v, st := it.column(name); st == found {
			return v, found
		}
	}
	return val{}, notFound
}

func outHasPolicy(out relOut) bool {
	for _, c := range out.cols {
		if c.v.hasPolicy() {
			return true
		}
	}
	return false
}

func firstPolicyCol(out relOut) *Column {
	for _, c := range out.cols {
		v := c.v
		if v.row != nil {
			v = flattenRow(v)
		}
		if len(v.cols) > 0 {
			return v.cols[0]
		}
	}
	return nil
}

func (p *planner) groupItem(g *pg_query.Node, sc *scope, out relOut) {
	if gs := g.GetGroupingSet(); gs != nil {
		for _, c := range gs.Content {
			p.groupItem(c, sc, out)
		}
		return
	}
	if l := g.GetList(); l != nil {
		for _, c := range l.Items {
			p.groupItem(c, sc, out)
		}
		return
	}
	p.grouping(p.outputRef(g, sc, out, false), "GROUP BY", exprLocation(g))
}

// targetList evaluates a SELECT list or RETURNING list.
func (p *planner) targetList(targets []*pg_query.Node, sc *scope) relOut {
	var out relOut
	for _, t := range targets {
		rt := t.GetResTarget()
		if rt == nil {
			continue
		}
		if cr := rt.Val.GetColumnRef(); cr != nil {
			fs := names(cr.Fields)
			if len(fs) > 0 && fs[len(fs)-1] == "*" {
				s := p.expandStar(sc, fs[:len(fs)-1])
				out.cols = append(out.cols, s.cols...)
				out.open = out.open || s.open
				continue
			}
		}
		if hasStar(rt.Val) {
			// (expr).* expands to columns analysis cannot count: positions
			// after it are unreliable.
			p.expr(rt.Val, sc)
			out.open = true
			continue
		}
		name, figured := rt.Name, false
		if name == "" {
			name = figureColname(rt.Val)
			figured = rt.Val.GetColumnRef() == nil
		}
		out.cols = append(out.cols, outCol{name: name, v: p.expr(rt.Val, sc), figured: figured})
	}
	return out
}

// hasStar reports whether n expands to several columns in a target or
// VALUES list: x.*, (expr).*, or a ROW(...) holding one.
func hasStar(n *pg_query.Node) bool {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_ColumnRef:
		fs := v.ColumnRef.Fields
		return len(fs) > 0 && fs[len(fs)-1].GetAStar() != nil
	case *pg_query.Node_AIndirection:
		ind := v.AIndirection.Indirection
		return len(ind) > 0 && ind[len(ind)-1].GetAStar() != nil
	case *pg_query.Node_RowExpr:
		for _, a := range v.RowExpr.Args {
			if hasStar(a) {
				return true
			}
		}
	}
	return false
}

// starInList reports whether any item of a VALUES row or ROW list expands
// to several columns.
func starInList(items []*pg_query.Node) bool {
	for _, e := range items {
		if hasStar(e) {
			return true
		}
	}
	return false
}

// expandStar returns the columns of * (q empty) or q.*.
func (p *planner) expandStar(sc *scope, q []string) relOut {
	var out relOut
	if len(q) > 0 {
		if it := findItem(sc, q); it != nil {
			return it.star()
		}
		return relOut{open: true}
	}
	for _, it := range sc.items {
		if it.joinAlias {
			continue // the joined items are listed themselves
		}
		s := it.star()
		out.open = out.open || s.open
		for _, c := range s.cols {
			if it.hidden[c.name] {
				continue
			}
			out.cols = append(out.cols, c)
		}
	}
	return out
}

// figureColname returns the name PostgreSQL gives an unnamed output column
// (parse_target.c's FigureColname).
func figureColname(n *pg_query.Node) string {
	if name, strength := figureColnameInternal(n); strength > 0 {
		return name
	}
	return "?column?"
}

// figureColnameInternal is FigureColnameInternal: the name and its
// strength (2: a real name; 1: a fallback such as a type name or "case";
// 0: none).
func figureColnameInternal(n *pg_query.Node) (string, int) {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_ColumnRef:
		fs := names(x.ColumnRef.Fields)
		if len(fs) > 0 && fs[len(fs)-1] != "" {
			return fs[len(fs)-1], 2
		}
	case *pg_query.Node_AIndirection:
		ind := x.AIndirection.Indirection
		for i := len(ind) - 1; i >= 0; i-- {
			if ind[i].GetString_() != nil {
				return strVal(ind[i]), 2
			}
		}
		return figureColnameInternal(x.AIndirection.Arg)
	case *pg_query.Node_FuncCall:
		fs := names(x.FuncCall.Funcname)
		if len(fs) > 0 {
			return fs[len(fs)-1], 2
		}
	case *pg_query.Node_AExpr:
		if x.AExpr.Kind == pg_query.A_Expr_Kind_AEXPR_NULLIF {
			return "nullif", 2
		}
	case *pg_query.Node_TypeCast:
		name, strength := figureColnameInternal(x.TypeCast.Arg)
		if strength <= 1 {
			if fs := names(x.TypeCast.TypeName.GetNames()); len(fs) > 0 {
				return fs[len(fs)-1], 1
			}
		}
		return name, strength
	case *pg_query.Node_CollateClause:
		return figureColnameInternal(x.CollateClause.Arg)
	case *pg_query.Node_GroupingFunc:
		return "grouping", 2
	case *pg_query.Node_SubLink:
		switch x.SubLink.SubLinkType {
		case pg_query.SubLinkType_EXISTS_SUBLINK:
			return "exists", 2
		case pg_query.SubLinkType_ARRAY_SUBLINK:
			return "array", 2
		case pg_query.SubLinkType_EXPR_SUBLINK:
			// The name of the subquery's first output column, as analysed:
			// a set operation's left arm, VALUES' column1.
			sel := x.SubLink.Subselect.GetSelectStmt()
			for sel != nil && sel.Larg != nil {
				sel = sel.Larg
			}
			switch {
			case sel == nil:
			case len(sel.ValuesLists) > 0:
				return "column1", 2
			case len(sel.TargetList) > 0:
				if rt := sel.TargetList[0].GetResTarget(); rt != nil {
					if rt.Name != "" {
						return rt.Name, 2
					}
					if !hasStar(rt.Val) {
						return figureColname(rt.Val), 2
					}
				}
			}
		}
	case *pg_query.Node_CaseExpr:
		name, strength := figureColnameInternal(x.CaseExpr.Defresult)
		if strength <= 1 {
			return "case", 1
		}
		return name, strength
	case *pg_query.Node_AArrayExpr:
		return "array", 2
	case *pg_query.Node_RowExpr:
		return "row", 2
	case *pg_query.Node_CoalesceExpr:
		return "coalesce", 2
	case *pg_query.Node_MinMaxExpr:
		if x.MinMaxExpr.Op == pg_query.MinMaxOp_IS_LEAST {
			return "least", 2
		}
		return "greatest", 2
	}
	return "", 0
}
