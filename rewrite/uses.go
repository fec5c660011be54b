package rewrite

// What a value is used for: compared, written, returned, grouped, or used
// by a construct that cannot work on ciphertext.

// markNeutral marks parameters only tested for NULL.
func markNeutral(v val) {
	for _, s := range v.sites {
		if len(s.bindings) == 0 {
			s.neutral = true
		}
	}
	for _, r := range v.row {
		markNeutral(r)
	}
}

// useOpaque records that v is used by a construct that cannot work on
// ciphertext: every policy column in it is rejected with reason r. Its
// parameters and literals stay unencrypted.
func (p *planner) useOpaque(v val, r Reason, detail string, loc int32) {
	for _, c := range v.cols {
		p.reject(r, c, detail, true, loc)
	}
	markPlain(v)
	for _, e := range v.row {
		p.useOpaque(e, r, detail, loc)
	}
}

// markPlain marks the parameters and literals of v as used where their
// value must stay as written (computed on, returned to the client, stored
// in a plain column). One that is also bound to a policy column is then
// refused: encrypted, this use would be wrong; unencrypted, the other
// would leak it.
func markPlain(v val) {
	for _, s := range v.sites {
		s.plain = true
	}
	for _, r := range v.row {
		markPlain(r)
	}
}

// compare handles an equality comparison between l and r (=, <>, IN, IS
// DISTINCT FROM, JOIN USING...): it works on ciphertext when every policy
// column involved is deterministic in one domain and everything else is a
// parameter or a literal, which then get encrypted for that column.
func (p *planner) compare(l, r val, detail string, loc int32) {
	if l.row != nil || r.row != nil {
		if len(l.row) == len(r.row) {
			for i := range l.row {
				p.compare(l.row[i], r.row[i], detail, loc)
			}
			return
		}
		if l.row != nil {
			l = flattenRow(l)
		}
		if r.row != nil {
			r = flattenRow(r)
		}
	}
	cols := append(append([]*Column(nil), l.cols...), r.cols...)
	if len(cols) == 0 {
		// Compared as written: a value also bound to a policy column
		// elsewhere would be compared as ciphertext here.
		markPlain(l)
		markPlain(r)
		return
	}
	for _, c := range cols {
		if c.mode != Deterministic {
			p.reject(ReasonRandomizedEquality, c, detail, true, loc)
			return
		}
	}
	ref := cols[0]
	for _, c := range cols[1:] {
		if !comparableCols(ref, c) {
			p.reject(ReasonIncomparable, ref, "column "+c.String(), true, loc)
			return
		}
	}
	for _, v := range [2]val{l, r} {
		if v.plain != "" {
			p.reject(ReasonIncomparable, ref, v.plain, true, loc)
			return
		}
	}
	p.bindSites(l, ref, UseCompare, true, loc)
	p.bindSites(r, ref, UseCompare, true, loc)
}

// write handles a value stored into policy column dst.
func (p *planner) write(dst *Column, v val, loc int32) {
	if v.row != nil {
		v = flattenRow(v)
	}
	for _, c := range v.cols {
		if !copyable(c, dst) {
			p.reject(ReasonCrossDomainCopy, dst, c.String(), false, loc)
			return
		}
	}
	if v.plain != "" {
		p.reject(ReasonPlaintextWrite, dst, v.plain, false, loc)
		return
	}
	p.bindSites(v, dst, UseWrite, false, loc)
}

// output handles a value returned to the client in a result row: the proxy
// decrypts by RowDescription's table OID and attribute number, which the
// server only fills for plain column references.
func (p *planner) output(v val, loc int32) {
	if v.row != nil {
		v = flattenRow(v)
	}
	// Parameters and literals returned as they are: one also encrypted
	// for a policy column would reach the client as an envelope.
	markPlain(v)
	if v.direct || len(v.cols) == 0 {
		return
	}
	via := v.via
	if via == "" {
		via = "an expression"
	}
	for _, c := range v.cols {
		p.reject(ReasonUntraceableOutput, c, via, true, loc)
	}
}

// grouping handles GROUP BY, DISTINCT, PARTITION BY: fine on deterministic
// columns only.
func (p *planner) grouping(v val, what string, loc int32) {
	if v.row != nil {
		v = flattenRow(v)
	}
	for _, c := range v.cols {
		if c.mode != Deterministic {
			p.reject(ReasonRandomizedGrouping, c, what, true, loc)
		}
	}
	// Parameters and literals grouped here and also encrypted for a
	// randomized column would no longer be equal to each other.
	for _, s := range v.sites {
		s.grouped = what
	}
	// Grouped with stored values of a column (SELECT email ... INTERSECT
	// SELECT 'x'), they are compared with its ciphertext: encrypt them for
	// it, or refuse.
	if len(v.cols) > 0 && (len(v.sites) > 0 || v.plain != "") {
		p.compare(val{cols: v.cols}, val{sites: v.sites, plain: v.plain}, what, loc)
	}
}
