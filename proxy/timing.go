package proxy

import (
	"sync"
	"time"
)

// timingQueue pairs the start of each query (Query, Sync or FunctionCall
// from the client) with the ReadyForQuery that ends it. Each of those
// messages produces exactly one ReadyForQuery, in order.
type timingQueue struct {
	mu    sync.Mutex
	buf   []time.Time
	head  int
	count int
}

// maxPendingTimings bounds the queue for clients that pipeline without
// reading; beyond it, starts are dropped and those queries go unmeasured.
const maxPendingTimings = 4096

func (q *timingQueue) push(t time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.count == len(q.buf) {
		if len(q.buf) >= maxPendingTimings {
			return
		}
		nb := make([]time.Time, max(8, 2*len(q.buf)))
		for i := 0; i < q.count; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.count)%len(q.buf)] = t
	q.count++
}

func (q *timingQueue) pop() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.count == 0 {
		return time.Time{}, false
	}
	t := q.buf[q.head]
	q.head = (q.head + 1) % len(q.buf)
	q.count--
	return t, true
}
