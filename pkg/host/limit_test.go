package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/ingest"
	"github.com/lokal-logs/lokal/pkg/store"
)

// waitStats yields until l shows inFlight running and queued waiting: the
// goroutines under test have reached their places. It waits for a state,
// never for a duration.
func waitStats(t *testing.T, l *Limiter, inFlight, queued int) {
	t.Helper()
	for i := 0; ; i++ {
		f, q := l.Stats()
		if f == inFlight && q == queued {
			return
		}
		if i > 10_000_000 {
			t.Fatalf("limiter shows %d running, %d waiting; want %d and %d", f, q, inFlight, queued)
		}
		runtime.Gosched()
	}
}

// Under N concurrent queries no more than the limit run at once, and the
// limit is reached; every query runs in the end.
func TestLimiterHoldsUnderLoad(t *testing.T) {
	for _, tt := range []struct {
		limit, queries, wantMax int
	}{
		{limit: 1, queries: 8, wantMax: 1},
		{limit: 2, queries: 16, wantMax: 2},
		{limit: 4, queries: 3, wantMax: 3},
		{limit: 0, queries: 6, wantMax: 6}, // unbounded
	} {
		t.Run(fmt.Sprintf("limit %d, %d queries", tt.limit, tt.queries), func(t *testing.T) {
			l := NewLimiter(tt.limit)
			var mu sync.Mutex
			maxSeen, running, ran := 0, 0, 0
			l.admitted = func(n int) { maxSeen = max(maxSeen, n) }
			gate := make(chan struct{})
			var wg sync.WaitGroup
			for range tt.queries {
				wg.Add(1)
				go func() {
					defer wg.Done()
					release, err := l.Admit(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					defer release()
					mu.Lock()
					running++
					if tt.limit > 0 && running > tt.limit {
						t.Errorf("%d queries running, limit %d", running, tt.limit)
					}
					mu.Unlock()
					<-gate
					mu.Lock()
					running--
					ran++
					mu.Unlock()
				}()
			}
			if tt.limit > 0 {
				waitStats(t, l, tt.wantMax, tt.queries-tt.wantMax)
			} else {
				for {
					mu.Lock()
					n := running
					mu.Unlock()
					if n == tt.queries {
						break
					}
					runtime.Gosched()
				}
			}
			close(gate)
			wg.Wait()
			if tt.limit > 0 && maxSeen != tt.wantMax {
				t.Errorf("at most %d in flight, want %d", maxSeen, tt.wantMax)
			}
			if ran != tt.queries {
				t.Errorf("%d queries ran, want %d", ran, tt.queries)
			}
			if f, q := l.Stats(); f != 0 || q != 0 {
				t.Errorf("after all: %d running, %d waiting", f, q)
			}
		})
	}
}

// Waiters run in the order they arrived; one whose context ends leaves
// the queue with the context's error, and the others keep their order.
func TestLimiterQueueOrder(t *testing.T) {
	for _, tt := range []struct {
		name    string
		waiters int
		cancel  map[int]bool // waiters whose context is cancelled while queued
		expire  map[int]bool // waiters whose deadline passes while queued
		want    []int
	}{
		{name: "first come first served", waiters: 5, want: []int{0, 1, 2, 3, 4}},
		{name: "cancelled waiter leaves", waiters: 4, cancel: map[int]bool{1: true}, want: []int{0, 2, 3}},
		{name: "cancelled head and tail", waiters: 4, cancel: map[int]bool{0: true, 3: true}, want: []int{1, 2}},
		{name: "expired waiter leaves", waiters: 3, expire: map[int]bool{2: true}, want: []int{0, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(1)
			hold, err := l.Admit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var order []int
			errs := make([]error, tt.waiters)
			ends := make([]func(), tt.waiters)
			var wg sync.WaitGroup
			for i := range tt.waiters {
				why := context.Canceled
				if tt.expire[i] {
					why = context.DeadlineExceeded
				}
				ctx := newEndable(why)
				ends[i] = ctx.end
				wg.Add(1)
				go func() {
					defer wg.Done()
					release, err := l.Admit(ctx)
					if err != nil {
						errs[i] = err
						return
					}
					mu.Lock()
					order = append(order, i)
					mu.Unlock()
					release()
				}()
				// The next waiter queues only after this one did.
				waitStats(t, l, 1, i+1)
			}
			left := 0
			for i := range tt.waiters {
				if !tt.cancel[i] && !tt.expire[i] {
					continue
				}
				ends[i]()
				left++
				waitStats(t, l, 1, tt.waiters-left)
			}
			hold()
			wg.Wait()
			if fmt.Sprint(order) != fmt.Sprint(tt.want) {
				t.Errorf("ran in order %v, want %v", order, tt.want)
			}
			for i, err := range errs {
				gone := tt.cancel[i] || tt.expire[i]
				if gone != (err != nil) {
					t.Errorf("waiter %d: error %v, left the queue: %v", i, err, gone)
				}
				if tt.cancel[i] && !errors.Is(err, context.Canceled) {
					t.Errorf("waiter %d: error %v does not wrap context.Canceled", i, err)
				}
				if tt.expire[i] && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("waiter %d: error %v does not wrap context.DeadlineExceeded", i, err)
				}
			}
			if f, q := l.Stats(); f != 0 || q != 0 {
				t.Errorf("after all: %d running, %d waiting", f, q)
			}
		})
	}
}

// endable is a context the test ends when it chooses, as a cancellation
// or as a deadline passing, without waiting for a clock.
type endable struct {
	context.Context
	why  error
	once sync.Once
	done chan struct{}
}

func newEndable(why error) *endable {
	return &endable{Context: context.Background(), why: why, done: make(chan struct{})}
}

func (c *endable) end()                  { c.once.Do(func() { close(c.done) }) }
func (c *endable) Done() <-chan struct{} { return c.done }
func (c *endable) Deadline() (time.Time, bool) {
	return time.Time{}, false
}

func (c *endable) Err() error {
	select {
	case <-c.done:
		return c.why
	default:
		return nil
	}
}

// A waiter whose context has already ended is refused without queueing.
func TestLimiterEndedContext(t *testing.T) {
	l := NewLimiter(1)
	ctx := newEndable(context.DeadlineExceeded)
	ctx.end()
	if _, err := l.Admit(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ended context: error %v, want one wrapping context.DeadlineExceeded", err)
	}
	if f, q := l.Stats(); f != 0 || q != 0 {
		t.Errorf("after a refused query: %d running, %d waiting", f, q)
	}
}

// A released function called twice frees one slot only.
func TestLimiterReleaseOnce(t *testing.T) {
	l := NewLimiter(1)
	release, err := l.Admit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
	release()
	if f, q := l.Stats(); f != 0 || q != 0 {
		t.Errorf("after a double release: %d running, %d waiting", f, q)
	}
}

// The operator's max_concurrent sets the host's limit (else the default),
// and every store of the host shares that one limiter.
func TestHostQueryLimit(t *testing.T) {
	for _, tt := range []struct {
		name string
		op   config.Operator
		want int
	}{
		{"default", config.Operator{}, DefaultMaxConcurrent},
		{"operator's", config.Operator{MaxConcurrent: 5}, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op := tt.op
			h := New(Options{Operator: &op, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer h.Close()
			if got := h.Queries().Limit(); got != tt.want {
				t.Errorf("limit %d, want %d", got, tt.want)
			}
			a, err := h.Acquire(t.TempDir(), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := h.Acquire(t.TempDir(), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if a.queries != h.queries || b.queries != h.queries {
				t.Error("a store has a limiter of its own: the bound must be one per process")
			}
			release, err := a.Admit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if f, _ := h.Queries().Stats(); f != 1 {
				t.Errorf("a query on one store: %d in flight on the host, want 1", f)
			}
			release()
		})
	}
}

// TestMemoryLimitFollowsQueries: a host that tunes the collector sets the
// soft memory limit to the ingester's plus a query's headroom per query in
// flight, and leaves it alone when the operator set GOMEMLIMIT.
func TestMemoryLimitFollowsQueries(t *testing.T) {
	tests := []struct {
		name      string
		gomemlim  string
		admit     int // queries admitted, then all released
		wantSets  []int64
		wantNoFun bool
	}{
		{name: "idle", wantSets: []int64{ingest.ProcessMemoryLimit}},
		{name: "two queries", admit: 2, wantSets: []int64{
			ingest.ProcessMemoryLimit,
			ingest.ProcessMemoryLimit + QueryMemoryHeadroom,
			ingest.ProcessMemoryLimit + 2*QueryMemoryHeadroom,
			ingest.ProcessMemoryLimit + QueryMemoryHeadroom,
			ingest.ProcessMemoryLimit,
		}},
		{name: "operator's GOMEMLIMIT", gomemlim: "300MiB", admit: 2, wantNoFun: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sets []int64
			set := func(n int64) int64 { sets = append(sets, n); return n }
			l := NewLimiter(2)
			l.changed = memoryLimitFor(func(k string) string {
				if k == "GOMEMLIMIT" {
					return tt.gomemlim
				}
				return ""
			}, set)
			if (l.changed == nil) != tt.wantNoFun {
				t.Fatalf("memoryLimitFor returned nil = %v, want %v", l.changed == nil, tt.wantNoFun)
			}
			var done []func()
			for i := 0; i < tt.admit; i++ {
				release, err := l.Admit(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				done = append(done, release)
			}
			for _, release := range done {
				release()
			}
			if !slices.Equal(sets, tt.wantSets) {
				t.Errorf("limits set %v, want %v", sets, tt.wantSets)
			}
		})
	}
}
