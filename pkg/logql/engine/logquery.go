package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// logQuery returns up to limit entries of [start, end) in the requested
// direction, merged across streams by time so that the limit keeps exactly
// the newest (backward) or oldest (forward) entries, as Loki does.
func (e *Engine) logQuery(ctx context.Context, sel syntax.LogSelectorExpr, p Params) (Result, error) {
	if p.Instant {
		return Result{}, queryErr(ErrBadQuery, "log queries are not supported as an instant query type, please change your query to a range query type")
	}
	limit := p.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > e.opts.MaxEntriesLimit {
		return Result{}, queryErr(ErrLimit, "max entries limit per query exceeded, limit > max_entries_limit_per_query (%d > %d)", limit, e.opts.MaxEntriesLimit)
	}
	if p.End.Before(p.Start) {
		return Result{}, errEndBeforeStart
	}
	if p.End.Equal(p.Start) {
		return Result{Type: ValueStreams, Streams: []Stream{}}, nil
	}
	pl, err := e.compileSelector(sel)
	if err != nil {
		return Result{}, err
	}
	sp := store.SelectParams{
		Matchers:  pl.matchers,
		Start:     p.Start.UnixNano(),
		End:       p.End.UnixNano(),
		Direction: p.Direction,
		Hint:      pl.hint,
		Lines:     true,
	}
	its, err := e.memoStreams(ctx, sel, pl, sp)
	if err != nil {
		return Result{}, err
	}
	if its == nil {
		// Without the passing-entries memo, the no-match memo still
		// skips the blocks without a wanted line.
		ctx = e.withNoMatchMemo(ctx, pl)
		if its, err = e.r.Select(ctx, sp); err != nil {
			return Result{}, fmt.Errorf("select streams: %w", err)
		}
	}
	pctx, cancel := context.WithCancel(ctx)
	feeds := &feeder{ctx: pctx, sem: make(chan struct{}, e.opts.Parallelism), parallel: e.opts.Parallelism > 1,
		threshold: sequentialBatches + 2*len(its), lim: fedLimitsFor(len(its))}
	// Order matters: stop the feeding goroutines and wait for them before
	// the iterators they read are closed.
	defer closeAll(its)
	defer feeds.wg.Wait()
	defer cancel()

	cs := make([]*entryCursor, 0, len(its))
	for _, it := range its {
		pre, _ := it.(preprocessor)
		cs = append(cs, &entryCursor{it: it, sp: pl.pipeline.ForStream(it.Labels()), pre: pre, feeds: feeds, streamHash: lokiStreamHash(it.Labels())})
	}
	m, err := newMerge(ctx, cs, entryOrder(p.Direction == store.Backward))
	if err != nil {
		return Result{}, err
	}

	type outStream struct {
		s Stream
	}
	out := map[uint64][]*outStream{}
	var order []*outStream
	n := 0
	var held int64   // bytes of the lines kept, against the memory budget
	var lastTs int64 // of the last entry kept, for Interval
	limitReached := false
	for !m.empty() {
		if n >= limit {
			limitReached = true
			break
		}
		cur := m.top().cur
		var os *outStream
		for _, s := range out[cur.hash] {
			if labels.Equal(s.s.Labels, cur.ls) {
				os = s
				break
			}
		}
		if os == nil {
			os = &outStream{s: Stream{Labels: cur.ls}}
			out[cur.hash] = append(out[cur.hash], os)
			order = append(order, os)
		}
		// Loki's interval thins the merged output, not each stream: an
		// entry is kept when it is at least Interval past the last entry
		// kept from any stream.
		keep := true
		if p.Interval > 0 && n > 0 {
			d := cur.ts - lastTs
			if d < 0 {
				d = -d
			}
			keep = d >= int64(p.Interval)
		}
		if keep {
			if held += int64(len(cur.line)) + 32; held > e.opts.MemoryBudget {
				return Result{}, queryErr(ErrMemoryBudget, "the %d lines kept so far hold more than %d MiB (the memory budget of one query); lower the limit or narrow the query", n, e.opts.MemoryBudget>>20)
			}
			os.s.Entries = append(os.s.Entries, Entry{Ts: cur.ts, Seq: cur.seq, Line: strings.Clone(cur.line)})
			lastTs = cur.ts
			n++
		}
		if err := m.next(ctx); err != nil {
			return Result{}, err
		}
	}
	streams := make([]Stream, 0, len(order))
	for _, s := range order {
		streams = append(streams, s.s)
	}
	// Loki sorts streams by their label text, which differs from
	// labels.Compare where one set extends another ({a="x", b="y"} sorts
	// before {a="x"}).
	keys := make([]string, len(streams))
	for i := range streams {
		keys[i] = streams[i].Labels.String()
	}
	sort.Sort(byKey{keys, streams})
	return Result{Type: ValueStreams, Streams: streams, LimitReached: limitReached, Stats: Stats{EntriesReturned: n}}, nil
}

func closeAll(its []store.StreamIterator) {
	for _, it := range its {
		_ = it.Close()
	}
}

type byKey struct {
	keys    []string
	streams []Stream
}

func (b byKey) Len() int           { return len(b.keys) }
func (b byKey) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey) Swap(i, j int) {
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
	b.streams[i], b.streams[j] = b.streams[j], b.streams[i]
}
