package rewrite

import pg_query "github.com/pganalyze/pg_query_go/v6"

// DDL that changes which tables are policy tables or what their columns
// are called: a new table under a policy table's name, renames and moves,
// and ties to other tables (partitions, inheritance, typed tables) through
// which code written for them would reach a policy table's rows.

// tieToPolicy refuses DDL that makes a table named like a policy table a
// partition, inheritance child or parent of another table, or the reverse
// (CREATE TABLE … PARTITION OF or INHERITS, ATTACH PARTITION, INHERIT).
// Code and triggers written for the other table, seen when they were
// created as touching no policy table, would then reach the policy
// table's rows unseen: a function's INSERT into the parent lands in the
// partition, the parent's row triggers are copied onto it.
func (p *planner) tieToPolicy(n *pg_query.Node) {
	watched := func(rv *pg_query.RangeVar) bool {
		if rv == nil {
			return false
		}
		_, ok := p.az.names[rv.Relname]
		return ok
	}
	refuse := func(rv *pg_query.RangeVar) {
		p.reject(ReasonSchemaChange, nil, "making a table with encrypted columns a partition, child or parent of another table, or a typed table (OF type), would let code, triggers and ALTER TYPE … CASCADE written for the other reach its rows unseen; do it directly on the server, after review", false, rv.Location)
	}
	switch x := n.GetNode().(type) {
	case *pg_query.Node_CreateStmt:
		if x.CreateStmt.OfTypename != nil && watched(x.CreateStmt.Relation) {
			refuse(x.CreateStmt.Relation) // a typed table: ALTER TYPE … CASCADE changes its columns
			return
		}
		for _, in := range x.CreateStmt.InhRelations {
			if rv := in.GetRangeVar(); watched(rv) || (rv != nil && watched(x.CreateStmt.Relation)) {
				refuse(x.CreateStmt.Relation)
				return
			}
		}
	case *pg_query.Node_AlterTableStmt:
		s := x.AlterTableStmt
		for _, c := range s.Cmds {
			cmd := c.GetAlterTableCmd()
			if cmd == nil {
				continue
			}
			var other *pg_query.RangeVar
			switch cmd.Subtype {
			case pg_query.AlterTableType_AT_AddInherit:
				other = cmd.Def.GetRangeVar()
			case pg_query.AlterTableType_AT_AttachPartition:
				other = cmd.Def.GetPartitionCmd().GetName()
			case pg_query.AlterTableType_AT_AddOf:
				// A typed table: ALTER TYPE … CASCADE renames and
				// retypes its columns under the type's name.
				if watched(s.Relation) {
					refuse(s.Relation)
					return
				}
				continue
			default:
				continue
			}
			if watched(other) || watched(s.Relation) {
				refuse(s.Relation)
				return
			}
		}
	}
}

func (p *planner) rename(s *pg_query.RenameStmt) {
	switch s.RenameType {
	// PostgreSQL renames a table under any of these keywords (ALTER INDEX
	// legacy_notes RENAME TO …), and any relation into a policy table's
	// name.
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
		pg_query.ObjectType_OBJECT_INDEX, pg_query.ObjectType_OBJECT_FOREIGN_TABLE, pg_query.ObjectType_OBJECT_SEQUENCE:
		if s.Relation == nil {
			return
		}
		if t := p.policyTarget(s.Relation); t != nil {
			p.reject(ReasonSchemaChange, nil, "renaming policy table "+t.schema+"."+t.name+" would take it out of the policy; change the policy first (associated_data keeps old values readable)", false, s.Relation.Location)
		}
		if _, ok := p.pol.names[s.Newname]; ok {
			p.reject(ReasonSchemaChange, nil, "renaming a table to "+quoteIdent(s.Newname)+", the name of a policy table, would put its values under the policy unencrypted", false, s.Relation.Location)
		}
	case pg_query.ObjectType_OBJECT_ATTRIBUTE:
		if s.Behavior == pg_query.DropBehavior_DROP_CASCADE {
			p.reject(ReasonSchemaChange, nil, typeCascade, false, s.Relation.GetLocation())
			return
		}
		fallthrough
	case pg_query.ObjectType_OBJECT_COLUMN:
		// Also through ALTER VIEW, ALTER FOREIGN TABLE, ALTER
		// MATERIALIZED VIEW and ALTER TYPE … RENAME ATTRIBUTE (of a
		// table's row type), which rename a table's columns too.
		if s.Relation == nil {
			return
		}
		if t := p.policyTarget(s.Relation); t != nil {
			for _, name := range []string{s.Subname, s.Newname} {
				if col := t.cols[name]; col != nil {
					p.reject(ReasonSchemaChange, col, "renaming an encrypted column, or another column to its name, detaches it from the policy; change the policy first (associated_data keeps old values readable)", false, s.Relation.Location)
				}
			}
		}
	case pg_query.ObjectType_OBJECT_SCHEMA:
		for _, t := range p.pol.tables {
			if t.schema == s.Subname || t.schema == s.Newname {
				p.reject(ReasonSchemaChange, nil, "renaming schema "+quoteIdent(s.Subname)+" would move policy table "+t.schema+"."+t.name+" out of the policy or another table into it; change the policy first", false, -1)
				return
			}
		}
	}
}

// createTable checks CREATE TABLE of a policy table's name: defaults,
// generated columns and constraints on its policy columns.
func (p *planner) createTable(s *pg_query.CreateStmt) {
	if s.Relation == nil {
		return
	}
	// The table does not exist yet: take the policy's table of that name
	// in the schema written, or any of that name; or, for a partition or
	// inheritance child of a policy table, the parent's policy columns,
	// which it inherits.
	var t *policyTable
	if _, watched := p.az.names[s.Relation.Relname]; watched {
		for _, pt := range p.pol.tables {
			if pt.name == s.Relation.Relname && (s.Relation.Schemaname == "" || s.Relation.Schemaname == pt.schema) {
				t = pt
				break
			}
		}
	}
	for _, in := range s.InhRelations {
		if rv := in.GetRangeVar(); rv != nil && t == nil {
			if r := p.rels[RelName{Schema: rv.Schemaname, Name: rv.Relname}]; r.Kind == RelTable {
				t = p.pol.table(r.Schema, r.Name)
			}
		}
	}
	// LIKE a policy table INCLUDING DEFAULTS copies its encrypted defaults
	// into a table outside the policy.
	for _, e := range s.TableElts {
		if lc := e.GetTableLikeClause(); lc != nil && p.isPolicyRV(lc.Relation) && lc.Options&createTableLikeDefaults != 0 {
			p.reject(ReasonSchemaChange, nil, "CREATE TABLE (LIKE "+quoteIdent(lc.Relation.Relname)+" INCLUDING DEFAULTS) would copy encrypted defaults out of the policy; leave defaults out (EXCLUDING DEFAULTS)", false, lc.Relation.Location)
		}
	}
	if t == nil {
		return
	}
	for _, e := range s.TableElts {
		if cd := e.GetColumnDef(); cd != nil {
			p.columnDef(cd, t.cols[cd.Colname], nil, t)
		}
		if c := e.GetConstraint(); c != nil {
			p.newTableExprs([]*pg_query.Node{e}, t)
			if c.Contype == pg_query.ConstrType_CONSTR_UNIQUE || c.Contype == pg_query.ConstrType_CONSTR_PRIMARY {
				for _, k := range c.Keys {
					p.uniqueOn(t.cols[strVal(k)], c.Location)
				}
			}
		}
	}
	p.newTableExprs(s.Constraints, t)
}

// newTableExprs refuses expressions of a new policy table's constraints
// that name one of its policy columns: the table does not exist yet, so
// they cannot be analysed against it.
func (p *planner) newTableExprs(cons []*pg_query.Node, t *policyTable) {
	for _, cn := range cons {
		c := cn.GetConstraint()
		if c == nil {
			continue
		}
		for _, e := range []*pg_query.Node{c.RawExpr, c.WhereClause} {
			if e == nil {
				continue
			}
			walkNodes(e, func(n *pg_query.Node) {
				if cr := n.GetColumnRef(); cr != nil {
					fs := names(cr.Fields)
					if len(fs) > 0 && t.cols[fs[len(fs)-1]] != nil {
						p.reject(ReasonSchemaChange, t.cols[fs[len(fs)-1]], "a constraint expression over an encrypted column of a new table cannot be checked; add it after the table exists, through the proxy", false, cr.Location)
					}
				}
			})
		}
	}
}

// createTableLikeDefaults is CREATE_TABLE_LIKE_DEFAULTS of PostgreSQL's
// TableLikeOption (INCLUDING ALL sets every bit).
const createTableLikeDefaults = 1 << 3
