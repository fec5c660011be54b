package rewrite

// val is what analysis knows about the value of an expression: which
// stored policy values, which parameters and literals, and which other
// (unencrypted) values may flow into it.
type val struct {
	cols  []*Column // policy columns whose stored (encrypted) values may flow here
	sites []*site   // parameters and literals whose value flows here unchanged
	// plain, when set, says what unencrypted value may flow here ("column
	// public.orders.note", "the result of lower()", ...).
	plain string
	// direct is true when the value is exactly one policy column reached
	// through plain column references (through subqueries, CTEs and
	// joins), which the server reports in RowDescription as that table's
	// OID and attnum.
	direct bool
	// via says what made a policy value untraceable ("UNION", "CASE", ...).
	via string
	// row is set for row values: ROW(a, b), (a, b), multi-column subqueries.
	row []val
}

func colVal(c *Column) val { return val{cols: []*Column{c}, direct: true} }

func plainVal(what string) val { return val{plain: what} }

// hasPolicy reports whether a stored policy value may flow here.
func (v val) hasPolicy() bool {
	if len(v.cols) > 0 {
		return true
	}
	for _, r := range v.row {
		if r.hasPolicy() {
			return true
		}
	}
	return false
}

// indirect returns v marked as no longer traceable, because of via.
func (v val) indirect(via string) val {
	if v.row != nil {
		rows := make([]val, len(v.row))
		for i, r := range v.row {
			rows[i] = r.indirect(via)
		}
		v.row = rows
	}
	if v.direct || v.via == "" {
		v.via = via
	}
	v.direct = false
	return v
}

// mergeVals returns a value that may be any of vs (UNION branches, CASE
// results, COALESCE arguments, VALUES rows). The result is not traceable.
func mergeVals(via string, vs ...val) val {
	switch len(vs) {
	case 0:
		return val{}
	case 1:
		return vs[0]
	}
	if n := len(vs[0].row); n > 0 {
		rows := true
		for _, v := range vs {
			rows = rows && len(v.row) == n
		}
		if rows {
			out := val{row: make([]val, n)}
			col := make([]val, len(vs))
			for i := range n {
				for j, v := range vs {
					col[j] = v.row[i]
				}
				out.row[i] = mergeVals(via, col...)
			}
			return out
		}
	}
	var out val
	for _, v := range vs {
		if v.row != nil {
			v = flattenRow(v)
		}
		for _, c := range v.cols {
			out.cols = appendCol(out.cols, c)
		}
		out.sites = append(out.sites, v.sites...)
		if out.plain == "" {
			out.plain = v.plain
		}
		if out.via == "" && !v.direct {
			out.via = v.via
		}
	}
	if len(out.cols) > 0 && out.via == "" {
		out.via = via
	}
	return out
}

// flattenRow turns a row into one value carrying all its parts.
func flattenRow(v val) val {
	out := val{plain: v.plain}
	for _, r := range v.row {
		r = flattenRow(r)
		for _, c := range r.cols {
			out.cols = appendCol(out.cols, c)
		}
		out.sites = append(out.sites, r.sites...)
		if out.plain == "" {
			out.plain = r.plain
		}
	}
	out.cols = append(out.cols, v.cols...)
	out.sites = append(out.sites, v.sites...)
	if out.plain == "" {
		out.plain = "a row value"
	}
	out.via = "a row value"
	return out
}

func appendCol(cs []*Column, c *Column) []*Column {
	for _, x := range cs {
		if x == c {
			return cs
		}
	}
	return append(cs, c)
}
