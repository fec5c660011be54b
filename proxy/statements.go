package proxy

import (
	"sync/atomic"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// sessionPolicy is a session's encryption state. Fields marked "client"
// belong to the client-side loop; "server" to the server-side loop; the
// rest are shared through atomics.
type sessionPolicy struct {
	p                  *Policy
	cat                atomic.Pointer[catalog]
	nonStandardStrings atomic.Bool // standard_conforming_strings is off

	// client
	stmts        map[string]*statement // prepared statements by name ("" is the unnamed one)
	portals      map[string]*portal
	skipToSync   bool // a message of this extended-protocol group was rejected: drop the rest
	catalogStale bool // DDL or a search_path change ran since the catalog was read
	atBoundary   bool // the current message starts a group (no extended-protocol message since Sync)
	scratch      []byte

	// server
	skipping bool // PostgreSQL skips to Sync after an error: so do the expectations
	swallow  bool // drop answers up to the group's ReadyForQuery (after a decryption failure)
	cur      expectation
	hasCur   bool
	rows     *rowShape // the current simple-query result set
	outBuf   []byte
	plainBuf []byte
	inner    *internalQuery
}

// statement is a prepared statement as the proxy tracks it.
type statement struct {
	params       []rewrite.Param // parameters to encrypt at Bind
	describeSent bool            // client: a Describe of it reached the server
	shape        atomic.Pointer[rowShape]
}

// portal is a bound portal.
type portal struct {
	stmt         *statement
	describeSent bool // client: a Describe of it (or of its statement) reached the server
	shape        atomic.Pointer[rowShape]
}

// rowShape says which fields of a result row belong to policy columns.
type rowShape struct {
	cols []*policyColumn // by field; nil entries are not encrypted
	any  bool
}

var noPolicyRows = &rowShape{}

func (pt *portal) rowShape() *rowShape {
	if r := pt.shape.Load(); r != nil {
		return r
	}
	return pt.stmt.shape.Load()
}

// internalQuery is a query the proxy runs on the client's session for
// itself; the server-side loop captures its answer.
type internalQuery struct {
	done chan struct{}
	res  internalResult
}

// internalResult holds the rows of each result set, as text, or the error.
type internalResult struct {
	sets [][][][]byte
	err  error
}
