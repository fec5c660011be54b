package proxy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/track"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

// Loading a session's catalog: its own read of the schema, or another
// session's read of the same database.

// sharedCatalogs holds, per database, the newest catalog a session read
// outside any transaction. All of it but the search_path is the same for
// every session of that database (the relations of every schema, temporary
// ones included), so a session that starts, or whose catalog is only old,
// takes it with a query of its search_path alone, as long as it is younger
// than CatalogMaxAge and no relation has been created since
// (max(pg_class.oid) unchanged). The database's schema is then read about
// once per CatalogMaxAge rather than once per session, a session's first
// statement does not wait for that read, and the sessions share one copy.
type sharedCatalogs struct {
	mu   sync.Mutex
	byDB map[string]*catalog
}

func (sc *sharedCatalogs) get(db string) *catalog {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.byDB[db]
}

// put offers c, read outside a transaction; the newer read is kept.
func (sc *sharedCatalogs) put(c *catalog) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.byDB == nil {
		sc.byDB = map[string]*catalog{}
	}
	if old := sc.byDB[c.db]; old == nil || old.loaded.Before(c.loaded) {
		sc.byDB[c.db] = c
	}
}

// sessionQuery reads what a shared catalog lacks: the session's
// search_path, with the database and the newest relation OID to check
// that the shared catalog is the one to use.
const sessionQuery = "SELECT pg_catalog.array_to_string(pg_catalog.current_schemas(true), ','), " +
	"(SELECT max(oid) FROM pg_catalog.pg_class)::text, pg_catalog.current_database()"

// loadCatalog installs a catalog for the session, between groups: at its
// start, when the catalog is old, or before a statement that needs it
// read again (after DDL). With share, another session's catalog of the
// same database is taken when it will do (see sharedCatalogs); otherwise,
// or when it will not, the session reads its own, which others may then
// share.
func (s *session) loadCatalog(share bool) error {
	sp := s.pol
	// A session in a transaction, or that has read the catalog inside
	// one, may see schema changes of its own that no other session sees
	// (uncommitted, or committed after the shared read): it reads its own.
	share = share && !sp.ownSchema && !s.track.InTransaction() && s.track.GroupsDone() == s.track.Groups()
	if share && s.srv.keywordsDiffer.Load() != nil {
		if c := sp.p.shared.get(sp.database); c != nil && time.Since(c.loaded) <= s.srv.opts.CatalogMaxAge {
			if ok, err := s.adoptShared(c); ok || err != nil {
				return err
			}
		}
	}
	sql := catalogQuery(sp.p.tableNames, sp.p.tables, &sp.p.known)
	readKeywords := s.srv.keywordsDiffer.Load() == nil
	if readKeywords {
		sql += keywordsQuery
	}
	q, err := s.ownQuery(sql)
	if err != nil {
		return err
	}
	// The tracker keeps the last answered message's tag until the next
	// answer: an idle session would otherwise pin the catalog's rows.
	defer func() { q.res.sets = nil }()
	if readKeywords && q.res.err == nil {
		if err := s.srv.noteKeywords(&q.res); err != nil {
			s.srv.m.Error(metrics.ErrCatalog)
			return fmt.Errorf("reading the server's keywords: %w", err)
		}
	}
	cat, err := buildCatalog(sp.p, &q.res)
	if err != nil {
		s.srv.m.Error(metrics.ErrCatalog)
		return fmt.Errorf("reading the catalog: %w", err)
	}
	sp.cat.Store(cat)
	sp.catalogReadNow = true
	if cat.authTimeout > 0 {
		s.srv.authTimeout.Store(int64(cat.authTimeout))
	}
	if q.res.status == 'I' {
		// Outside a transaction: committed schema only, which every
		// session of the database sees.
		sp.p.shared.put(cat)
	} else {
		sp.ownSchema = true
	}
	s.log.Debug("catalog read", "database", cat.db, "shared", q.res.status == 'I')
	return nil
}

// adoptShared installs c with the session's own search_path, and reports
// false when c will not do (another database, or relations created since
// it was read).
func (s *session) adoptShared(c *catalog) (bool, error) {
	q, err := s.ownQuery(sessionQuery)
	if err != nil {
		return false, err
	}
	defer func() { q.res.sets = nil }()
	if q.res.err != nil {
		return false, nil // the full read says why
	}
	if len(q.res.sets) != 1 || len(q.res.sets[0]) != 1 || len(q.res.sets[0][0]) != 3 {
		s.srv.m.Error(metrics.ErrCatalog)
		return false, errors.New("reading the search_path: malformed answer")
	}
	row := q.res.sets[0][0]
	if row[0] == nil || row[1] == nil || row[2] == nil || string(row[2]) != c.db {
		return false, nil
	}
	if maxOID, err := strconv.ParseUint(string(row[1]), 10, 32); err != nil || uint32(maxOID) != c.maxOID {
		return false, nil
	}
	cp := *c
	cp.searchPath = nil
	if p := string(row[0]); p != "" {
		cp.searchPath = strings.Split(p, ",")
	}
	s.pol.cat.Store(&cp)
	s.log.Debug("catalog taken from another session", "database", c.db)
	return true, nil
}

// ownQuery runs sql, a query of the proxy's own, on the session and waits
// for its answer. A transaction that has failed (errTxFailed) and a cancel
// request meant for the client (canceledError) are errors; any other
// failure is in the result.
func (s *session) ownQuery(sql string) (*internalQuery, error) {
	q := &internalQuery{}
	seq, _ := s.track.SendOwn(track.Query, expectation{hidden: true, inner: q})
	if err := s.sw.Message('Q', append([]byte(sql), 0)); err != nil {
		return nil, err
	}
	if err := s.sw.Flush(); err != nil {
		return nil, err
	}
	if !s.awaitSettled(seq) {
		return nil, errors.New("the connection to PostgreSQL ended")
	}
	switch q.res.code {
	case "25P02":
		q.res.sets = nil
		return nil, errTxFailed
	case "57014":
		q.res.sets = nil
		return nil, &canceledError{msg: q.res.msg}
	}
	return q, nil
}
