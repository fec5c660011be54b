package rewrite

import (
	"cmp"
	"slices"
	"sort"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// planner holds the state of one plan computation.
type planner struct {
	az   *Analyzer
	pol  *Policy
	sql  string
	rels map[RelName]Relation
	stmt int // index of the statement being analysed
	// resolutionChanged: an earlier statement of the text may change what
	// relation names refer to, or their columns.
	resolutionChanged bool
	columnLists       []ColumnList
	qualified         []ColumnList // schema prefixes for unqualified relation names
	// noRelax: what is analysed is stored by the server (DDL, CREATE TABLE
	// AS), so on_unsupported: allow relaxes none of its refusals.
	noRelax bool
	group   int // 0: bind parameters of the text; i+1: those of PREPARE statement i

	sites      []*site
	siteAt     map[siteKey]*site
	rejections []Rejection
	rejSeen    map[rejKey]bool
	notes      []Note
	noteSeen   map[Note]bool
	stmts      []Statement
	tokens     []*pg_query.ScanToken
	scanned    bool
	sublinks   map[*pg_query.SubLink]relOut // multi-assignment sources, analysed once
	argtypes   map[int][]*pg_query.Node     // declared parameter types of PREPARE, by group
	// stored: what is analysed is kept by the server (a CHECK, an index
	// predicate, a policy): a comparison in it cannot follow key versions.
	stored bool
	lists  []*inList
	// constContent: the plan depends on what a string constant holds
	// beyond its value at a site (see shape.go). Whatever reads a
	// constant's content for another purpose sets it.
	constContent bool
}

type siteKey struct {
	stmt int
	loc  int32
}

type rejKey struct {
	reason Reason
	col    *Column
	detail string
	stmt   int
	loc    int
}

// site is one occurrence of a parameter or a constant in the text.
type site struct {
	param int               // n for $n, 0 for a constant
	konst *pg_query.A_Const // the constant
	loc   int32
	stmt  int
	group int
	array bool // $n is an array compared element-wise (= ANY($n))
	// neutral: only tested with IS [NOT] NULL, which encryption preserves.
	neutral bool
	// plain: also used where its value must stay as written (computed on,
	// returned, stored in a plain column): see plainUse.
	plain bool
	// grouped names the construct (DISTINCT, GROUP BY, UNION...) that
	// compares it with other values as written; fine only when it is
	// encrypted deterministically.
	grouped string
	// bad, when set, says why the value cannot be encrypted as written
	// (a cast to integer, a bit-string literal...).
	bad       string
	badReason Reason
	bindings  []binding
	// form says how the value can meet several key versions where it
	// stands (see Expand); list, for a parameter in an IN list of
	// parameters, is that list.
	form Expand
	list *inList
}

// inList is an IN list whose items are all parameters: with every one of
// them expandable, the list's text is replaced by a subquery over each
// item's envelopes (ExpandList).
type inList struct {
	start, end int
	params     []*site
}

type binding struct {
	col       *Column
	use       Use
	relaxable bool
	loc       int32
}

func buildPlan(an *Analysis, rels map[RelName]Relation) *Plan {
	p := &planner{
		az:       an.az,
		pol:      an.az.pol,
		sql:      an.sql,
		rels:     rels,
		siteAt:   make(map[siteKey]*site),
		rejSeen:  make(map[rejKey]bool),
		noteSeen: make(map[Note]bool),
		sublinks: make(map[*pg_query.SubLink]relOut),
		argtypes: make(map[int][]*pg_query.Node),
	}
	for i, raw := range an.tree.Stmts {
		p.stmt = i
		st := Statement{Start: int(raw.StmtLocation), End: len(an.sql)}
		if raw.StmtLen > 0 {
			st.End = int(raw.StmtLocation + raw.StmtLen)
		}
		p.stmts = append(p.stmts, st)
		p.topStmt(raw.Stmt, &p.stmts[i])
		if !p.resolutionChanged && i < len(an.tree.Stmts)-1 && changesResolution(raw.Stmt) {
			// The proxy resolved every name of the text against the
			// session as it was before the text ran.
			p.resolutionChanged = true
		}
	}
	return p.finish()
}

// reject records a rejection (once per reason, column, detail and place).
func (p *planner) reject(r Reason, c *Column, detail string, relaxable bool, loc int32) {
	relaxable = relaxable && !p.noRelax
	k := rejKey{r, c, detail, p.stmt, int(loc)}
	if p.rejSeen[k] {
		return
	}
	p.rejSeen[k] = true
	p.rejections = append(p.rejections, Rejection{Reason: r, Column: c, Detail: detail, Relaxable: relaxable, Statement: p.stmt, Location: int(loc)})
}

func (p *planner) note(k NoteKind, n RelName, write bool) {
	nt := Note{Kind: k, Relation: n, Write: write, Statement: p.stmt}
	if !p.noteSeen[nt] {
		p.noteSeen[nt] = true
		p.notes = append(p.notes, nt)
	}
}

// newSite returns the site of the parameter or constant at loc, creating it
// on first sight (the same node may be analysed twice, e.g. the source of
// UPDATE SET (a, b) = (...)).
func (p *planner) newSite(param int, k *pg_query.A_Const, loc int32) *site {
	key := siteKey{p.stmt, loc}
	if s := p.siteAt[key]; s != nil {
		return s
	}
	s := &site{param: param, konst: k, loc: loc, stmt: p.stmt, group: p.group}
	if k != nil {
		s.bad = constProblem(k)
		if s.bad != "" {
			s.badReason = ReasonUnencryptableValue
		}
	}
	p.siteAt[key] = s
	p.sites = append(p.sites, s)
	return s
}

// bind attaches the sites of v to column c.
func (p *planner) bindSites(v val, c *Column, use Use, relaxable bool, loc int32) {
	for _, s := range v.sites {
		if s.bad != "" {
			p.reject(s.badReason, c, s.bad, relaxable, s.loc)
			continue
		}
		s.bindings = append(s.bindings, binding{col: c, use: use, relaxable: relaxable && !p.noRelax, loc: loc})
	}
}

// finish turns bound sites into parameters and literals and assembles the
// plan.
func (p *planner) finish() *Plan {
	plan := &Plan{stmts: p.stmts, notes: p.notes, columns: p.columnLists, qualified: p.qualified, constContent: p.constContent}
	sort.Slice(plan.columns, func(i, j int) bool { return plan.columns[i].At < plan.columns[j].At })
	sort.Slice(plan.qualified, func(i, j int) bool { return plan.qualified[i].At < plan.qualified[j].At })
	type pkey struct{ group, n int }
	byParam := make(map[pkey][]*site)
	var pkeys []pkey
	for _, s := range p.sites {
		if s.param > 0 {
			k := pkey{s.group, s.param}
			if byParam[k] == nil {
				pkeys = append(pkeys, k)
			}
			byParam[k] = append(byParam[k], s)
			continue
		}
		if len(s.bindings) == 0 {
			continue
		}
		col, use, ok := p.unify(s.bindings, "a literal", s.stmt)
		if !ok {
			continue
		}
		if s.grouped != "" && col.mode != Deterministic {
			p.stmt = s.stmt
			p.reject(ReasonRandomizedGrouping, col, "a literal that "+s.grouped+" compares before it is written", false, s.loc)
			continue
		}
		if s.plain {
			p.stmt = s.stmt
			p.reject(ReasonParamConflict, col, "a literal encrypted for this column is also used where its value must stay unencrypted (returned, computed on, or stored in another column); write it once for each use", use&UseWrite == 0 && allRelaxable(s.bindings), s.loc)
			continue
		}
		lit, ok := p.literal(s)
		if !ok {
			continue
		}
		lit.Column, lit.Use, lit.Statement = col, use, s.stmt
		if use == UseCompare && s.form != ExpandElems {
			lit.Expand = s.form
		}
		plan.literals = append(plan.literals, lit)
	}
	slices.SortFunc(pkeys, func(a, b pkey) int {
		return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.n, b.n))
	})
	var cands []Param
	var candGroups []int
	joined := map[[2]int]bool{}
	occs := map[[2]int][]*site{}
	for _, k := range pkeys {
		occ := byParam[k]
		var bs []binding
		var plainAt int32 = -1
		array, scalar := false, false
		grouped := ""
		for _, s := range occ {
			if s.plain && plainAt < 0 {
				plainAt = s.loc
			}
			if s.grouped != "" {
				grouped = s.grouped
			}
			if len(s.bindings) == 0 {
				if !s.neutral && plainAt < 0 {
					plainAt = s.loc
				}
				continue
			}
			bs = append(bs, s.bindings...)
			if s.array {
				array = true
			} else {
				scalar = true
			}
		}
		if len(bs) == 0 {
			continue
		}
		name := "parameter $" + strconv.Itoa(k.n)
		stmt := occ[0].stmt
		col, use, ok := p.unify(bs, name, stmt)
		if !ok {
			continue
		}
		if grouped != "" && col.mode != Deterministic {
			p.stmt = stmt
			p.reject(ReasonRandomizedGrouping, col, name+" that "+grouped+" compares", use&UseWrite == 0 && allRelaxable(bs), occ[0].loc)
			continue
		}
		if plainAt >= 0 || (array && scalar) {
			p.stmt = stmt
			what := " is also used where its value must stay unencrypted"
			if array && scalar {
				what = " is used both as a value and as an array of values"
			}
			p.reject(ReasonParamConflict, col, name+what, use&UseWrite == 0 && allRelaxable(bs), plainAt)
			continue
		}
		prm := Param{Number: k.n, Column: col, Use: use, Array: array, Expand: paramExpand(occ, use, array)}
		if types := p.argtypes[k.group]; k.n <= len(types) {
			// PREPARE p(int) AS ...: EXECUTE arguments are cast to the
			// declared type before they reach the column.
			if prob := castProblem(types[k.n-1].GetTypeName(), array); prob != "" {
				p.stmt = stmt
				p.reject(ReasonCast, col, "a parameter declared as "+strings.TrimPrefix(prob, "a cast to "), use&UseWrite == 0, occ[0].loc)
				continue
			}
		}
		cands, candGroups = append(cands, prm), append(candGroups, k.group)
		joined[[2]int{k.group, k.n}], occs[[2]int{k.group, k.n}] = prm.Joined(), occ
	}
	plan.splices = p.expansionSplices(joined, occs)
	for i, prm := range cands {
		g := candGroups[i]
		if prm.Joined() && !joined[[2]int{g, prm.Number}] {
			prm.Expand = ExpandNone // its IN list cannot be replaced
		}
		if g == 0 {
			plan.params = append(plan.params, prm)
		} else {
			st := &p.stmts[g-1]
			st.Prepared = append(st.Prepared, prm)
		}
	}
	slices.SortFunc(plan.literals, func(a, b Literal) int { return cmp.Compare(a.Start, b.Start) })
	plan.rejections = p.rejections
	return plan
}

func allRelaxable(bs []binding) bool {
	for _, b := range bs {
		if !b.relaxable {
			return false
		}
	}
	return true
}

// unify checks that all bindings of one value can share one encryption and
// returns the column and the union of uses.
func (p *planner) unify(bs []binding, name string, stmt int) (*Column, Use, bool) {
	col := bs[0].col
	var use Use
	for _, b := range bs {
		use |= b.use
		if !encryptsAlike(col, b.col) {
			p.stmt = stmt
			p.reject(ReasonParamConflict, col, name+" is used for both "+col.String()+" and "+b.col.String()+", which are encrypted differently", b.use&UseWrite == 0 && bs[0].use&UseWrite == 0, b.loc)
			return nil, 0, false
		}
	}
	return col, use, true
}

func strVal(n *pg_query.Node) string { return n.GetString_().GetSval() }

// names returns the String values of a name list (function, operator,
// type and column names).
func names(ns []*pg_query.Node) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		switch {
		case n.GetString_() != nil:
			out = append(out, n.GetString_().Sval)
		case n.GetAStar() != nil:
			out = append(out, "*")
		}
	}
	return out
}

// quoteIdent quotes an identifier for messages when needed.
func quoteIdent(s string) string {
	plain := s != ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || ('a' <= c && c <= 'z') || (i > 0 && ('0' <= c && c <= '9' || c == '$'))) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// qualify writes the schema the relation name rv resolved to in front of
// it, so that PostgreSQL acts on the very table the proxy encrypted for,
// whatever search_path the session has by the time the statement runs (a
// set_config earlier in the pipeline, a FunctionCall, a function that
// changes it, ALTER SYSTEM and a reload).
func (p *planner) qualify(rv *pg_query.RangeVar, schema string) {
	if slices.ContainsFunc(p.qualified, func(c ColumnList) bool { return c.At == int(rv.Location) }) {
		return // analysed twice (the first arm of a recursive WITH)
	}
	toks := p.scan()
	i := sort.Search(len(toks), func(i int) bool { return toks[i].Start >= rv.Location })
	if i == len(toks) || toks[i].Start != rv.Location || (i+1 < len(toks) && toks[i+1].Token == pg_query.Token_ASCII_46) {
		p.reject(ReasonResolutionChange, nil, "the proxy could not locate relation name "+quoteIdent(rv.Relname)+" to qualify it; write it schema-qualified", false, rv.Location)
		return
	}
	p.qualified = append(p.qualified, ColumnList{At: int(rv.Location), Text: QuoteIdent(schema) + "."})
}

// QuoteIdent returns s as a quoted SQL identifier ("s", with " doubled),
// which is right whatever s is, keywords included.
func QuoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// nameColumns records a column list for the first n columns of a policy
// table that an INSERT or COPY at relation rv uses by position (see
// ColumnList). alias: the relation may be followed by AS alias (INSERT).
func (p *planner) nameColumns(rv *pg_query.RangeVar, names []string, alias bool) {
	if len(names) == 0 {
		return
	}
	toks := p.scan()
	i := sort.Search(len(toks), func(i int) bool { return toks[i].Start >= rv.Location })
	if i == len(toks) || toks[i].Start != rv.Location {
		p.reject(ReasonColumnsUnknown, nil, "the column order of "+quoteIdent(rv.Relname), false, rv.Location)
		return
	}
	end := toks[i].End
	for i+2 < len(toks) && toks[i+1].Token == pg_query.Token_ASCII_46 { // schema.name
		i += 2
		end = toks[i].End
	}
	if alias && i+2 < len(toks) && toks[i+1].Token == pg_query.Token_AS {
		i += 2
		end = toks[i].End
	}
	if slices.ContainsFunc(p.columnLists, func(c ColumnList) bool { return c.At == int(end) }) {
		return // analysed twice
	}
	quoted := make([]string, len(names))
	for j, n := range names {
		quoted[j] = `"` + strings.ReplaceAll(n, `"`, `""`) + `"`
	}
	p.columnLists = append(p.columnLists, ColumnList{At: int(end), Text: " (" + strings.Join(quoted, ", ") + ")"})
}
