package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/lokal-logs/lokal/pkg/store"
)

// The engine merges streams in time order in two places: log queries
// (entries, newest or oldest first, up to a limit) and range aggregations
// whose functions need each series' samples in time order. Both use the
// merge below over cursors, and both may read a stream on a goroutine of
// its own that hands the merge runs of already processed items (a feed).

// mergeInput is one ordered input of a merge: advance moves it to its next
// item and reports false at its end.
type mergeInput interface {
	advance(ctx context.Context) (bool, error)
}

// merge is a k-way merge of ordered inputs: top is the input whose current
// item comes first by less. It is a binary heap with the same sift order as
// container/heap, so inputs that tie come out in the same order as they did
// with it.
type merge[C mergeInput] struct {
	cs   []C
	less func(a, b C) bool
	// skip, when set, tells an input whose current item is only a mark of
	// how far its stream has got (no item before it): the merge moves past
	// marks itself, so top is never one.
	skip func(c C) bool
}

// newMerge moves every input to its first item and keeps those that have
// one.
func newMerge[C mergeInput](ctx context.Context, inputs []C, less func(a, b C) bool) (*merge[C], error) {
	return newMarkedMerge(ctx, inputs, less, nil)
}

// newMarkedMerge is newMerge over inputs whose items may be marks (see
// merge.skip).
func newMarkedMerge[C mergeInput](ctx context.Context, inputs []C, less func(a, b C) bool, skip func(c C) bool) (*merge[C], error) {
	m := &merge[C]{cs: make([]C, 0, len(inputs)), less: less, skip: skip}
	for _, c := range inputs {
		ok, err := c.advance(ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			m.cs = append(m.cs, c)
		}
	}
	for i := len(m.cs)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	if err := m.pastMarks(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// empty reports whether every input has ended.
func (m *merge[C]) empty() bool { return len(m.cs) == 0 }

// top is the input holding the first item; only valid when !empty().
func (m *merge[C]) top() C { return m.cs[0] }

// next advances the top input past its item and restores the order,
// dropping the input when it ends, and then past any marks on top.
func (m *merge[C]) next(ctx context.Context) error {
	if err := m.step(ctx); err != nil {
		return err
	}
	return m.pastMarks(ctx)
}

// pastMarks advances inputs while the top one holds a mark.
func (m *merge[C]) pastMarks(ctx context.Context) error {
	for m.skip != nil && len(m.cs) > 0 && m.skip(m.cs[0]) {
		if err := m.step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// step advances the top input past its item and restores the order,
// dropping the input when it ends.
func (m *merge[C]) step(ctx context.Context) error {
	ok, err := m.cs[0].advance(ctx)
	if err != nil {
		return err
	}
	if !ok {
		last := len(m.cs) - 1
		m.cs[0] = m.cs[last]
		var zero C
		m.cs[last] = zero
		m.cs = m.cs[:last]
	}
	m.down(0)
	return nil
}

func (m *merge[C]) down(i int) {
	n := len(m.cs)
	for {
		j := 2*i + 1
		if j >= n {
			return
		}
		if j2 := j + 1; j2 < n && m.less(m.cs[j2], m.cs[j]) {
			j = j2
		}
		if !m.less(m.cs[j], m.cs[i]) {
			return
		}
		m.cs[i], m.cs[j] = m.cs[j], m.cs[i]
		i = j
	}
}

// stopped reports whether ctx is done. Pipelines check it before every
// line, since one line's templates and regexps can take a while, so a
// query ends close to its deadline.
func stopped(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// fed is a run of items a stream's goroutine hands to the merge, or the
// error that ended the stream.
type fed[T any] struct {
	items []T
	err   error
}

// feed is the merge's end of a stream read on its own goroutine.
type feed[T any] struct {
	ch      chan fed[T]
	pending []T
	pi      int
}

// next returns the stream's next item; ok is false once the stream ended
// (err tells whether it failed or ctx ended).
func (f *feed[T]) next(ctx context.Context) (item T, ok bool, err error) {
	for {
		if f.pi < len(f.pending) {
			item = f.pending[f.pi]
			f.pi++
			return item, true, nil
		}
		select {
		case b, open := <-f.ch:
			if !open {
				return item, false, ctx.Err()
			}
			if b.err != nil {
				return item, false, b.err
			}
			f.pending, f.pi = b.items, 0
		case <-ctx.Done():
			return item, false, ctx.Err()
		}
	}
}

// startFeed reads it on a goroutine of its own until it ends or ctx does,
// holding one of sem's slots while it reads and processes a batch; wg
// tracks the goroutine. process turns one batch (with lines) into items and
// returns those it did not flush; it returns false to stop (ctx ended).
func startFeed[T any](ctx context.Context, wg *sync.WaitGroup, sem chan struct{}, it store.StreamIterator,
	process func(b *store.Batch, r *feedRun[T]) ([]T, bool)) *feed[T] {
	r := &feedRun[T]{ctx: ctx, sem: sem, ch: make(chan fed[T], 1)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(r.ch)
		defer func() {
			p := recover()
			r.release()
			if p != nil {
				r.send(fed[T]{err: queryErr(ErrInternal, "internal error reading stream %s: %v", it.Labels(), p)})
			}
		}()
		for {
			if ctx.Err() != nil || !r.acquire() {
				return
			}
			if !it.Next() {
				r.release()
				if err := it.Err(); err != nil {
					r.send(fed[T]{err: fmt.Errorf("read stream %s: %w", it.Labels(), err)})
				}
				return
			}
			b := it.At()
			if len(b.Lines) != len(b.Ts) {
				r.release()
				r.send(fed[T]{err: fmt.Errorf("read stream %s: store returned a batch without lines", it.Labels())})
				return
			}
			rest, ok := process(b, r)
			r.release()
			if !ok || (len(rest) > 0 && !r.send(fed[T]{items: rest})) {
				return
			}
		}
	}()
	return &feed[T]{ch: r.ch}
}

// feedRun is the goroutine's end of a feed.
type feedRun[T any] struct {
	ctx  context.Context
	sem  chan struct{}
	ch   chan fed[T]
	held bool // one of sem's slots
}

func (r *feedRun[T]) acquire() bool {
	select {
	case r.sem <- struct{}{}:
		r.held = true
		return true
	case <-r.ctx.Done():
		return false
	}
}

func (r *feedRun[T]) release() {
	if r.held {
		<-r.sem
		r.held = false
	}
}

func (r *feedRun[T]) send(b fed[T]) bool {
	select {
	case r.ch <- b:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// flush sends items before the batch is done, giving the slot back while
// the merge may be waiting for a stream that has none; it returns false
// once ctx ended.
func (r *feedRun[T]) flush(items []T) bool {
	r.release()
	return r.send(fed[T]{items: items}) && r.acquire()
}
