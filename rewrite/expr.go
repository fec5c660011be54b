package rewrite

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// expr evaluates an expression in scope sc: it records what the expression
// does to policy columns (rejections, bindings of parameters and literals)
// and returns what may flow out of it.
func (p *planner) expr(n *pg_query.Node, sc *scope) val {
	if n == nil {
		return val{}
	}
	switch x := n.Node.(type) {
	case *pg_query.Node_ColumnRef:
		fs := names(x.ColumnRef.Fields)
		if len(fs) == 0 {
			return plainVal("an unknown column")
		}
		if fs[len(fs)-1] == "*" {
			return p.wholeRow(sc, fs[:len(fs)-1], x.ColumnRef.Location)
		}
		return p.resolveColumn(sc, fs, x.ColumnRef.Location)
	case *pg_query.Node_ParamRef:
		return val{sites: []*site{p.newSite(int(x.ParamRef.Number), nil, x.ParamRef.Location)}}
	case *pg_query.Node_AConst:
		if x.AConst.Isnull {
			return val{}
		}
		return val{sites: []*site{p.newSite(0, x.AConst, x.AConst.Location)}}
	case *pg_query.Node_TypeCast:
		return p.typeCast(x.TypeCast, sc)
	case *pg_query.Node_AExpr:
		return p.aExpr(x.AExpr, sc)
	case *pg_query.Node_BoolExpr:
		for _, a := range x.BoolExpr.Args {
			p.useOpaque(p.expr(a, sc), ReasonOperator, "a boolean operator (AND, OR, NOT)", x.BoolExpr.Location)
		}
		return plainVal("a boolean expression")
	case *pg_query.Node_NullTest:
		v := p.expr(x.NullTest.Arg, sc)
		markNeutral(v)
		return plainVal("a null test")
	case *pg_query.Node_BooleanTest:
		p.useOpaque(p.expr(x.BooleanTest.Arg, sc), ReasonOperator, "IS TRUE/FALSE/UNKNOWN", x.BooleanTest.Location)
		return plainVal("a boolean test")
	case *pg_query.Node_FuncCall:
		return p.funcCall(x.FuncCall, sc)
	case *pg_query.Node_SubLink:
		return p.subLink(x.SubLink, sc)
	case *pg_query.Node_CaseExpr:
		return p.caseExpr(x.CaseExpr, sc)
	case *pg_query.Node_CoalesceExpr:
		vs := make([]val, 0, len(x.CoalesceExpr.Args))
		for _, a := range x.CoalesceExpr.Args {
			vs = append(vs, p.expr(a, sc))
		}
		return mergeVals("COALESCE", vs...).indirect("COALESCE")
	case *pg_query.Node_MinMaxExpr:
		what := "GREATEST"
		if x.MinMaxExpr.Op == pg_query.MinMaxOp_IS_LEAST {
			what = "LEAST"
		}
		for _, a := range x.MinMaxExpr.Args {
			p.useOpaque(p.expr(a, sc), ReasonRangeComparison, what, x.MinMaxExpr.Location)
		}
		return plainVal("the result of " + what)
	case *pg_query.Node_RowExpr:
		row := make([]val, len(x.RowExpr.Args))
		for i, a := range x.RowExpr.Args {
			row[i] = p.expr(a, sc)
		}
		return val{row: row}
	case *pg_query.Node_List:
		row := make([]val, len(x.List.Items))
		for i, a := range x.List.Items {
			row[i] = p.expr(a, sc)
		}
		return val{row: row}
	case *pg_query.Node_AArrayExpr:
		for _, e := range x.AArrayExpr.Elements {
			p.useOpaque(p.expr(e, sc), ReasonOperator, "an ARRAY constructor", x.AArrayExpr.Location)
		}
		return plainVal("an array")
	case *pg_query.Node_AIndirection:
		v := p.expr(x.AIndirection.Arg, sc)
		p.useOpaque(v, ReasonOperator, "a subscript or field selection", exprLocation(x.AIndirection.Arg))
		for _, ind := range x.AIndirection.Indirection {
			if ai := ind.GetAIndices(); ai != nil {
				p.expr(ai.Lidx, sc)
				p.expr(ai.Uidx, sc)
			}
		}
		return plainVal("a subscript or field selection")
	case *pg_query.Node_CollateClause:
		v := p.expr(x.CollateClause.Arg, sc)
		if v.hasPolicy() {
			p.useOpaque(v, ReasonOperator, "COLLATE", x.CollateClause.Location)
			return plainVal("a COLLATE expression")
		}
		return v
	case *pg_query.Node_SetToDefault:
		return val{}
	case *pg_query.Node_SqlvalueFunction, *pg_query.Node_CurrentOfExpr, *pg_query.Node_GroupingFunc:
		// CURRENT_USER and friends, WHERE CURRENT OF, GROUPING(cols): they
		// do not look at column values.
		return plainVal("a built-in value")
	case *pg_query.Node_SelectStmt:
		out := p.query(n, sc)
		if len(out.cols) == 0 {
			return plainVal("a subquery")
		}
		return out.cols[0].v.indirect("a scalar subquery")
	default:
		what := nodeName(n)
		p.forEachChild(n, func(c *pg_query.Node) {
			p.useOpaque(p.expr(c, sc), ReasonOperator, what, exprLocation(n))
		})
		return plainVal(what)
	}
}

// wholeRow is q.* (or a whole-row reference) used as a value: a row of the
// item's columns.
func (p *planner) wholeRow(sc *scope, q []string, loc int32) val {
	var out relOut
	if len(q) == 0 {
		for _, it := range sc.items {
			s := it.star()
			out.cols = append(out.cols, s.cols...)
		}
	} else {
		it := findItem(sc, q)
		if it == nil {
			return plainVal("an unknown column")
		}
		out = it.star()
	}
	row := make([]val, len(out.cols))
	for i, c := range out.cols {
		row[i] = c.v.indirect("a whole-row reference")
	}
	if len(row) == 0 {
		return plainVal("a whole-row reference")
	}
	return val{row: row}
}

func findItem(sc *scope, q []string) *item {
	for s := sc; s != nil; s = s.parent {
		for _, it := range s.items {
			if it.matches(q) {
				return it
			}
		}
	}
	return nil
}

func (p *planner) typeCast(tc *pg_query.TypeCast, sc *scope) val {
	v := p.expr(tc.Arg, sc)
	prob := castProblem(tc.TypeName, false)
	if prob == "" {
		if v.hasPolicy() {
			return v.indirect("a cast")
		}
		return v
	}
	if v.hasPolicy() {
		p.useOpaque(v, ReasonOperator, prob, tc.Location)
		return plainVal("the result of " + prob)
	}
	for _, s := range v.sites {
		if s.bad == "" {
			s.bad, s.badReason = prob, ReasonCast
		}
	}
	return v
}

func (p *planner) caseExpr(c *pg_query.CaseExpr, sc *scope) val {
	var arg val
	if c.Arg != nil {
		arg = p.expr(c.Arg, sc)
	}
	results := make([]val, 0, len(c.Args)+1)
	for _, w := range c.Args {
		cw := w.GetCaseWhen()
		if cw == nil {
			continue
		}
		wv := p.expr(cw.Expr, sc)
		if c.Arg != nil {
			p.compare(arg, wv, "CASE ... WHEN", cw.Location)
		} else {
			p.useOpaque(wv, ReasonOperator, "a CASE condition", cw.Location)
		}
		results = append(results, p.expr(cw.Result, sc))
	}
	results = append(results, p.expr(c.Defresult, sc))
	return mergeVals("CASE", results...).indirect("CASE")
}

func opName(ns []*pg_query.Node) string {
	n := names(ns)
	if len(n) == 0 {
		return "?"
	}
	return n[len(n)-1]
}

func (p *planner) aExpr(e *pg_query.A_Expr, sc *scope) val {
	op := opName(e.Name)
	loc := e.Location
	switch e.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		if e.Lexpr == nil {
			p.useOpaque(p.expr(e.Rexpr, sc), ReasonOperator, "operator "+op, loc)
			return plainVal("the result of operator " + op)
		}
		l, r := p.expr(e.Lexpr, sc), p.expr(e.Rexpr, sc)
		switch op {
		case "=":
			p.expandable(e.Rexpr, r, ExpandAny)
		case "<>":
			p.expandable(e.Rexpr, r, ExpandAll)
		}
		p.applyOp(l, r, op, op, loc)
		return plainVal("the result of operator " + op)
	case pg_query.A_Expr_Kind_AEXPR_OP_ANY, pg_query.A_Expr_Kind_AEXPR_OP_ALL:
		kw := " ANY"
		if e.Kind == pg_query.A_Expr_Kind_AEXPR_OP_ALL {
			kw = " ALL"
		}
		l := p.expr(e.Lexpr, sc)
		r := p.arrayElems(e.Rexpr, sc)
		if (op == "=" && kw == " ANY") || (op == "<>" && kw == " ALL") {
			p.expandArray(e.Rexpr)
		}
		p.applyOp(l, r, op, op+kw, loc)
		return plainVal("a comparison")
	case pg_query.A_Expr_Kind_AEXPR_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		p.compare(p.expr(e.Lexpr, sc), p.expr(e.Rexpr, sc), "IS DISTINCT FROM", loc)
		return plainVal("a comparison")
	case pg_query.A_Expr_Kind_AEXPR_NULLIF:
		l := p.expr(e.Lexpr, sc)
		p.compare(l, p.expr(e.Rexpr, sc), "NULLIF", loc)
		return l.indirect("NULLIF")
	case pg_query.A_Expr_Kind_AEXPR_IN:
		l := p.expr(e.Lexpr, sc)
		detail := "IN"
		if op == "<>" {
			detail = "NOT IN"
		}
		if lst := e.Rexpr.GetList(); lst != nil {
			vals := make([]val, len(lst.Items))
			for i, it := range lst.Items {
				vals[i] = p.expr(it, sc)
			}
			p.expandInList(lst.Items, vals)
			for _, v := range vals {
				p.applyOp(l, v, op, detail, loc)
			}
		} else {
			p.applyOp(l, p.expr(e.Rexpr, sc), op, detail, loc)
		}
		return plainVal("a comparison")
	case pg_query.A_Expr_Kind_AEXPR_LIKE, pg_query.A_Expr_Kind_AEXPR_ILIKE, pg_query.A_Expr_Kind_AEXPR_SIMILAR:
		detail := map[pg_query.A_Expr_Kind]string{
			pg_query.A_Expr_Kind_AEXPR_LIKE:    "LIKE",
			pg_query.A_Expr_Kind_AEXPR_ILIKE:   "ILIKE",
			pg_query.A_Expr_Kind_AEXPR_SIMILAR: "SIMILAR TO",
		}[e.Kind]
		if strings.HasPrefix(op, "!") {
			detail = "NOT " + detail
		}
		p.useOpaque(p.expr(e.Lexpr, sc), ReasonPatternMatch, detail, loc)
		p.useOpaque(p.expr(e.Rexpr, sc), ReasonPatternMatch, detail, loc)
		return plainVal("a pattern match")
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		p.useOpaque(p.expr(e.Lexpr, sc), ReasonRangeComparison, "BETWEEN", loc)
		p.useOpaque(p.expr(e.Rexpr, sc), ReasonRangeComparison, "BETWEEN", loc)
		return plainVal("a range comparison")
	}
	p.useOpaque(p.expr(e.Lexpr, sc), ReasonOperator, "operator "+op, loc)
	p.useOpaque(p.expr(e.Rexpr, sc), ReasonOperator, "operator "+op, loc)
	return plainVal("the result of operator " + op)
}

// applyOp handles l op r for a binary operator.
func (p *planner) applyOp(l, r val, op, detail string, loc int32) {
	switch op {
	case "=", "<>":
		p.compare(l, r, detail, loc)
	case "<", ">", "<=", ">=":
		p.useOpaque(l, ReasonRangeComparison, detail, loc)
		p.useOpaque(r, ReasonRangeComparison, detail, loc)
	case "~~", "!~~", "~~*", "!~~*":
		d := map[string]string{"~~": "LIKE", "!~~": "NOT LIKE", "~~*": "ILIKE", "!~~*": "NOT ILIKE"}[op]
		p.useOpaque(l, ReasonPatternMatch, d, loc)
		p.useOpaque(r, ReasonPatternMatch, d, loc)
	case "~", "!~", "~*", "!~*", "!~~~", "@@", "^@":
		p.useOpaque(l, ReasonPatternMatch, "operator "+op, loc)
		p.useOpaque(r, ReasonPatternMatch, "operator "+op, loc)
	default:
		p.useOpaque(l, ReasonOperator, "operator "+op, loc)
		p.useOpaque(r, ReasonOperator, "operator "+op, loc)
	}
}

// arrayElems evaluates the right side of op ANY/ALL (array) and returns
// what its elements may be.
func (p *planner) arrayElems(n *pg_query.Node, sc *scope) val {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_AArrayExpr:
		vs := make([]val, 0, len(x.AArrayExpr.Elements))
		for _, e := range x.AArrayExpr.Elements {
			vs = append(vs, p.expr(e, sc))
		}
		if len(vs) == 0 {
			return val{}
		}
		return mergeVals("an ARRAY constructor", vs...)
	case *pg_query.Node_SubLink:
		if x.SubLink.SubLinkType == pg_query.SubLinkType_ARRAY_SUBLINK {
			out := p.query(x.SubLink.Subselect, sc)
			if len(out.cols) == 0 {
				return plainVal("a subquery")
			}
			return out.cols[0].v
		}
	case *pg_query.Node_ParamRef:
		s := p.newSite(int(x.ParamRef.Number), nil, x.ParamRef.Location)
		s.array = true
		return val{sites: []*site{s}}
	case *pg_query.Node_TypeCast:
		if prob := castProblem(x.TypeCast.TypeName, true); prob != "" {
			v := p.arrayElems(x.TypeCast.Arg, sc)
			for _, s := range v.sites {
				if s.bad == "" {
					s.bad, s.badReason = prob, ReasonCast
				}
			}
			if v.hasPolicy() {
				p.useOpaque(v, ReasonOperator, prob, x.TypeCast.Location)
				return plainVal("an array")
			}
			return v
		}
		return p.arrayElems(x.TypeCast.Arg, sc)
	case *pg_query.Node_AConst:
		if x.AConst.Isnull {
			return val{}
		}
		s := p.newSite(0, x.AConst, x.AConst.Location)
		s.bad, s.badReason = "an array literal", ReasonUnencryptableValue
		return val{sites: []*site{s}}
	}
	v := p.expr(n, sc)
	if v.hasPolicy() {
		p.useOpaque(v, ReasonOperator, "an array expression", exprLocation(n))
	}
	return plainVal("an array expression")
}

func (p *planner) subLink(s *pg_query.SubLink, sc *scope) val {
	out := p.query(s.Subselect, sc)
	first := val{}
	if len(out.cols) > 0 {
		first = out.cols[0].v
	}
	switch s.SubLinkType {
	case pg_query.SubLinkType_EXISTS_SUBLINK:
		return plainVal("EXISTS")
	case pg_query.SubLinkType_EXPR_SUBLINK, pg_query.SubLinkType_MULTIEXPR_SUBLINK:
		if len(out.cols) > 1 {
			row := make([]val, len(out.cols))
			for i, c := range out.cols {
				row[i] = c.v.indirect("a scalar subquery")
			}
			return val{row: row}
		}
		return first.indirect("a scalar subquery")
	case pg_query.SubLinkType_ARRAY_SUBLINK:
		p.useOpaque(first, ReasonOperator, "ARRAY(subquery)", s.Location)
		return plainVal("an array")
	case pg_query.SubLinkType_ANY_SUBLINK, pg_query.SubLinkType_ALL_SUBLINK, pg_query.SubLinkType_ROWCOMPARE_SUBLINK:
		l := p.expr(s.Testexpr, sc)
		r := first
		if len(out.cols) > 1 {
			r = val{row: make([]val, len(out.cols))}
			for i, c := range out.cols {
				r.row[i] = c.v
			}
		}
		op := "="
		if len(s.OperName) > 0 {
			op = opName(s.OperName)
		}
		detail := op + " (subquery)"
		if s.SubLinkType == pg_query.SubLinkType_ANY_SUBLINK && len(s.OperName) == 0 {
			detail = "IN (subquery)"
		}
		p.applyOp(l, r, op, detail, s.Location)
		return plainVal("a comparison")
	}
	p.useOpaque(first, ReasonOperator, "a subquery expression", s.Location)
	return plainVal("a subquery")
}

// forEachChild calls fn for every Node directly or indirectly inside n
// (through non-Node messages), without descending into the Nodes found.
func (p *planner) forEachChild(n *pg_query.Node, fn func(*pg_query.Node)) {
	inner := n.ProtoReflect()
	inner.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
			forEachNode(v.Message(), fn)
		}
		return true
	})
}

var nodeDesc = (&pg_query.Node{}).ProtoReflect().Descriptor()

func forEachNode(m protoreflect.Message, fn func(*pg_query.Node)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		visit := func(m protoreflect.Message) {
			if m.Descriptor() == nodeDesc {
				fn(m.Interface().(*pg_query.Node))
			} else {
				forEachNode(m, fn)
			}
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visit(l.Get(i).Message())
			}
		} else {
			visit(v.Message())
		}
		return true
	})
}

// nodeName names a node type for messages ("XmlExpr" -> "an XmlExpr
// expression").
func nodeName(n *pg_query.Node) string {
	inner := n.ProtoReflect()
	name := "expression"
	inner.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.MessageKind {
			name = string(v.Message().Descriptor().Name())
		}
		return false
	})
	return "an " + name + " expression"
}

// exprLocation returns a node's location field when it has one, or -1.
func exprLocation(n *pg_query.Node) int32 {
	if n == nil {
		return -1
	}
	loc := int32(-1)
	n.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() {
			if f := v.Message().Descriptor().Fields().ByName("location"); f != nil {
				loc = int32(v.Message().Get(f).Int())
			}
		}
		return false
	})
	return loc
}
