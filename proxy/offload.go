package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// Work the proxy does on a statement or message (parsing, planning,
// encryption, decryption) costs time in proportion to its size. On an
// event loop the loop's other sessions wait for it, so from offloadBytes
// up it runs on a goroutine of its own while the direction yields (see
// loopSession.offload). Each wrapper below builds its closure only on that
// path: a closure built for every message would put the message's
// variables on the heap each time.

// offloadBytes: below it, a hand-off costs more than the work.
const offloadBytes = 32 << 10

// offloader returns the loop to hand work of size bytes to, or nil to do
// it inline.
func (s *session) offloader(size int) *loopSession {
	if size < offloadBytes {
		return nil
	}
	return s.lp.Load()
}

func (s *session) analyzeOff(sql string) (*rewrite.Analysis, error) {
	if ls := s.offloader(len(sql)); ls != nil {
		var an *rewrite.Analysis
		var err error
		ls.offload(true, func() { an, err = s.pol.p.analyzer.Analyze(sql) })
		return an, err
	}
	return s.pol.p.analyzer.Analyze(sql)
}

// planOff plans an against cat and checks the plan.
func (s *session) planOff(an *rewrite.Analysis, cat *catalog) (*rewrite.Plan, error) {
	plan := func() (*rewrite.Plan, error) {
		p := an.Plan(cat.resolve)
		return p, p.Check(s.pol.p.allowReads)
	}
	var p *rewrite.Plan
	var err error
	if ls := s.offloader(len(an.SQL())); ls != nil {
		ls.offload(true, func() { p, err = plan() })
	} else {
		p, err = plan()
	}
	var r *rewrite.Rejection
	if errors.As(err, &r) && s.srv.opts.Audit != nil && r.Statement < len(p.Statements()) {
		s.pol.auditKind = p.Statements()[r.Statement].Kind.String() // for the refusal's audit event
	}
	return p, err
}

func (s *session) encryptLiteralsOff(sql string, lits []rewrite.Literal, splices []rewrite.Splice) (string, error) {
	if ls := s.offloader(len(sql)); ls != nil {
		var out string
		var err error
		ls.offload(true, func() { out, err = s.encryptLiterals(sql, lits, splices) })
		return out, err
	}
	return s.encryptLiterals(sql, lits, splices)
}

func (s *session) encryptParamsOff(body []byte, params []rewrite.Param) ([]byte, error) {
	if ls := s.offloader(len(body)); ls != nil {
		var out []byte
		var err error
		ls.offload(true, func() { out, err = s.encryptParams(body, params) })
		return out, err
	}
	return s.encryptParams(body, params)
}

func (s *session) decryptRowOff(body []byte, shape *rowShape) ([]byte, error) {
	if ls := s.offloader(len(body)); ls != nil {
		var out []byte
		var err error
		ls.offload(false, func() { out, err = s.decryptRow(body, shape) })
		return out, err
	}
	return s.decryptRow(body, shape)
}

// copyInOff rewrites client COPY data into dst (final: CopyDone).
func (s *session) copyInOff(dst, body []byte, final bool) ([]byte, error) {
	c := s.pol.copyIn
	if ls := s.offloader(len(body)); ls != nil {
		var out []byte
		var err error
		ls.offload(true, func() { out, err = c.in(dst, body, final, encryptField) })
		return out, err
	}
	return c.in(dst, body, final, encryptField)
}

// copyOutOff rewrites a CopyData from PostgreSQL into dst.
func (s *session) copyOutOff(dst, body []byte) ([]byte, error) {
	c := s.pol.copyOut
	if ls := s.offloader(len(body)); ls != nil {
		var out []byte
		var err error
		ls.offload(false, func() { out, err = c.out(dst, body, decryptField) })
		return out, err
	}
	return c.out(dst, body, decryptField)
}

// errInvalidText: a value PostgreSQL would refuse as text (22021). Its
// bytes are not named: they are a policy column's plaintext.
var errInvalidText = errors.New(`invalid byte sequence for encoding "UTF8" (or a zero byte) in a value for an encrypted column; PostgreSQL would refuse it as text`)

// validText reports whether PostgreSQL would take b as text in UTF8: valid
// UTF-8 without a zero byte.
func validText(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}

// encryptField and decryptField are the COPY codecs' value functions.
func encryptField(pc *policyColumn, dst, plain []byte) ([]byte, error) {
	if !validText(plain) {
		return nil, fmt.Errorf("column %s: %w", pc.name, errInvalidText)
	}
	out, err := pc.cipher().Encrypt(dst, plain)
	if err == nil {
		pc.encrypted.Inc()
	}
	return out, err
}

// decryptField appends the plaintext of a stored value to dst. A stored
// plaintext (before a backfill) is passed through and counted. An envelope
// followed by spaces is one stored in a char(n) column, which PostgreSQL
// pads; trailing spaces carry no meaning there, and the envelope is
// decrypted (passing it through would hand the client ciphertext).
func decryptField(pc *policyColumn, dst, env []byte) ([]byte, error) {
	plain, err := pc.cipher().Decrypt(dst, env)
	if errors.Is(err, cipher.ErrNotEnvelope) {
		if trimmed := bytes.TrimRight(env, " "); len(trimmed) < len(env) {
			plain, err = pc.cipher().Decrypt(dst, trimmed)
		}
	}
	if errors.Is(err, cipher.ErrNotEnvelope) {
		if derr := pc.cipher().Damaged(env); derr != nil {
			return dst, derr // an envelope cut short: refused, not relayed
		}
	}
	switch {
	case errors.Is(err, cipher.ErrNotEnvelope):
		pc.plaintexts.Inc()
		return append(dst, env...), nil
	case err == nil:
		pc.decrypted.Inc()
	}
	return plain, err
}
