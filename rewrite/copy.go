package rewrite

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func (p *planner) copyStmt(s *pg_query.CopyStmt) *Copy {
	cp := &Copy{From: s.IsFrom, Stdio: s.Filename == "" && !s.IsProgram}
	copyOptions(cp, s.Options)

	var cols []*Column
	if s.Query != nil {
		// COPY (query) TO: fields are the query's output columns. There is
		// no RowDescription, so the proxy decrypts by position; any policy
		// value must come straight from one column.
		out := p.query(s.Query, newScope(nil))
		if out.open && outHasPolicy(out) {
			p.reject(ReasonColumnsUnknown, firstPolicyCol(out), "the COPY query's *", true, -1)
			return cp
		}
		for _, c := range out.cols {
			v := c.v
			if v.row != nil {
				v = flattenRow(v)
			}
			switch {
			case len(v.cols) == 0 && len(v.sites) == 0:
				cols = append(cols, nil)
			case len(v.cols) == 1 && v.plain == "" && len(v.sites) == 0:
				cols = append(cols, v.cols[0])
			default:
				p.output(v, -1)
				cols = append(cols, nil)
			}
		}
	} else if s.Relation != nil {
		sc := newScope(nil)
		target := p.rangeVarItem(sc, s.Relation, s.IsFrom)
		sc.items = []*item{target}
		if len(s.Attlist) > 0 {
			for _, a := range s.Attlist {
				cols = append(cols, target.policyCol(strVal(a)))
			}
		} else if target.ptable != nil {
			if target.rel.Columns == nil {
				p.reject(ReasonColumnsUnknown, nil, target.desc, !s.IsFrom, s.Relation.Location)
				return cp
			}
			var names []string
			for i, name := range target.rel.Columns {
				if i < len(target.rel.Generated) && target.rel.Generated[i] {
					continue // not a COPY field
				}
				cols = append(cols, target.ptable.cols[name])
				names = append(names, name)
			}
			p.nameColumns(s.Relation, names, false)
		}
		// COPY FROM ... WHERE filters incoming (already encrypted) rows.
		p.useOpaque(p.expr(s.WhereClause, sc), ReasonOperator, "a COPY WHERE condition", -1)
	}
	if !hasCol(cols) {
		return cp
	}
	if !cp.Stdio {
		if s.IsFrom {
			for _, c := range cols {
				if c != nil {
					p.reject(ReasonCopyServerSide, c, "", false, -1)
					break
				}
			}
		}
		return cp
	}
	cp.Columns = cols
	return cp
}

// copyOptions reads COPY's options as PostgreSQL's ProcessCopyOptions
// does, as far as they decide how the data reads; anything it would refuse
// sets cp.Invalid.
func copyOptions(cp *Copy, opts []*pg_query.Node) {
	seen := map[string]bool{}
	invalid := func(why string) {
		if cp.Invalid == "" {
			cp.Invalid = why
		}
	}
	for _, o := range opts {
		de := o.GetDefElem()
		if de == nil {
			invalid("an option the proxy cannot read")
			continue
		}
		name := de.Defname // the grammar folds unquoted names to lower case
		if seen[name] {
			invalid("option " + name + " is given twice")
		}
		seen[name] = true
		arg := defElemString(de.Arg)
		switch name {
		case "format":
			switch arg { // compared as given, as PostgreSQL does
			case "text":
				cp.Format = CopyText
			case "csv":
				cp.Format = CopyCSV
			case "binary":
				cp.Format = CopyBinary
			default:
				invalid("COPY format " + QuoteLiteral(arg) + " is not recognized")
			}
		case "delimiter":
			cp.Delimiter = arg
		case "null":
			cp.Null, cp.NullSet = arg, true
		case "quote":
			cp.Quote = arg
		case "escape":
			cp.Escape = arg
		case "default":
			cp.Default = arg
		case "encoding":
			cp.Encoding = arg
		case "header":
			switch {
			case de.Arg == nil:
				cp.Header = true
			case de.Arg.GetInteger() != nil:
				switch de.Arg.GetInteger().Ival {
				case 0:
				case 1:
					cp.Header = true
				default:
					invalid("option header takes a Boolean value or match")
				}
			default:
				switch strings.ToLower(arg) {
				case "true", "on", "match":
					cp.Header = true
				case "false", "off":
				default:
					invalid("option header takes a Boolean value or match")
				}
			}
		case "force_null", "force_not_null":
			cp.ForceNull = true
		case "force_quote", "freeze":
		default:
			invalid("COPY option " + name + " is not recognized")
		}
	}
}

// defElemString returns an option argument as text.
func defElemString(n *pg_query.Node) string {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_String_:
		return x.String_.Sval
	case *pg_query.Node_Boolean:
		if x.Boolean.Boolval {
			return "true"
		}
		return "false"
	case *pg_query.Node_Integer:
		if x.Integer.Ival == 0 {
			return "0"
		}
		return "1"
	}
	return ""
}
