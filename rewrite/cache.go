package rewrite

import (
	"sync"
	"sync/atomic"
)

// clockCache is a bounded map from SQL text to its analysis (or parse
// error) with CLOCK (second-chance) eviction, an approximation of LRU in
// which a hit only takes the read lock and sets a flag: concurrent hits do
// not serialize, and a hit does not allocate.
type clockCache struct {
	mu      sync.RWMutex
	max     int
	entries map[string]*cacheEntry
	ring    []*cacheEntry // slots in insertion order, swept by hand
	hand    int
	hits    atomic.Uint64
	misses  atomic.Uint64
	evicted atomic.Uint64
}

type cacheEntry struct {
	key string
	a   *Analysis
	err error
	ref atomic.Bool // used since the hand last passed
}

func newClockCache(max int) *clockCache {
	return &clockCache{max: max, entries: make(map[string]*cacheEntry, min(max, 1024))}
}

func (c *clockCache) get(key string) (*Analysis, error, bool) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if !ok {
		c.misses.Add(1)
		return nil, nil, false
	}
	if !e.ref.Load() { // avoid writing a shared cache line on every hit
		e.ref.Store(true)
	}
	c.hits.Add(1)
	return e.a, e.err, true
}

func (c *clockCache) put(key string, a *Analysis, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok { // a concurrent miss got here first
		return
	}
	e := &cacheEntry{key: key, a: a, err: err}
	c.entries[key] = e
	if len(c.ring) < c.max {
		c.ring = append(c.ring, e)
		return
	}
	for {
		old := c.ring[c.hand]
		if old.ref.Load() {
			old.ref.Store(false)
			c.hand = (c.hand + 1) % len(c.ring)
			continue
		}
		delete(c.entries, old.key)
		c.evicted.Add(1)
		c.ring[c.hand] = e
		c.hand = (c.hand + 1) % len(c.ring)
		return
	}
}

// CacheStats are counters of an Analyzer's cache.
type CacheStats struct {
	// Hits counts analyses found by exact text or by shape (ShapeHits);
	// Misses counts parses.
	Hits, Misses, Evictions uint64
	ShapeHits               uint64
	Len, Cap                int
}

func (c *clockCache) stats() CacheStats {
	c.mu.RLock()
	n := len(c.entries)
	c.mu.RUnlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evicted.Load(), Len: n, Cap: c.max}
}
