package rewrite

import (
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// topStmt analyses one statement of the text.
func (p *planner) topStmt(n *pg_query.Node, st *Statement) {
	root := newScope(nil)
	switch x := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		st.Kind = StmtSelect
		if x.SelectStmt.IntoClause == nil {
			p.outputs(p.selectStmt(x.SelectStmt, root))
		} else {
			p.noRelax = true
			p.intoPolicyName(x.SelectStmt.IntoClause)
			p.copiedOut(p.selectStmt(x.SelectStmt, root), x.SelectStmt.IntoClause)
			p.noRelax = false
		}
	case *pg_query.Node_InsertStmt:
		st.Kind = StmtInsert
		p.outputs(p.insertStmt(x.InsertStmt, root))
	case *pg_query.Node_UpdateStmt:
		st.Kind = StmtUpdate
		p.outputs(p.updateStmt(x.UpdateStmt, root))
	case *pg_query.Node_DeleteStmt:
		st.Kind = StmtDelete
		p.outputs(p.deleteStmt(x.DeleteStmt, root))
	case *pg_query.Node_MergeStmt:
		st.Kind = StmtMerge
		p.outputs(p.mergeStmt(x.MergeStmt, root))
	case *pg_query.Node_CopyStmt:
		st.Kind = StmtCopy
		st.Copy = p.copyStmt(x.CopyStmt)
	case *pg_query.Node_ExplainStmt:
		// EXPLAIN ANALYZE runs the statement: analyse it fully. Its
		// output is the plan, not rows.
		st.Kind = StmtExplain
		var inner Statement
		p.topStmtNoOutput(x.ExplainStmt.Query, &inner)
		if inner.Kind == StmtExecute {
			st.Name, st.Execute = inner.Name, inner.Execute
		}
	case *pg_query.Node_CreateTableAsStmt:
		// What the new table (or materialized view) stores is computed
		// inside PostgreSQL: nothing of it may be relaxed, and it may not
		// copy encrypted columns out of the policy.
		st.Kind = StmtSelect
		p.noRelax = true
		ct := x.CreateTableAsStmt
		p.intoPolicyName(ct.Into)
		switch q := ct.Query.GetNode().(type) {
		case *pg_query.Node_SelectStmt:
			p.copiedOut(p.selectStmt(q.SelectStmt, root), ct.Into)
			if ct.Objtype == pg_query.ObjectType_OBJECT_MATVIEW {
				if name := p.mentionsPolicyRelation(ct.Query); name != "" {
					p.reject(ReasonSchemaChange, nil, "a materialized view over policy table "+name+" would store values the proxy cannot trace; query the table itself", false, int32(st.Start))
				}
			}
		case *pg_query.Node_ExecuteStmt:
			var inner Statement
			p.topStmtNoOutput(ct.Query, &inner)
			st.Kind, st.Name, st.Execute = StmtExecute, inner.Name, inner.Execute
			p.reject(ReasonSchemaChange, nil, "CREATE TABLE AS EXECUTE may copy encrypted columns out of the policy (the proxy cannot tell which columns the prepared statement returns); name the query", false, int32(st.Start))
		default:
			var inner Statement
			p.topStmtNoOutput(ct.Query, &inner)
		}
		p.noRelax = false
	case *pg_query.Node_DeclareCursorStmt:
		st.Kind = StmtSelect
		p.outputs(p.query(x.DeclareCursorStmt.Query, root))
		p.settingsLater(x.DeclareCursorStmt.Query, st)
	case *pg_query.Node_PrepareStmt:
		st.Kind, st.Name = StmtPrepare, x.PrepareStmt.Name
		p.group = p.stmt + 1
		p.argtypes[p.group] = x.PrepareStmt.Argtypes
		var inner Statement
		p.topStmt(x.PrepareStmt.Query, &inner)
		p.group = 0
		p.settingsLater(x.PrepareStmt.Query, st)
	case *pg_query.Node_ExecuteStmt:
		st.Kind, st.Name = StmtExecute, x.ExecuteStmt.Name
		st.Execute = p.executeArgs(x.ExecuteStmt)
	case *pg_query.Node_DeallocateStmt:
		st.Kind, st.Name = StmtDeallocate, x.DeallocateStmt.Name
		if x.DeallocateStmt.Isall {
			st.Name = ""
		}
	case *pg_query.Node_DiscardStmt:
		if x.DiscardStmt.Target == pg_query.DiscardMode_DISCARD_ALL {
			st.Kind = StmtDeallocate // DISCARD ALL also deallocates every prepared statement
		}
	case *pg_query.Node_DoStmt:
		st.Kind = StmtDo
		if name := p.az.doMentionsPolicy(x.DoStmt); name != "" {
			p.reject(ReasonOpaqueCode, nil, "a DO block mentions table "+name, false, int32(st.Start))
		}
	case *pg_query.Node_CallStmt:
		// The procedure's body is not analysed (see the package
		// documentation); its arguments are.
		st.Kind = StmtCall
		if fc := x.CallStmt.Funccall; fc != nil {
			p.funcCall(fc, root)
		}
	case *pg_query.Node_CreateForeignTableStmt, *pg_query.Node_ImportForeignSchemaStmt:
		// postgres_fdw pointed back at this database reads and writes a
		// policy table over a connection that bypasses the proxy.
		st.Kind = StmtOther
		p.reject(ReasonWholeTable, nil, "a foreign table (a foreign-data wrapper may reach this database's tables over a connection that bypasses the proxy)", false, int32(st.Start))
	case *pg_query.Node_CreateFunctionStmt, *pg_query.Node_RuleStmt:
		// A function, procedure or rule body runs its statements inside
		// the server, unseen: with a policy table in it, literals would
		// be stored in the catalog and values written unencrypted.
		st.Kind = StmtOther
		name := p.az.textMentionsPolicy(p.sql[st.Start:st.End])
		if cf, ok := x.(*pg_query.Node_CreateFunctionStmt); ok && name == "" {
			name = p.az.functionBodyMentionsPolicy(cf.CreateFunctionStmt) // as decoded: E'…\137…'
		}
		switch name {
		case "":
		case replacesTrigger:
			fn := x.(*pg_query.Node_CreateFunctionStmt).CreateFunctionStmt.Funcname
			st.TriggerFunction = fn[len(fn)-1].GetString_().GetSval()
		default:
			p.reject(ReasonOpaqueCode, nil, "a function, procedure or rule body mentions table "+name, false, int32(st.Start))
		}
	default:
		st.Kind = StmtOther
		p.ddlStmt(n, st)
	}
}

// topStmtNoOutput analyses a statement whose result rows do not reach the
// client as rows (EXPLAIN, CREATE TABLE AS, SELECT INTO).
func (p *planner) topStmtNoOutput(n *pg_query.Node, st *Statement) {
	root := newScope(nil)
	switch x := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt:
		st.Kind = StmtSelect
		p.selectStmt(x.SelectStmt, root)
	case *pg_query.Node_InsertStmt:
		st.Kind = StmtInsert
		p.insertStmt(x.InsertStmt, root)
	case *pg_query.Node_UpdateStmt:
		st.Kind = StmtUpdate
		p.updateStmt(x.UpdateStmt, root)
	case *pg_query.Node_DeleteStmt:
		st.Kind = StmtDelete
		p.deleteStmt(x.DeleteStmt, root)
	case *pg_query.Node_MergeStmt:
		st.Kind = StmtMerge
		p.mergeStmt(x.MergeStmt, root)
	default:
		p.topStmt(n, st)
	}
}

// outputs checks the columns of a result returned to the client.
func (p *planner) outputs(out relOut) {
	for _, c := range out.cols {
		p.output(c.v, -1)
	}
}

// executeArgs describes the arguments of EXECUTE name(args).
func (p *planner) executeArgs(e *pg_query.ExecuteStmt) []ExecuteArg {
	args := make([]ExecuteArg, 0, len(e.Params))
	for _, n := range e.Params {
		var a ExecuteArg
		inner := n
		why := ""
		for {
			tc := inner.GetTypeCast()
			if tc == nil {
				break
			}
			if prob := castProblem(tc.TypeName, false); prob != "" && why == "" {
				why = prob
			}
			inner = tc.Arg
		}
		switch x := inner.GetNode().(type) {
		case *pg_query.Node_AConst:
			switch {
			case x.AConst.Isnull:
				a.Null = true
			case why != "":
				a.Why = why
			default:
				if prob := constProblem(x.AConst); prob != "" {
					a.Why = prob
					break
				}
				if start, end, ok := p.constExtent(x.AConst.Location); ok {
					a.Start, a.End = start, end
					a.Value, a.Kind = constValue(x.AConst)
				} else {
					a.Why = "a constant whose text could not be located"
				}
			}
		case *pg_query.Node_ParamRef:
			if why != "" {
				a.Why = why
			} else {
				a.Param = int(x.ParamRef.Number)
			}
		default:
			a.Why = "an expression"
			// Analyse it for what it does to policy columns (subqueries).
			p.useOpaque(p.expr(n, newScope(nil)), ReasonFunction, "EXECUTE", -1)
		}
		args = append(args, a)
	}
	return args
}

// intoPolicyName refuses CREATE TABLE AS and SELECT INTO whose new table
// has a policy table's name: the rows would be stored as PostgreSQL computes
// them, in plaintext, in what then is a policy table. Matched by name, as
// the table does not exist yet.
func (p *planner) intoPolicyName(into *pg_query.IntoClause) {
	if into == nil || into.Rel == nil {
		return
	}
	if _, ok := p.pol.names[into.Rel.Relname]; ok {
		p.reject(ReasonCreateAs, nil, "CREATE TABLE AS or SELECT INTO "+into.Rel.Relname, false, into.Rel.Location)
	}
}

// copiedOut refuses CREATE TABLE AS and SELECT INTO whose rows carry a
// policy column's values into a new table, which is outside the policy:
// its envelopes could never be decrypted there (and a later policy for it
// would use other associated data).
func (p *planner) copiedOut(out relOut, into *pg_query.IntoClause) {
	name := "a new table"
	if into != nil && into.Rel != nil {
		name = quoteIdent(RelName{Schema: into.Rel.Schemaname, Name: into.Rel.Relname}.String())
	}
	if out.open && outHasPolicy(out) {
		p.reject(ReasonSchemaChange, nil, "CREATE TABLE AS or SELECT INTO "+name+" with * over a policy table would copy encrypted columns out of the policy, where they can never be decrypted; name the columns you need", false, -1)
		return
	}
	for _, c := range out.cols {
		v := c.v
		if v.row != nil {
			v = flattenRow(v)
		}
		for _, col := range v.cols {
			p.reject(ReasonSchemaChange, col, "CREATE TABLE AS or SELECT INTO "+name+" would copy this encrypted column out of the policy, where it can never be decrypted; create the table, add it to the policy, and INSERT … SELECT through the proxy", false, -1)
			return
		}
		p.plainUse(v, "CREATE TABLE AS", -1)
	}
}

// settingsLater refuses a prepared statement or cursor that may change
// the search_path when it runs (EXECUTE, FETCH), where the proxy would not
// see it.
func (p *planner) settingsLater(query *pg_query.Node, st *Statement) {
	if stmtChangesPath(query) {
		p.reject(ReasonResolutionChange, nil, "a prepared statement or cursor that calls set_config or writes pg_settings would change the search_path unseen when it runs", false, int32(st.Start))
	}
}

// changesResolution reports whether a statement may change, for the rest
// of its text, what relation names refer to or which columns they have: a
// SET or RESET of search_path or the role, DDL, DISCARD, the end of a
// transaction or a savepoint (which undo SET LOCAL and SET), or a call of
// set_config. Conservative: any statement not known to leave names alone.
func changesResolution(n *pg_query.Node) bool {
	if writesCatalog(n) {
		return true
	}
	switch x := n.GetNode().(type) {
	case *pg_query.Node_SelectStmt, *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt,
		*pg_query.Node_DeleteStmt, *pg_query.Node_MergeStmt, *pg_query.Node_CopyStmt,
		*pg_query.Node_ExplainStmt, *pg_query.Node_DeclareCursorStmt, *pg_query.Node_PrepareStmt,
		*pg_query.Node_ExecuteStmt:
		// Functions run by these are not seen (see the package
		// documentation), but set_config and pg_settings written out are.
		return callsSettings(n)
	case *pg_query.Node_DeallocateStmt, *pg_query.Node_VariableShowStmt, *pg_query.Node_NotifyStmt,
		*pg_query.Node_ListenStmt, *pg_query.Node_UnlistenStmt, *pg_query.Node_LockStmt,
		*pg_query.Node_CheckPointStmt, *pg_query.Node_VacuumStmt, *pg_query.Node_ClosePortalStmt,
		*pg_query.Node_FetchStmt:
		return false
	case *pg_query.Node_TransactionStmt:
		switch x.TransactionStmt.Kind {
		case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN, pg_query.TransactionStmtKind_TRANS_STMT_START,
			pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT, pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
			return false
		}
		return true
	case *pg_query.Node_VariableSetStmt:
		return stmtChangesPath(n)
	}
	return true
}

// catalogTables are the system catalogs whose rows say what names mean,
// which columns relations have and what code runs on their rows.
var catalogTables = []string{"pg_class", "pg_attribute", "pg_namespace", "pg_inherits", "pg_rewrite",
	"pg_depend", "pg_index", "pg_attrdef", "pg_constraint", "pg_type", "pg_proc", "pg_trigger",
	"pg_policy", "pg_event_trigger"}

// writesCatalog reports whether n writes to a system catalog directly (a
// superuser's UPDATE pg_class SET relname = …): a rename the parse tree
// cannot otherwise tell. Any write at any depth counts: in a data-modifying
// WITH, behind PREPARE, EXPLAIN ANALYZE, CREATE TABLE AS or COPY (…
// RETURNING), in a BEGIN ATOMIC function body; and COPY into a catalog.
func writesCatalog(n *pg_query.Node) bool {
	found := false
	walkNodes(n, func(c *pg_query.Node) {
		var rv *pg_query.RangeVar
		switch x := c.GetNode().(type) {
		case *pg_query.Node_InsertStmt:
			rv = x.InsertStmt.Relation
		case *pg_query.Node_UpdateStmt:
			rv = x.UpdateStmt.Relation
		case *pg_query.Node_DeleteStmt:
			rv = x.DeleteStmt.Relation
		case *pg_query.Node_MergeStmt:
			rv = x.MergeStmt.Relation
		case *pg_query.Node_CopyStmt:
			if x.CopyStmt.IsFrom {
				rv = x.CopyStmt.Relation
			}
		}
		if rv != nil && (rv.Schemaname == "" || rv.Schemaname == "pg_catalog") && slices.Contains(catalogTables, rv.Relname) {
			found = true
		}
	})
	return found
}
