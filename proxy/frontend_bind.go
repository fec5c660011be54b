package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// Bind: the parameters of policy columns encrypted in the message, for the
// statement the name holds now.

// encryptParams rewrites a Bind body with the policy parameters encrypted.
// Text and binary formats carry a text value as the same bytes, so the
// format codes stay as they are.
func (s *session) encryptParams(body []byte, params []rewrite.Param) ([]byte, error) {
	bad := func(why string) error { return &wire.ProtocolError{Type: 'B', Length: len(body) + 4, Reason: why} }
	// Skip the portal and statement names and the parameter format codes.
	pos := 0
	for range 2 {
		z := bytes.IndexByte(body[pos:], 0)
		if z < 0 {
			return nil, bad("unterminated name")
		}
		pos += z + 1
	}
	if len(body) < pos+2 {
		return nil, bad("truncated Bind")
	}
	nf := int(binary.BigEndian.Uint16(body[pos:]))
	formats := body[pos+2 : min(len(body), pos+2+2*nf)]
	pos += 2 + 2*nf
	if len(body) < pos+2 {
		return nil, bad("truncated Bind")
	}
	np := int(binary.BigEndian.Uint16(body[pos:]))
	pos += 2
	sp := s.pol
	cat := sp.cat.Load()
	out := append(sp.bindBuf[:0], body[:pos]...)
	start := time.Now()
	next := 0 // index into params, which are sorted by Number
	for i := 0; i < np; i++ {
		if len(body) < pos+4 {
			return nil, bad("truncated Bind")
		}
		l := int32(binary.BigEndian.Uint32(body[pos:]))
		pos += 4
		var v []byte
		if l >= 0 {
			if int(l) > len(body)-pos {
				return nil, bad("truncated Bind")
			}
			v = body[pos : pos+int(l)]
			pos += int(l)
		}
		for next < len(params) && params[next].Number-1 < i {
			next++
		}
		if l < 0 || next >= len(params) || params[next].Number-1 != i {
			out = append(out, body[pos-4-len(v):pos]...) // relayed as is; NULL stays NULL
			continue
		}
		prm := params[next]
		if sp.encodingUnsure && !isASCII(v) {
			return nil, errSettleFirst
		}
		binArray := prm.Array && paramFormat(formats, i) == 1
		if !binArray && !validText(v) {
			return nil, fmt.Errorf("parameter $%d: %w", prm.Number, errInvalidText)
		}
		pc := sp.p.column(prm.Column)
		c := pc.cipher()
		lenAt := len(out)
		out = append(out, 0, 0, 0, 0)
		var err error
		var versions []int
		if prm.Use&rewrite.UseCompare != 0 && c.Mode() == cipher.Deterministic {
			versions = cat.searchVersions(prm.Column, c, sp.versions)
			sp.versions = versions
		}
		switch {
		case len(versions) > 1 && (prm.Expand == rewrite.ExpandNone || prm.Use&rewrite.UseWrite != 0):
			// A value also written takes one envelope, which would miss
			// the rows under the other versions.
			return nil, &rotationError{col: pc.name, versions: len(versions), written: prm.Use&rewrite.UseWrite != 0}
		case prm.Array:
			copies, enc := 1, elemEncrypter(func(dst, plain []byte, _ int) ([]byte, error) { return c.Encrypt(dst, plain) })
			if prm.Expand == rewrite.ExpandElems && len(versions) > 1 {
				copies = len(versions)
				enc = func(dst, plain []byte, k int) ([]byte, error) { return c.EqualityEnvelope(dst, plain, versions[k]) }
			}
			if binArray {
				inner := enc
				enc = func(dst, plain []byte, k int) ([]byte, error) {
					if !validText(plain) {
						return nil, fmt.Errorf("parameter $%d: %w", prm.Number, errInvalidText)
					}
					return inner(dst, plain, k)
				}
			}
			if paramFormat(formats, i) == 1 {
				out, err = encryptBinaryArray(out, v, copies, enc)
			} else {
				out, err = encryptTextArray(out, v, copies, enc)
			}
		case prm.Joined() && len(versions) > 0:
			// The text reads string_to_array($n, ','): the envelopes
			// under every version, joined.
			for k, ver := range versions {
				if k > 0 {
					out = append(out, ',')
				}
				if out, err = c.EqualityEnvelope(out, v, ver); err != nil {
					break
				}
			}
		default:
			out, err = c.Encrypt(out, v)
			if err == nil {
				err = s.fits(prm.Column, prm.Use, len(out)-lenAt-4)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("encrypting parameter $%d for column %s: %w", prm.Number, pc.name, err)
		}
		binary.BigEndian.PutUint32(out[lenAt:], uint32(len(out)-lenAt-4))
		pc.encrypted.Inc()
	}
	s.srv.m.EncryptDuration.Observe(time.Since(start).Seconds())
	out = append(out, body[pos:]...) // result format codes
	sp.bindBuf = out
	return out, nil
}

// paramFormat returns parameter i's format code from a Bind's list: none
// means all text, one applies to all.
func paramFormat(formats []byte, i int) int {
	switch n := len(formats) / 2; {
	case n == 0:
		return 0
	case n == 1:
		return int(binary.BigEndian.Uint16(formats))
	case i < n:
		return int(binary.BigEndian.Uint16(formats[2*i:]))
	}
	return 0
}

var errKeysChanged = errors.New("the keys were reloaded since this prepared statement was prepared, and values in its text were encrypted under the old ones (a search would miss rows under the new key version; a write would use a retired key); prepare it again, or pass the values as parameters")

// currentParams returns the parameters to encrypt for a prepared
// statement, planning it again when the search_path or the schema changed
// since it was prepared, as PostgreSQL re-resolves its names then. Literals
// are baked into a Parse's text, so a statement whose literals would now
// belong elsewhere must be prepared again.
func (s *session) currentParams(st *statement) ([]rewrite.Param, error) {
	sp := s.pol
	if gen := sp.p.keysGen.Load() + 1; st.litsGen != 0 && st.litsGen != gen {
		if !sp.litsCurrent(st) {
			return nil, errKeysChanged
		}
		st.litsGen = gen
	}
	if !sp.catalogStale && sp.cat.Load() == st.cat {
		return st.params, nil
	}
	if st.unnamed {
		// The proxy's catalog query (a simple Query) would drop the
		// unnamed statement on the server: never read the catalog for it.
		switch {
		case sp.catalogStale && st.staleAtParse:
			return st.params, nil // stale already when it was parsed (its own DDL, say)
		case sp.catalogStale:
			return nil, errors.New("the schema or search_path changed since this unnamed statement was parsed, and reading it again would drop the statement on the server; parse it again")
		}
	} else if err := s.freshCatalog(); err != nil {
		return nil, err
	}
	cat := sp.cat.Load()
	// PostgreSQL plans it again by name: a relation it names may have
	// become a view, partition, child or parent of a policy table, or a
	// policy table renamed into that name, since it was prepared.
	if rewrite.MentionsAny(st.sql, cat.viewNames) {
		return nil, errors.New("a relation this prepared statement names has become a view, partition, child or parent of a table with encrypted columns, or such a table renamed, since it was prepared; the proxy cannot encrypt for it")
	}
	if st.an == nil {
		st.cat = cat
		return st.params, nil
	}
	for _, rn := range st.an.Relations() {
		if v := cat.policyView(rn); v != nil {
			return nil, &viewError{view: v.schema + "." + v.name, reach: v.reach, was: v.was}
		}
	}
	if st.qualifiedFrom != nil {
		// Its relation names were written out schema-qualified as they
		// resolved when it was prepared; PostgreSQL would now resolve
		// them elsewhere.
		p0, err := s.planOff(st.qualifiedFrom, cat)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(p0.Qualifications(), st.qualifiedAs) {
			return nil, errors.New("this prepared statement's tables resolve to another schema since a search_path change, and the proxy pinned them to the schema they had when it was prepared; prepare it again")
		}
	}
	p, err := s.planOff(st.an, cat)
	if err != nil {
		return nil, err
	}
	if err := cat.checkWrites(p); err != nil {
		return nil, err
	}
	var params []rewrite.Param
	if st.index >= 0 {
		stmts := p.Statements()
		if st.index >= len(stmts) || stmts[st.index].Kind != rewrite.StmtPrepare {
			return nil, errors.New("a prepared statement could not be planned again; prepare it again")
		}
		params = stmts[st.index].Prepared
	} else {
		lits, prm, execs, err := s.statementValues(p)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(litSigs(lits), st.lits) {
			return nil, errors.New("this prepared statement's literals belong to other columns since a search_path or schema change; prepare it again")
		}
		params, st.execs = prm, execs
		if st.names != nil {
			st.names = p
		}
	}
	st.params, st.cat = params, cat
	// Its rows may now come from another table: describe it again.
	st.shape.Store(nil)
	return params, nil
}
