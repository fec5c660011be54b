package rewrite

import (
	"cmp"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// collected is what the policy-independent first pass finds.
type collected struct {
	relations  []RelName
	seen       map[RelName]struct{}
	mayInvolve bool
	az         *Analyzer
}

// collect walks every node of the tree: each RangeVar is a referenced
// relation; EXECUTE with arguments and DO blocks mentioning a policy table
// make the statement one to analyse.
func collect(tree *pg_query.ParseResult, az *Analyzer) *collected {
	c := &collected{seen: make(map[RelName]struct{}), az: az}
	for _, raw := range tree.Stmts {
		c.walk(raw.ProtoReflect())
	}
	slices.SortFunc(c.relations, func(a, b RelName) int {
		return cmp.Or(cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Name, b.Name))
	})
	return c
}

var (
	rangeVarDesc       = (&pg_query.RangeVar{}).ProtoReflect().Descriptor()
	executeDesc        = (&pg_query.ExecuteStmt{}).ProtoReflect().Descriptor()
	doDesc             = (&pg_query.DoStmt{}).ProtoReflect().Descriptor()
	createFunctionDesc = (&pg_query.CreateFunctionStmt{}).ProtoReflect().Descriptor()
	prepareDesc        = (&pg_query.PrepareStmt{}).ProtoReflect().Descriptor()
	deallocateDesc     = (&pg_query.DeallocateStmt{}).ProtoReflect().Descriptor()
	discardDesc        = (&pg_query.DiscardStmt{}).ProtoReflect().Descriptor()
	createTableAsDesc  = (&pg_query.CreateTableAsStmt{}).ProtoReflect().Descriptor()
	foreignTableDesc   = (&pg_query.CreateForeignTableStmt{}).ProtoReflect().Descriptor()
	importForeignDesc  = (&pg_query.ImportForeignSchemaStmt{}).ProtoReflect().Descriptor()
	renameDesc         = (&pg_query.RenameStmt{}).ProtoReflect().Descriptor()
	alterDomainDesc    = (&pg_query.AlterDomainStmt{}).ProtoReflect().Descriptor()
	alterTableDesc     = (&pg_query.AlterTableStmt{}).ProtoReflect().Descriptor()
)

func (c *collected) walk(m protoreflect.Message) {
	switch m.Descriptor() {
	case rangeVarDesc:
		rv := m.Interface().(*pg_query.RangeVar)
		n := RelName{Schema: rv.Schemaname, Name: rv.Relname}
		if _, ok := c.seen[n]; !ok {
			c.seen[n] = struct{}{}
			c.relations = append(c.relations, n)
		}
		if _, ok := c.az.names[rv.Relname]; ok {
			c.mayInvolve = true
		}
	case executeDesc:
		if len(m.Interface().(*pg_query.ExecuteStmt).Params) > 0 {
			c.mayInvolve = true
		}
	case createTableAsDesc:
		if m.Interface().(*pg_query.CreateTableAsStmt).Query.GetExecuteStmt() != nil {
			c.mayInvolve = true // the prepared statement may return policy columns
		}
	case renameDesc:
		r := m.Interface().(*pg_query.RenameStmt)
		if r.RenameType == pg_query.ObjectType_OBJECT_ATTRIBUTE && r.Behavior == pg_query.DropBehavior_DROP_CASCADE {
			c.mayInvolve = true // it renames columns of typed tables (see alterTable)
		}
		if _, ok := c.az.names[r.Newname]; ok && r.Relation != nil {
			c.mayInvolve = true // a relation renamed into a policy table's name
		}
		if r.RenameType == pg_query.ObjectType_OBJECT_SCHEMA {
			for _, t := range c.az.pol.tables {
				if t.schema == r.Subname || t.schema == r.Newname {
					c.mayInvolve = true // it moves a policy table out of the policy
				}
			}
		}
	case alterTableDesc:
		s := m.Interface().(*pg_query.AlterTableStmt)
		for _, cmd := range s.Cmds {
			if s.Objtype == pg_query.ObjectType_OBJECT_TYPE && cmd.GetAlterTableCmd().GetBehavior() == pg_query.DropBehavior_DROP_CASCADE {
				c.mayInvolve = true // ALTER TYPE … CASCADE changes typed tables
			}
		}
	case alterDomainDesc:
		c.mayInvolve = true // its default or CHECK may reach an encrypted column
	case funcCallDesc:
		fn := names(m.Interface().(*pg_query.FuncCall).Funcname)
		if len(fn) > 0 && wholeTableFuncs[fn[len(fn)-1]] != 0 {
			c.mayInvolve = true // it may read a policy table (see wholeTableFunc)
		}
	case prepareDesc, deallocateDesc:
		// They change what a statement name runs, which the caller
		// follows to encrypt Binds and EXECUTEs for the right statement.
		c.mayInvolve = true
	case discardDesc:
		if m.Interface().(*pg_query.DiscardStmt).Target == pg_query.DiscardMode_DISCARD_ALL {
			c.mayInvolve = true // it deallocates every prepared statement
		}
	case doDesc:
		if c.az.doMentionsPolicy(m.Interface().(*pg_query.DoStmt)) != "" {
			c.mayInvolve = true
		}
	case foreignTableDesc, importForeignDesc:
		c.mayInvolve = true // a foreign table may reach a policy table (see topStmt)
	case createFunctionDesc:
		// A body given as a string (AS $$ … $$) is not parsed: the
		// planner checks its text (see topStmt). BEGIN ATOMIC bodies are
		// walked like any statement.
		if c.az.functionBodyMentionsPolicy(m.Interface().(*pg_query.CreateFunctionStmt)) != "" {
			c.mayInvolve = true
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				c.walk(l.Get(i).Message())
			}
		} else if !fd.IsMap() {
			c.walk(v.Message())
		}
		return true
	})
}

// doBody returns the code of a DO block: every body given (the server
// refuses more than one, but logs the text).
func doBody(d *pg_query.DoStmt) string {
	var b strings.Builder
	for _, a := range d.Args {
		if de := a.GetDefElem(); de != nil && de.Defname == "as" {
			b.WriteString(de.GetArg().GetString_().GetSval())
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// doMentionsPolicy returns a policy table name that a DO block's code
// mentions as a whole word (case-insensitively), a note that it spells a
// name with U&"…" escapes or runs dynamic SQL (EXECUTE, whose text may
// name any table), or "".
func (a *Analyzer) doMentionsPolicy(d *pg_query.DoStmt) string {
	return a.codeMentionsPolicy(doBody(d))
}

// codeMentionsPolicy is textMentionsPolicy for code the server runs
// unseen (a DO block's, a function's body): also dynamic SQL (EXECUTE,
// whose text may name any table) and the functions that read whole
// tables or queries given as text count.
func (a *Analyzer) codeMentionsPolicy(body string) string {
	l := strings.ToLower(body)
	if containsWord(l, "execute") {
		return "(dynamic SQL: EXECUTE)"
	}
	if anyWord(l, catalogTables) && anyWord(l, writeWords) {
		return "(a write to a system catalog)"
	}
	if containsWord(l, "attribute") && containsWord(l, "cascade") {
		return "(ALTER TYPE … CASCADE, which changes typed tables)"
	}
	if anyWord(l, statementNameWords) {
		// Run inside the server, they would change what a prepared
		// statement name holds out of the proxy's sight: parameters and
		// EXECUTE arguments encrypted for one statement would reach
		// another.
		return "(PREPARE, DEALLOCATE or DISCARD, which change what prepared statement names hold)"
	}
	if containsWord(l, "trigger") && containsWord(l, "create") {
		// Run inside the server, CREATE OR REPLACE FUNCTION … RETURNS
		// trigger and CREATE TRIGGER escape the checks made on them at
		// the top level.
		return "(a trigger or trigger function created in it)"
	}
	for n := range wholeTableFuncs {
		if containsWord(l, n) {
			return "(" + n + ")"
		}
	}
	return a.textMentionsPolicy(body)
}

// replacesTrigger is what functionBodyMentionsPolicy returns for CREATE OR
// REPLACE FUNCTION … RETURNS trigger.
const replacesTrigger = "(replacing a trigger function)"

// functionBodyMentionsPolicy is doMentionsPolicy for the body of CREATE
// FUNCTION or PROCEDURE given as a string (AS '…', decoded), or "".
func (a *Analyzer) functionBodyMentionsPolicy(f *pg_query.CreateFunctionStmt) string {
	for _, o := range f.Options {
		if de := o.GetDefElem(); de != nil && de.Defname == "language" {
			if l := strings.ToLower(de.Arg.GetString_().GetSval()); l == "internal" || l == "c" {
				// A new name for a built-in or compiled function
				// (ts_stat1 is ts_stat), which no name check can follow.
				return "(a function in language " + l + ")"
			}
		}
	}
	trigger := false
	if rt := f.GetReturnType(); rt != nil && len(rt.Names) > 0 {
		trigger = strings.EqualFold(rt.Names[len(rt.Names)-1].GetString_().GetSval(), "trigger")
	}
	for _, o := range f.Options {
		if de := o.GetDefElem(); de != nil && de.Defname == "as" {
			for _, part := range de.Arg.GetList().GetItems() {
				if name := a.codeMentionsPolicy(part.GetString_().GetSval()); name != "" {
					return name
				}
			}
		}
	}
	if trigger && f.Replace {
		// A trigger function may fill a policy column of the table it
		// is attached to with what it likes (NEW.x :=, a record built
		// from NEW, …), and no text check can tell. A new one is
		// attached nowhere, and CREATE TRIGGER on a policy table is
		// refused (see createTrigger); replacing one may change what
		// a trigger already on a policy table runs (the proxy checks
		// its catalog). Its body passed the checks above all the same.
		return replacesTrigger
	}
	return ""
}

// textMentionsPolicy returns a policy table name that text contains as a
// word, or "".
func (a *Analyzer) textMentionsPolicy(text string) string {
	s := strings.ToLower(text)
	if strings.Contains(s, `u&"`) {
		return `(spelled with U&"…" escapes)`
	}
	for _, n := range a.lower {
		if containsWord(s, n) {
			return n
		}
	}
	return ""
}

// containsWord reports whether w occurs in s not preceded or followed by an
// identifier character.
func containsWord(s, w string) bool {
	for off := 0; ; {
		i := strings.Index(s[off:], w)
		if i < 0 {
			return false
		}
		i += off
		j := i + len(w)
		if (i == 0 || !isIdentByte(s[i-1])) && (j == len(s) || !isIdentByte(s[j])) {
			return true
		}
		off = i + 1
	}
}
