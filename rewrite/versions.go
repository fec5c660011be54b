package rewrite

import (
	"sort"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Where a compared value stands decides whether it can meet a column whose
// values are under several key versions: see Expand.

// expandable marks the value v of node n, when n is a bare constant or
// parameter (no cast, no COLLATE, nothing around it), as able to meet
// several key versions in form f.
func (p *planner) expandable(n *pg_query.Node, v val, f Expand) {
	if p.stored || len(v.sites) != 1 {
		return
	}
	switch x := n.GetNode().(type) {
	case *pg_query.Node_AConst:
		if x.AConst.Isnull {
			return
		}
	case *pg_query.Node_ParamRef:
	default:
		return
	}
	v.sites[0].form = f
}

// expandArray marks the array operand n of = ANY or <> ALL: an array
// parameter takes every version's envelopes among its elements; a bare
// constant of an ARRAY[...] constructor is replaced by its envelopes.
func (p *planner) expandArray(n *pg_query.Node) {
	if p.stored {
		return
	}
	switch x := n.GetNode().(type) {
	case *pg_query.Node_TypeCast:
		p.expandArray(x.TypeCast.Arg)
	case *pg_query.Node_ParamRef:
		if s := p.siteAt[siteKey{p.stmt, x.ParamRef.Location}]; s != nil && s.array {
			s.form = ExpandElems
		}
	case *pg_query.Node_AArrayExpr:
		for _, e := range x.AArrayExpr.Elements {
			if k := e.GetAConst(); k != nil && !k.Isnull {
				if s := p.siteAt[siteKey{p.stmt, k.Location}]; s != nil {
					s.form = ExpandList
				}
			}
		}
	}
}

// expandInList marks the items of an IN list: a bare constant is replaced
// by its envelopes in place; a list made only of parameters is remembered,
// to be replaced by a subquery over their envelopes.
func (p *planner) expandInList(items []*pg_query.Node, vals []val) {
	if p.stored {
		return
	}
	var params []*site
	for i, it := range items {
		switch it.GetNode().(type) {
		case *pg_query.Node_AConst:
			p.expandable(it, vals[i], ExpandList)
		case *pg_query.Node_ParamRef:
			if len(vals[i].sites) == 1 {
				params = append(params, vals[i].sites[0])
			}
		}
	}
	if len(params) != len(items) || len(params) == 0 {
		return
	}
	start, _, ok1 := p.paramExtent(params[0].loc)
	_, end, ok2 := p.paramExtent(params[len(params)-1].loc)
	if !ok1 || !ok2 {
		return
	}
	l := &inList{start: start, end: end, params: params}
	for _, s := range params {
		if s.list != nil {
			return // analysed twice: keep the first
		}
	}
	for _, s := range params {
		s.form, s.list = ExpandList, l
	}
	p.lists = append(p.lists, l)
}

// paramExtent returns the byte range of the parameter token at loc.
func (p *planner) paramExtent(loc int32) (int, int, bool) {
	toks := p.scan()
	i := sort.Search(len(toks), func(i int) bool { return toks[i].Start >= loc })
	if i == len(toks) || toks[i].Start != loc || toks[i].Token != pg_query.Token_PARAM {
		return 0, 0, false
	}
	return int(toks[i].Start), int(toks[i].End), true
}

// paramExpand returns how a parameter with occurrences occ, used as use,
// meets several key versions: every occurrence bound to a column must
// stand where it can.
func paramExpand(occ []*site, use Use, array bool) Expand {
	if use != UseCompare {
		return ExpandNone
	}
	f := ExpandNone
	for _, s := range occ {
		if len(s.bindings) == 0 {
			continue
		}
		switch {
		case s.form == ExpandNone:
			return ExpandNone
		case array != (s.form == ExpandElems):
			return ExpandNone
		}
		if f == ExpandNone {
			f = s.form
		}
	}
	return f
}

// splitArg is the text of one parameter's envelopes as an array.
func splitArg(n int) string {
	return "pg_catalog.string_to_array($" + strconv.Itoa(n) + ", ',')"
}

// expansionSplices returns the splices of the joined parameters (by
// number, per group) and downgrades those in an IN list whose other
// parameters cannot be joined.
func (p *planner) expansionSplices(joined map[[2]int]bool, occs map[[2]int][]*site) []Splice {
	key := func(s *site) [2]int { return [2]int{s.group, s.param} }
	for changed := true; changed; {
		changed = false
		for _, l := range p.lists {
			all := true
			for _, s := range l.params {
				all = all && joined[key(s)]
			}
			if all {
				continue
			}
			for _, s := range l.params {
				if joined[key(s)] {
					joined[key(s)], changed = false, true
				}
			}
		}
	}
	var out []Splice
	for k, ok := range joined {
		if !ok {
			continue
		}
		for _, s := range occs[k] {
			if len(s.bindings) == 0 || s.form == ExpandList {
				continue
			}
			start, end, found := p.paramExtent(s.loc)
			if !found {
				continue
			}
			kw := "ANY ("
			if s.form == ExpandAll {
				kw = "ALL ("
			}
			out = append(out, Splice{Start: start, End: end, Text: kw + splitArg(s.param) + ")"})
		}
	}
	for _, l := range p.lists {
		if !joined[key(l.params[0])] {
			continue
		}
		var b strings.Builder
		b.WriteString("SELECT pg_catalog.unnest(")
		for i, s := range l.params {
			if i > 0 {
				b.WriteString(" || ")
			}
			b.WriteString(splitArg(s.param))
		}
		b.WriteString(")")
		out = append(out, Splice{Start: l.start, End: l.end, Text: b.String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out
}
