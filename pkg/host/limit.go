package host

import (
	"context"
	"fmt"
	"sync"
)

// DefaultMaxConcurrent is how many queries a process runs at once unless
// the operator says otherwise (GF_PLUGIN_MAX_CONCURRENT, or `lokal serve
// --max-concurrent`). Loki's querier runs 4; Lokal's target box has 2
// cores, and a query is CPU-bound (decompressing and filtering blocks), so
// a third query in flight adds memory (up to a query's budget, about
// 100 MB) without adding throughput. 2 keeps the process near 2 × that
// budget plus its idle size whatever the number of viewers.
const DefaultMaxConcurrent = 2

// Limiter admits at most a fixed number of queries at once; the others
// wait in arrival order (first come, first served, so no query, an alert
// rule's included, waits behind ones that came after it). A waiter whose
// context ends leaves the queue and gets the context's error.
type Limiter struct {
	limit int

	mu       sync.Mutex
	inFlight int
	queue    []*waiter

	// admitted, when set (tests), is called with the number in flight
	// each time a query is admitted, under the limiter's lock.
	admitted func(inFlight int)
	// changed, when set, is called with the number in flight each time
	// it changes, under the limiter's lock (the host's memory limit).
	changed func(inFlight int)
}

// waiter is one query in the queue; ready closes when it is admitted.
type waiter struct {
	ready chan struct{}
}

// NewLimiter returns a limiter admitting limit queries at once; limit < 1
// admits every query at once.
func NewLimiter(limit int) *Limiter {
	return &Limiter{limit: limit}
}

// Limit is the number of queries admitted at once (< 1: unbounded).
func (l *Limiter) Limit() int { return l.limit }

// Admit waits for a slot, in arrival order, and returns the function that
// frees it (call it exactly once when the query is done). When ctx ends
// first the error wraps ctx.Err() (context.Canceled or
// context.DeadlineExceeded), so callers answer it as they answer a query
// that timed out or was cancelled.
func (l *Limiter) Admit(ctx context.Context) (func(), error) {
	if l == nil || l.limit < 1 {
		return func() {}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("query not started: %w", err)
	}
	l.mu.Lock()
	if l.inFlight < l.limit && len(l.queue) == 0 {
		l.admit()
		l.mu.Unlock()
		return l.releaser(), nil
	}
	w := &waiter{ready: make(chan struct{})}
	l.queue = append(l.queue, w)
	queued := len(l.queue)
	l.mu.Unlock()
	select {
	case <-w.ready:
		return l.releaser(), nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-w.ready:
		// Admitted while the context ended: hand the slot on.
		l.release()
	default:
		l.remove(w)
	}
	return nil, fmt.Errorf("query waited for one of %d query slots (position %d in the queue; the operator sets max_concurrent): %w", l.limit, queued, ctx.Err())
}

// Stats returns the number of queries running and waiting.
func (l *Limiter) Stats() (inFlight, queued int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight, len(l.queue)
}

// admit takes a slot; l.mu is held.
func (l *Limiter) admit() {
	l.inFlight++
	if l.admitted != nil {
		l.admitted(l.inFlight)
	}
	if l.changed != nil {
		l.changed(l.inFlight)
	}
}

// releaser returns a function freeing one slot, idempotent.
func (l *Limiter) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.release()
		})
	}
}

// release frees a slot and gives it to the first waiter; l.mu is held.
func (l *Limiter) release() {
	l.inFlight--
	if l.changed != nil {
		l.changed(l.inFlight)
	}
	if len(l.queue) > 0 && l.inFlight < l.limit {
		w := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		l.admit()
		close(w.ready)
	}
}

// remove takes w out of the queue; l.mu is held.
func (l *Limiter) remove(w *waiter) {
	for i, q := range l.queue {
		if q == w {
			l.queue = append(l.queue[:i], l.queue[i+1:]...)
			return
		}
	}
}
