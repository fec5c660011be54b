package rewrite

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// wholeTableFuncs read whole tables, queries or cursors inside the server
// and return their values in one document, where the proxy cannot find
// the encrypted columns to decrypt them (or encrypt the query's literals).
// The value says what the first argument names.
var wholeTableFuncs = map[string]byte{
	"table_to_xml": 't', "table_to_xmlschema": 't', "table_to_xml_and_xmlschema": 't',
	"query_to_xml": 'q', "query_to_xmlschema": 'q', "query_to_xml_and_xmlschema": 'q',
	"schema_to_xml": 's', "schema_to_xmlschema": 's', "schema_to_xml_and_xmlschema": 's',
	"cursor_to_xml": 'c', "cursor_to_xmlschema": 'c',
	"database_to_xml": 'd', "database_to_xmlschema": 'd', "database_to_xml_and_xmlschema": 'd',
	// ts_stat runs its query and returns the words of its values;
	// ts_rewrite's second argument is a query too.
	"ts_stat": 'q', "ts_rewrite": 'r',
	// The server's files, a policy table's among them.
	"pg_read_file": 'd', "pg_read_binary_file": 'd',
	// dblink runs SQL on another connection, which bypasses the proxy (a
	// loopback connection writes plaintext into a policy table).
	"dblink": 'd', "dblink_exec": 'd', "dblink_send_query": 'd', "dblink_open": 'd', "dblink_fetch": 'd',
	"dblink_get_result": 'd', "dblink_build_sql_insert": 'd', "dblink_build_sql_update": 'd', "dblink_build_sql_delete": 'd',
}

// WholeTableFuncNames are the names of the functions that read whole
// tables, queries, cursors or schemas inside the server, for a scan of
// statement text (see MentionsAnyWord).
func WholeTableFuncNames() []string {
	out := make([]string, 0, len(wholeTableFuncs))
	for n := range wholeTableFuncs {
		out = append(out, n)
	}
	return out
}

// wholeTableFunc refuses a wholeTableFuncs call that may reach a policy
// table: one whose table, query or schema argument names one or is not a
// constant, and every cursor and database form.
func (p *planner) wholeTableFunc(base string, f *pg_query.FuncCall) {
	kind, ok := wholeTableFuncs[base]
	if !ok {
		return
	}
	arg := ""
	known := false
	argAt := 0
	if kind == 'r' {
		if len(f.Args) < 2 {
			return // ts_rewrite(tsquery, tsquery, tsquery) runs no query
		}
		kind, argAt = 'q', 1
	}
	if len(f.Args) > argAt {
		a := f.Args[argAt]
		for a.GetTypeCast() != nil {
			a = a.GetTypeCast().Arg
		}
		if k := a.GetAConst(); k != nil && k.GetSval() != nil {
			arg, known = k.GetSval().Sval, true
			p.constContent = true
		}
	}
	reach := !known
	switch kind {
	case 't', 'q':
		reach = reach || p.az.textMentionsPolicy(arg) != ""
	case 's':
		for _, t := range p.pol.tables {
			reach = reach || strings.EqualFold(t.schema, strings.Trim(arg, `"`))
		}
	default:
		reach = true
	}
	if reach {
		p.reject(ReasonWholeTable, nil, strings.Join(names(f.Funcname), "."), false, f.Location)
	}
}

var aggregates = map[string]bool{
	"min": true, "max": true, "sum": true, "avg": true, "string_agg": true, "array_agg": true,
	"json_agg": true, "jsonb_agg": true, "json_object_agg": true, "jsonb_object_agg": true,
	"json_agg_strict": true, "jsonb_agg_strict": true, "json_objectagg": true, "json_arrayagg": true,
	"bool_and": true, "bool_or": true, "every": true, "bit_and": true, "bit_or": true, "bit_xor": true,
	"xmlagg": true, "mode": true, "percentile_cont": true, "percentile_disc": true, "any_value": true,
	"range_agg": true, "range_intersect_agg": true, "stddev": true, "stddev_pop": true, "stddev_samp": true,
	"variance": true, "var_pop": true, "var_samp": true, "corr": true, "covar_pop": true, "covar_samp": true,
	"rank": true, "dense_rank": true, "percent_rank": true, "cume_dist": true,
}

func (p *planner) funcCall(f *pg_query.FuncCall, sc *scope) val {
	fn := names(f.Funcname)
	display := strings.Join(fn, ".")
	base := ""
	if len(fn) == 1 || (len(fn) == 2 && fn[0] == "pg_catalog") {
		base = fn[len(fn)-1]
	}
	isAgg := f.AggStar || f.AggDistinct || len(f.AggOrder) > 0 || f.AggFilter != nil || f.AggWithinGroup || aggregates[base]
	p.wholeTableFunc(base, f)
	for _, a := range f.Args {
		v := p.expr(a, sc)
		if !v.hasPolicy() {
			markPlain(v) // the function computes on it as written
			continue
		}
		switch {
		case base == "count":
			if f.AggDistinct {
				p.grouping(v, "count(DISTINCT)", f.Location)
			}
		case isAgg:
			p.useOpaque(v, ReasonAggregate, display, f.Location)
		default:
			p.useOpaque(v, ReasonFunction, display, f.Location)
		}
	}
	for _, o := range f.AggOrder {
		if sb := o.GetSortBy(); sb != nil {
			p.useOpaque(p.expr(sb.Node, sc), ReasonOrderBy, "ORDER BY inside "+display+"()", f.Location)
		}
	}
	p.useOpaque(p.expr(f.AggFilter, sc), ReasonOperator, "an aggregate FILTER condition", f.Location)
	if f.Over != nil {
		p.windowDef(f.Over, sc)
	}
	return plainVal("the result of " + display + "()")
}

func (p *planner) windowDef(w *pg_query.WindowDef, sc *scope) {
	for _, e := range w.PartitionClause {
		p.grouping(p.expr(e, sc), "PARTITION BY", w.Location)
	}
	for _, o := range w.OrderClause {
		if sb := o.GetSortBy(); sb != nil {
			p.useOpaque(p.expr(sb.Node, sc), ReasonOrderBy, "window ORDER BY", w.Location)
		}
	}
	p.expr(w.StartOffset, sc)
	p.expr(w.EndOffset, sc)
}
