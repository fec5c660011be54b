package rewrite

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// DDL on policy tables. What DDL stores runs later inside PostgreSQL, where
// the proxy cannot encrypt: a column default, a CHECK constraint, an index
// predicate or expression, a row-security policy, a trigger's WHEN clause
// and arguments, a view's query. Values in them that belong to a policy
// column are encrypted where that is exactly right (a default is a value
// written to the column; an equality with a deterministic column works on
// ciphertext) and refused otherwise, never relaxed by on_unsupported:
// allow, as they are stored. Renaming a policy table, moving it to another
// schema or renaming a policy column would detach it from the policy, so
// that is refused too: change the policy first.

// ddlStmt analyses a utility statement. It reports false for statements
// it does not know, which touch no value of a policy column.
func (p *planner) ddlStmt(n *pg_query.Node, st *Statement) bool {
	defer func(old, stored bool) { p.noRelax, p.stored = old, stored }(p.noRelax, p.stored)
	p.noRelax, p.stored = true, true
	p.tieToPolicy(n)
	switch x := n.GetNode().(type) {
	case *pg_query.Node_AlterTableStmt:
		p.alterTable(x.AlterTableStmt)
	case *pg_query.Node_IndexStmt:
		p.createIndex(x.IndexStmt)
	case *pg_query.Node_CreatePolicyStmt:
		p.rowSecurity(x.CreatePolicyStmt.Table, x.CreatePolicyStmt.Qual, x.CreatePolicyStmt.WithCheck)
	case *pg_query.Node_AlterPolicyStmt:
		p.rowSecurity(x.AlterPolicyStmt.Table, x.AlterPolicyStmt.Qual, x.AlterPolicyStmt.WithCheck)
	case *pg_query.Node_CreateTrigStmt:
		p.createTrigger(x.CreateTrigStmt)
	case *pg_query.Node_ViewStmt:
		if name := p.mentionsPolicyRelation(x.ViewStmt.Query); name != "" {
			p.reject(ReasonSchemaChange, nil, "a view over policy table "+name+" would keep its query's values inside PostgreSQL and return envelopes the proxy cannot trace; query the table itself", false, x.ViewStmt.View.GetLocation())
		}
	case *pg_query.Node_RenameStmt:
		p.rename(x.RenameStmt)
	case *pg_query.Node_AlterObjectSchemaStmt:
		if rv := x.AlterObjectSchemaStmt.Relation; rv != nil {
			if t := p.policyTarget(rv); t != nil {
				p.reject(ReasonSchemaChange, nil, "moving policy table "+t.schema+"."+t.name+" to another schema would take it out of the policy; change the policy first", false, rv.Location)
			}
			if t := p.pol.table(x.AlterObjectSchemaStmt.Newschema, rv.Relname); t != nil {
				p.reject(ReasonSchemaChange, nil, "moving a relation to "+t.schema+"."+t.name+", the name of a policy table, would put its values under the policy unencrypted", false, rv.Location)
			}
		}
	case *pg_query.Node_CreateSchemaStmt:
		// Its elements are created in the new schema, which the proxy
		// does not resolve names against; they are not analysed.
		for _, e := range x.CreateSchemaStmt.SchemaElts {
			if name := p.mentionsPolicyRelation(e); name != "" {
				p.reject(ReasonSchemaChange, nil, "CREATE SCHEMA with objects in it that name "+name+", the name of a policy table, is not analysed; create the schema, then each object with a statement of its own", false, -1)
				break
			}
		}
	case *pg_query.Node_CreateStmt:
		p.createTable(x.CreateStmt)
	case *pg_query.Node_CreateStatsStmt:
		// Extended statistics on expressions compute them on ciphertext
		// and keep their constants in the catalog.
		for _, r := range x.CreateStatsStmt.Relations {
			if rv := r.GetRangeVar(); rv != nil {
				if sc, t := p.watchedTableScope(rv); t != nil {
					for _, e := range x.CreateStatsStmt.Exprs {
						if se := e.GetStatsElem(); se != nil && se.Expr != nil {
							p.plainUse(p.expr(se.Expr, sc), "an extended statistics expression", exprLocation(se.Expr))
						}
					}
				}
			}
		}
	case *pg_query.Node_CreatePublicationStmt:
		p.publication(x.CreatePublicationStmt.Pubobjects)
	case *pg_query.Node_AlterPublicationStmt:
		p.publication(x.AlterPublicationStmt.Pubobjects)
	case *pg_query.Node_AlterDomainStmt:
		// A domain's default and CHECK apply, as written, to every column
		// of that type; the proxy cannot tell whether an encrypted one is
		// among them.
		if d := x.AlterDomainStmt; (d.Subtype == "T" && d.Def != nil) || d.Subtype == "C" {
			p.reject(ReasonSchemaChange, nil, "ALTER DOMAIN … SET DEFAULT or ADD CONSTRAINT applies unencrypted to every column of the domain, encrypted ones included; run it directly on the server", false, int32(st.Start))
		}
	default:
		return false
	}
	return true
}

// isPolicyRV reports whether rv resolves to a policy table.
func (p *planner) isPolicyRV(rv *pg_query.RangeVar) bool {
	if rv == nil {
		return false
	}
	r := p.rels[RelName{Schema: rv.Schemaname, Name: rv.Relname}]
	return r.Kind == RelTable && p.pol.table(r.Schema, r.Name) != nil
}

// policyTarget resolves the relation a DDL statement acts on, qualifying
// its name like a DML target's, and returns its policy table, or nil.
func (p *planner) policyTarget(rv *pg_query.RangeVar) *policyTable {
	if rv == nil {
		return nil
	}
	it := p.rangeVarItem(newScope(nil), rv, true)
	return it.ptable
}

// watchedTableScope is tableScope for a relation named like a policy
// table, and nil otherwise.
func (p *planner) watchedTableScope(rv *pg_query.RangeVar, extra ...string) (*scope, *policyTable) {
	if rv == nil {
		return nil, nil
	}
	if _, watched := p.az.names[rv.Relname]; !watched {
		return nil, nil
	}
	return p.tableScope(rv, extra...)
}

// publication checks the row filters of a publication's policy tables:
// stored conditions, evaluated on ciphertext.
func (p *planner) publication(objs []*pg_query.Node) {
	for _, o := range objs {
		pt := o.GetPublicationObjSpec().GetPubtable()
		if pt == nil || pt.Relation == nil || pt.WhereClause == nil {
			continue
		}
		if sc, t := p.watchedTableScope(pt.Relation); t != nil {
			p.condition(pt.WhereClause, sc, "a publication row filter")
		}
	}
}

// foreignKey checks a foreign key from policy table t's columns fk to
// pktable's columns pk: ON UPDATE CASCADE and friends copy the referenced
// values into the policy column, and the comparison is on ciphertext, so
// each referenced column must be encrypted the same way.
func (p *planner) foreignKey(t *policyTable, fk, pk []*pg_query.Node, pktable *pg_query.RangeVar, loc int32) {
	var ref *policyTable
	if pktable != nil {
		if r := p.rels[RelName{Schema: pktable.Schemaname, Name: pktable.Relname}]; r.Kind == RelTable {
			ref = p.pol.table(r.Schema, r.Name)
		}
	}
	for i, a := range fk {
		col := t.cols[strVal(a)]
		if col == nil {
			continue
		}
		var target *Column
		if ref != nil && i < len(pk) {
			target = ref.cols[strVal(pk[i])]
		}
		if target == nil || !encryptsAlike(col, target) {
			p.reject(ReasonSchemaChange, col, "a foreign key from an encrypted column must reference a column encrypted the same way (same key, associated_data and search mode), named in the REFERENCES list; a plain one would be compared with ciphertext and cascade plaintext into it", false, loc)
		}
	}
}

// tableScope is a scope holding the target table under its name and the
// given extra names (NEW and OLD for a trigger's WHEN clause).
func (p *planner) tableScope(rv *pg_query.RangeVar, extra ...string) (*scope, *policyTable) {
	sc := newScope(nil)
	it := p.rangeVarItem(sc, rv, true)
	sc.items = append(sc.items, it)
	for _, name := range extra {
		cp := *it
		cp.refname = name
		sc.items = append(sc.items, &cp)
	}
	return sc, it.ptable
}

// condition analyses a stored boolean expression (CHECK, index predicate,
// row-security qualifier, trigger WHEN) over the table's columns.
func (p *planner) condition(e *pg_query.Node, sc *scope, what string) {
	if e == nil {
		return
	}
	p.plainUse(p.expr(e, sc), what, exprLocation(e))
}

// typeCascade refuses ALTER TYPE … CASCADE on attributes.
const typeCascade = "ALTER TYPE … CASCADE changes the columns of the tables typed by it (CREATE TABLE … OF), a table with encrypted columns among them perhaps; run it directly on the server"

func (p *planner) alterTable(s *pg_query.AlterTableStmt) {
	if s.Objtype == pg_query.ObjectType_OBJECT_TYPE {
		for _, c := range s.Cmds {
			if c.GetAlterTableCmd().GetBehavior() == pg_query.DropBehavior_DROP_CASCADE {
				p.reject(ReasonSchemaChange, nil, typeCascade, false, s.Relation.GetLocation())
				return
			}
		}
	}
	// Whatever the keyword (ALTER VIEW, ALTER FOREIGN TABLE, ALTER
	// INDEX …): PostgreSQL may apply it to the table, or log it before it
	// refuses.
	sc, t := p.watchedTableScope(s.Relation)
	if t == nil {
		return
	}
	for _, c := range s.Cmds {
		cmd := c.GetAlterTableCmd()
		if cmd == nil {
			continue
		}
		col := t.cols[cmd.Name]
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_ColumnDefault:
			if col != nil && cmd.Def != nil {
				p.write(col, p.expr(cmd.Def, newScope(nil)), exprLocation(cmd.Def))
			}
		case pg_query.AlterTableType_AT_AddColumn:
			if cd := cmd.Def.GetColumnDef(); cd != nil {
				p.columnDef(cd, t.cols[cd.Colname], sc, t)
			}
		case pg_query.AlterTableType_AT_AlterColumnType:
			cd := cmd.Def.GetColumnDef()
			if cd == nil {
				continue
			}
			if col != nil {
				if prob := castProblem(cd.TypeName, false); prob != "" {
					p.reject(ReasonCast, col, prob, false, cd.Location)
				}
				if cd.RawDefault != nil { // USING
					p.write(col, p.expr(cd.RawDefault, sc), exprLocation(cd.RawDefault))
				}
			} else if cd.RawDefault != nil {
				p.plainUse(p.expr(cd.RawDefault, sc), "ALTER COLUMN "+cmd.Name+" TYPE … USING", exprLocation(cd.RawDefault))
			}
		case pg_query.AlterTableType_AT_SetExpression:
			if col != nil {
				p.reject(ReasonSchemaChange, col, "a generated column would be computed inside PostgreSQL, unencrypted", false, -1)
			} else if cmd.Def != nil {
				p.plainUse(p.expr(cmd.Def, sc), "a generation expression", exprLocation(cmd.Def))
			}
		case pg_query.AlterTableType_AT_AddConstraint:
			if cn := cmd.Def.GetConstraint(); cn != nil {
				p.constraint(cn, t, sc)
			}
		}
	}
}

// columnDef checks a column added to policy table t (col is its policy
// column, or nil). sc is the table's scope, nil for a table being created,
// whose constraint expressions over policy columns cannot be analysed.
func (p *planner) columnDef(cd *pg_query.ColumnDef, col *Column, sc *scope, t *policyTable) {
	if col != nil {
		if prob := castProblem(cd.TypeName, false); prob != "" && cd.TypeName != nil {
			p.reject(ReasonCast, col, "type "+strings.TrimPrefix(prob, "a cast to "), false, cd.Location)
		}
		if cd.RawDefault != nil {
			p.write(col, p.expr(cd.RawDefault, newScope(nil)), exprLocation(cd.RawDefault))
		}
	}
	for _, cn := range cd.Constraints {
		c := cn.GetConstraint()
		if c == nil {
			continue
		}
		switch c.Contype {
		case pg_query.ConstrType_CONSTR_DEFAULT:
			if col != nil && c.RawExpr != nil {
				p.write(col, p.expr(c.RawExpr, newScope(nil)), exprLocation(c.RawExpr))
			}
		case pg_query.ConstrType_CONSTR_GENERATED, pg_query.ConstrType_CONSTR_CHECK:
			switch {
			case col != nil && c.Contype == pg_query.ConstrType_CONSTR_GENERATED:
				p.reject(ReasonSchemaChange, col, "a generated column would be computed inside PostgreSQL, unencrypted", false, c.Location)
			case sc != nil:
				p.condition(c.RawExpr, sc, "a column constraint or generation expression")
			case col != nil:
				p.reject(ReasonSchemaChange, col, "a CHECK constraint on an encrypted column of a new table cannot be checked; add it after the table exists, through the proxy", false, c.Location)
			default:
				p.newTableExprs([]*pg_query.Node{cn}, t)
			}
		case pg_query.ConstrType_CONSTR_UNIQUE, pg_query.ConstrType_CONSTR_PRIMARY:
			p.uniqueOn(col, c.Location)
		case pg_query.ConstrType_CONSTR_FOREIGN:
			if col != nil {
				p.foreignKey(t, []*pg_query.Node{pg_query.MakeStrNode(cd.Colname)}, c.PkAttrs, c.Pktable, c.Location)
			}
		}
	}
}

// uniqueOn refuses a unique index or constraint on randomized column col
// (nil for a plain column): it would silently stop working.
func (p *planner) uniqueOn(col *Column, loc int32) {
	if col != nil && col.mode != Deterministic {
		p.reject(ReasonSchemaChange, col, "a unique index or constraint on a randomized column would never find two values equal; use search: equality", false, loc)
	}
}

// constraint checks a table constraint added to policy table t.
func (p *planner) constraint(c *pg_query.Constraint, t *policyTable, sc *scope) {
	switch c.Contype {
	case pg_query.ConstrType_CONSTR_CHECK:
		p.condition(c.RawExpr, sc, "a CHECK constraint")
	case pg_query.ConstrType_CONSTR_UNIQUE, pg_query.ConstrType_CONSTR_PRIMARY:
		for _, k := range c.Keys {
			p.uniqueOn(t.cols[strVal(k)], c.Location)
		}
	case pg_query.ConstrType_CONSTR_FOREIGN:
		p.foreignKey(t, c.FkAttrs, c.PkAttrs, c.Pktable, c.Location)
	case pg_query.ConstrType_CONSTR_EXCLUSION:
		for _, e := range c.Exclusions {
			if items := e.GetList().GetItems(); len(items) > 0 {
				if ie := items[0].GetIndexElem(); ie != nil {
					p.indexElem(ie, t, sc, "an exclusion constraint")
				}
			}
		}
		p.condition(c.WhereClause, sc, "an exclusion constraint's predicate")
	}
}

func (p *planner) indexElem(ie *pg_query.IndexElem, t *policyTable, sc *scope, what string) {
	if ie.Expr != nil {
		p.plainUse(p.expr(ie.Expr, sc), "an index expression", exprLocation(ie.Expr))
		return
	}
	if col := t.cols[ie.Name]; col != nil && len(ie.Opclass) > 0 {
		p.reject(ReasonSchemaChange, col, what+" with an operator class compares ciphertext, not values", false, -1)
	}
}

func (p *planner) createIndex(s *pg_query.IndexStmt) {
	sc, t := p.watchedTableScope(s.Relation)
	if t == nil {
		return
	}
	for _, e := range s.IndexParams {
		ie := e.GetIndexElem()
		if ie == nil {
			continue
		}
		p.indexElem(ie, t, sc, "an index")
		if s.Unique {
			p.uniqueOn(t.cols[ie.Name], -1)
		}
	}
	p.condition(s.WhereClause, sc, "an index predicate")
}

func (p *planner) rowSecurity(rv *pg_query.RangeVar, qual, check *pg_query.Node) {
	if rv == nil || (qual == nil && check == nil) {
		return
	}
	// On any table: a policy's subqueries may read policy tables.
	sc, _ := p.tableScope(rv)
	p.condition(qual, sc, "a row-security policy")
	p.condition(check, sc, "a row-security policy")
}

func (p *planner) createTrigger(s *pg_query.CreateTrigStmt) {
	sc, t := p.watchedTableScope(s.Relation, "new", "old")
	if t == nil {
		return
	}
	// The function's body is in the server's catalog, out of sight: it may
	// write what it likes into the encrypted columns (NEW.x := …), and
	// its arguments are stored unencrypted.
	p.reject(ReasonSchemaChange, nil, "a trigger on policy table "+t.schema+"."+t.name+" runs a function the proxy cannot see, which may write plaintext into its encrypted columns; create the trigger directly on the server after reviewing the function", false, s.Relation.Location)
	p.condition(s.WhenClause, sc, "a trigger's WHEN condition")
}

// mentionsPolicyRelation returns the name of a relation in n named like a
// policy table, or "".
func (p *planner) mentionsPolicyRelation(n *pg_query.Node) string {
	if n == nil {
		return ""
	}
	found := ""
	walkRangeVars(n.ProtoReflect(), func(rv *pg_query.RangeVar) {
		if _, ok := p.az.names[rv.Relname]; ok && found == "" {
			found = quoteIdent(RelName{Schema: rv.Schemaname, Name: rv.Relname}.String())
		}
	})
	return found
}

// plainUse records that v is used where its value must stay as it is:
// computed on, returned, or stored elsewhere by PostgreSQL. A policy
// column in it is refused (it would be computed on as ciphertext), and
// every parameter or literal in it is marked, so that one also bound to a
// policy column is refused rather than encrypted for one use and wrong for
// the other.
func (p *planner) plainUse(v val, what string, loc int32) {
	for _, c := range v.cols {
		p.reject(ReasonOperator, c, what, !p.noRelax, loc)
	}
	for _, s := range v.sites {
		s.plain = true
	}
	for _, r := range v.row {
		p.plainUse(r, what, loc)
	}
}

// walkNodes calls fn for n and every Node inside it, at any depth.
func walkNodes(n *pg_query.Node, fn func(*pg_query.Node)) {
	if n == nil {
		return
	}
	fn(n)
	forEachNode(n.ProtoReflect(), func(c *pg_query.Node) { walkNodes(c, fn) })
}

// walkRangeVars calls fn for every RangeVar in m, at any depth, whether a
// field holds it directly or wrapped in a Node.
func walkRangeVars(m protoreflect.Message, fn func(*pg_query.RangeVar)) {
	if m.Descriptor() == rangeVarDesc {
		fn(m.Interface().(*pg_query.RangeVar))
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkRangeVars(l.Get(i).Message(), fn)
			}
		} else {
			walkRangeVars(v.Message(), fn)
		}
		return true
	})
}
