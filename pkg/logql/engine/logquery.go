package engine

import (
	"container/heap"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
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
	if !p.End.After(p.Start) {
		return Result{Type: ValueStreams, Streams: []Stream{}}, nil
	}
	pl, err := e.compileSelector(sel)
	if err != nil {
		return Result{}, err
	}
	its, err := e.r.Select(ctx, store.SelectParams{
		Matchers:  pl.matchers,
		Start:     p.Start.UnixNano(),
		End:       p.End.UnixNano(),
		Direction: p.Direction,
		Hint:      pl.hint,
		Lines:     true,
	})
	if err != nil {
		return Result{}, fmt.Errorf("select streams: %w", err)
	}
	defer closeAll(its)

	h := &entryHeap{backward: p.Direction == store.Backward}
	for _, it := range its {
		c := &entryCursor{it: it, sp: pl.pipeline.ForStream(it.Labels())}
		ok, err := c.advance(ctx)
		if err != nil {
			return Result{}, err
		}
		if ok {
			h.cs = append(h.cs, c)
		}
	}
	heap.Init(h)

	type outStream struct {
		s      Stream
		lastTs int64
	}
	out := map[uint64][]*outStream{}
	var order []*outStream
	n := 0
	limitReached := false
	for h.Len() > 0 {
		if n >= limit {
			limitReached = true
			break
		}
		c := h.cs[0]
		cur := c.cur
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
		keep := true
		if p.Interval > 0 && len(os.s.Entries) > 0 {
			d := cur.ts - os.lastTs
			if d < 0 {
				d = -d
			}
			keep = d >= int64(p.Interval)
		}
		if keep {
			os.s.Entries = append(os.s.Entries, Entry{Ts: cur.ts, Seq: cur.seq, Line: strings.Clone(cur.line)})
			os.lastTs = cur.ts
			n++
		}
		ok, err := c.advance(ctx)
		if err != nil {
			return Result{}, err
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	streams := make([]Stream, 0, len(order))
	for _, s := range order {
		streams = append(streams, s.s)
	}
	sort.Slice(streams, func(i, j int) bool { return labels.Compare(streams[i].Labels, streams[j].Labels) < 0 })
	return Result{Type: ValueStreams, Streams: streams, LimitReached: limitReached, Stats: Stats{EntriesReturned: n}}, nil
}

func closeAll(its []store.StreamIterator) {
	for _, it := range its {
		_ = it.Close()
	}
}

// processed is one entry after the pipeline.
type processed struct {
	ts   int64
	seq  uint64
	line string
	ls   labels.Labels
	hash uint64
}

// entryCursor walks one stream iterator, running the pipeline, and holds the
// next entry that survives it.
type entryCursor struct {
	it    store.StreamIterator
	sp    *log.StreamPipeline
	batch *store.Batch
	i     int
	cur   processed

	// text caches the label text of the last set seen: Loki breaks ties
	// between streams by it, and it is built only when a tie happens.
	lastLs   labels.Labels
	lastText string
}

func (c *entryCursor) text() string {
	ls := c.cur.ls
	if c.lastText == "" || !labels.Equal(c.lastLs, ls) {
		c.lastLs, c.lastText = ls, ls.String()
	}
	return c.lastText
}

func (c *entryCursor) advance(ctx context.Context) (bool, error) {
	for {
		for c.batch != nil && c.i < len(c.batch.Ts) {
			i := c.i
			c.i++
			ts := c.batch.Ts[i]
			line, ls, h, ok := c.sp.ProcessString(ts, c.batch.Lines[i])
			if !ok {
				continue
			}
			c.cur = processed{ts: ts, seq: c.batch.Seq[i], line: line, ls: ls, hash: h}
			return true, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if !c.it.Next() {
			if err := c.it.Err(); err != nil {
				return false, fmt.Errorf("read stream %s: %w", c.it.Labels(), err)
			}
			return false, nil
		}
		c.batch, c.i = c.it.At(), 0
		if len(c.batch.Lines) != len(c.batch.Ts) {
			return false, fmt.Errorf("read stream %s: store returned a batch without lines", c.it.Labels())
		}
	}
}

// entryHeap orders cursors by their current entry: oldest first forward,
// newest first backward; equal times are ordered by label text (descending
// when backward), as Loki's heap iterators do.
type entryHeap struct {
	cs       []*entryCursor
	backward bool
}

func (h *entryHeap) Len() int { return len(h.cs) }
func (h *entryHeap) Less(i, j int) bool {
	a, b := &h.cs[i].cur, &h.cs[j].cur
	if a.ts != b.ts {
		if h.backward {
			return a.ts > b.ts
		}
		return a.ts < b.ts
	}
	at, bt := h.cs[i].text(), h.cs[j].text()
	if h.backward {
		return at > bt
	}
	return at < bt
}
func (h *entryHeap) Swap(i, j int) { h.cs[i], h.cs[j] = h.cs[j], h.cs[i] }
func (h *entryHeap) Push(x any)    { h.cs = append(h.cs, x.(*entryCursor)) }
func (h *entryHeap) Pop() any {
	x := h.cs[len(h.cs)-1]
	h.cs = h.cs[:len(h.cs)-1]
	return x
}
