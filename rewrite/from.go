package rewrite

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// fromItem adds the items of one FROM entry to sc and returns them.
func (p *planner) fromItem(n *pg_query.Node, sc *scope) []*item {
	if n.GetNode() == nil {
		return nil
	}
	first := len(sc.items)
	switch x := n.GetNode().(type) {
	case *pg_query.Node_RangeVar:
		sc.items = append(sc.items, p.rangeVarItem(sc, x.RangeVar, false))
	case *pg_query.Node_RangeSubselect:
		rs := x.RangeSubselect
		parent := &scope{parent: sc.parent, ctes: sc.ctes}
		if rs.Lateral {
			parent = sc
		}
		out := p.query(rs.Subquery, parent)
		it := &item{kind: itemDerived, desc: "a subquery"}
		if a := rs.GetAlias(); a != nil {
			it.refname, it.aliased, it.desc = a.Aliasname, true, "subquery "+a.Aliasname
			out = renameOut(out, a.Colnames)
		}
		it.out = out
		sc.items = append(sc.items, it)
	case *pg_query.Node_RangeFunction:
		sc.items = append(sc.items, p.rangeFunction(x.RangeFunction, sc))
	case *pg_query.Node_JoinExpr:
		p.joinExpr(x.JoinExpr, sc)
	case *pg_query.Node_RangeTableSample:
		p.fromItem(x.RangeTableSample.Relation, sc)
		for _, a := range x.RangeTableSample.Args {
			p.expr(a, sc)
		}
		p.expr(x.RangeTableSample.Repeatable, sc)
	default:
		// XMLTABLE, JSON_TABLE and the like: their inputs are expressions
		// (a policy column there is a function applied to it); their output
		// columns are unencrypted values.
		what := nodeName(n)
		p.forEachChild(n, func(c *pg_query.Node) {
			switch c.GetNode().(type) {
			case *pg_query.Node_Alias, *pg_query.Node_RangeTableFuncCol, *pg_query.Node_String_:
				return
			}
			p.useOpaque(p.expr(c, sc), ReasonFunction, what, -1)
		})
		it := &item{kind: itemDerived, desc: what, out: relOut{open: true}}
		if a := aliasOf(n); a != nil {
			it.refname, it.aliased = a.Aliasname, true
			it.out = renameOut(it.out, a.Colnames)
		}
		sc.items = append(sc.items, it)
	}
	return sc.items[first:len(sc.items):len(sc.items)]
}

func aliasOf(n *pg_query.Node) *pg_query.Alias {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_RangeTableFunc:
		return x.RangeTableFunc.Alias
	case *pg_query.Node_JsonTable:
		return x.JsonTable.Alias
	}
	return nil
}

func (p *planner) rangeFunction(rf *pg_query.RangeFunction, sc *scope) *item {
	var out relOut
	fname := "function"
	for _, fn := range rf.Functions {
		// Each entry is a List of (function call, column definitions).
		lst := fn.GetList()
		if lst == nil || len(lst.Items) == 0 {
			continue
		}
		call := lst.Items[0]
		p.expr(call, sc)
		if fc := call.GetFuncCall(); fc != nil {
			fs := names(fc.Funcname)
			if len(fs) > 0 {
				fname = fs[len(fs)-1]
			}
		}
		if len(lst.Items) > 1 && lst.Items[1].GetList() != nil {
			for _, cd := range lst.Items[1].GetList().Items {
				if d := cd.GetColumnDef(); d != nil {
					out.cols = append(out.cols, outCol{name: d.Colname, v: plainVal("a column of function " + fname + "()")})
				}
			}
		} else {
			out.open = true
		}
	}
	for _, cd := range rf.Coldeflist {
		if d := cd.GetColumnDef(); d != nil {
			out.cols = append(out.cols, outCol{name: d.Colname, v: plainVal("a column of function " + fname + "()")})
		}
	}
	if len(rf.Coldeflist) > 0 {
		out.open = false
	}
	it := &item{kind: itemDerived, refname: fname, desc: "function " + fname + "()"}
	if a := rf.GetAlias(); a != nil {
		it.refname, it.aliased = a.Aliasname, true
		if len(a.Colnames) > 0 {
			out = renameOut(out, a.Colnames)
		} else if len(rf.Functions) == 1 && len(out.cols) == 0 {
			// A scalar function's single column takes the alias name.
			out.cols = append(out.cols, outCol{name: a.Aliasname, v: plainVal("the result of " + fname + "()")})
		}
	} else if len(rf.Functions) == 1 && len(out.cols) == 0 {
		out.cols = append(out.cols, outCol{name: fname, v: plainVal("the result of " + fname + "()")})
	}
	if rf.Ordinality {
		out.cols = append(out.cols, outCol{name: "ordinality", v: plainVal("WITH ORDINALITY")})
	}
	it.out = out
	return it
}

func (p *planner) joinExpr(j *pg_query.JoinExpr, sc *scope) {
	left := p.fromItem(j.Larg, sc)
	right := p.fromItem(j.Rarg, sc)
	var using []string
	if j.IsNatural {
		ls, rs := starOf(left), starOf(right)
		if ls.open || rs.open {
			if outHasPolicy(ls) || outHasPolicy(rs) {
				c := firstPolicyCol(ls)
				if c == nil {
					c = firstPolicyCol(rs)
				}
				p.reject(ReasonColumnsUnknown, c, "a NATURAL JOIN input", true, -1)
			}
		} else {
			for _, l := range ls.cols {
				for _, r := range rs.cols {
					if l.name == r.name {
						using = append(using, l.name)
					}
				}
			}
		}
	} else {
		using = names(j.UsingClause)
	}
	if len(using) > 0 {
		merged := &item{kind: itemMerged, desc: "JOIN USING"}
		if j.JoinUsingAlias != nil {
			merged.refname = j.JoinUsingAlias.Aliasname
		}
		for _, name := range using {
			lv, _ := lookupItems(left, name)
			rv, _ := lookupItems(right, name)
			p.compare(lv, rv, "JOIN USING", -1)
			var mv val
			switch j.Jointype {
			case pg_query.JoinType_JOIN_RIGHT:
				mv = rv
			case pg_query.JoinType_JOIN_FULL:
				mv = mergeVals("FULL JOIN USING", lv, rv).indirect("FULL JOIN USING")
			default:
				mv = lv
			}
			merged.out.cols = append(merged.out.cols, outCol{name: name, v: mv})
			for _, it := range append(left[:len(left):len(left)], right...) {
				if it.hidden == nil {
					it.hidden = make(map[string]bool)
				}
				it.hidden[name] = true
			}
		}
		// The merged columns come first in *.
		at := len(sc.items) - len(left) - len(right)
		sc.items = append(sc.items[:at], append([]*item{merged}, sc.items[at:]...)...)
	}
	p.useOpaque(p.expr(j.Quals, sc), ReasonOperator, "a join condition", -1)
	if a := j.GetAlias(); a != nil {
		all := sc.items[len(sc.items)-len(left)-len(right):]
		if len(using) > 0 {
			all = sc.items[len(sc.items)-len(left)-len(right)-1:]
		}
		out := relOut{}
		for _, it := range all {
			s := it.star()
			out.open = out.open || s.open
			for _, c := range s.cols {
				if it.hidden[c.name] {
					continue
				}
				out.cols = append(out.cols, c)
			}
		}
		sc.items = append(sc.items, &item{kind: itemDerived, refname: a.Aliasname, aliased: true, joinAlias: true, desc: "join " + a.Aliasname, out: renameOut(out, a.Colnames)})
	}
}

// starOf returns the combined columns of items.
func starOf(items []*item) relOut {
	var out relOut
	for _, it := range items {
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

// lookupItems finds an unqualified name among items.
func lookupItems(items []*item, name string) (val, lookup) {
	st := notFound
	for _, it := range items {
		if it.hidden[name] {
			continue
		}
		v, s := it.column(name)
		if s == found {
			return v, found
		}
		if s == maybe {
			st = maybe
		}
	}
	return plainVal("column " + name), st
}
