package engine

import (
	"container/heap"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
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
	pctx, cancel := context.WithCancel(ctx)
	feeds := &feeder{ctx: pctx, sem: make(chan struct{}, e.opts.Parallelism), parallel: e.opts.Parallelism > 1,
		threshold: sequentialBatches + 2*len(its)}
	// Order matters: stop the feeding goroutines and wait for them before
	// the iterators they read are closed.
	defer closeAll(its)
	defer feeds.wg.Wait()
	defer cancel()

	h := &entryHeap{backward: p.Direction == store.Backward}
	for _, it := range its {
		c := &entryCursor{it: it, sp: pl.pipeline.ForStream(it.Labels()), feeds: feeds, streamHash: lokiStreamHash(it.Labels())}
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
		s Stream
	}
	out := map[uint64][]*outStream{}
	var order []*outStream
	n := 0
	var held int64   // bytes of the lines kept, against the memory budget
	var lastTs int64 // of the last entry kept, for Interval
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

// processed is one entry after the pipeline.
type processed struct {
	ts   int64
	seq  uint64
	line string
	ls   labels.Labels
	hash uint64
}

// sequentialBatches is how many batches a log query reads on the calling
// goroutine before it lets every stream read and filter ahead on its own
// goroutine: a query that meets its limit within the first blocks of each
// stream (the common, interactive case) then reads no block it does not
// need, and a long scan (a rare match without usable hint) still uses every
// core.
const sequentialBatches = 16

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

// maxFedBatchBytes bounds the lines of one batch a stream's goroutine
// hands to the merge.
const maxFedBatchBytes = 256 << 10

// feeder hands a stream's reading and filtering to a goroutine once a query
// has read enough batches to be a long scan.
type feeder struct {
	ctx       context.Context
	sem       chan struct{} // bounds the goroutines filtering at once
	wg        sync.WaitGroup
	parallel  bool
	threshold int
	read      int // batches read sequentially so far
}

// fedBatch is a run of entries that survived the pipeline, with lines
// copied out of the store's buffers.
type fedBatch struct {
	entries []processed
	err     error
}

func (f *feeder) start(c *entryCursor) chan fedBatch {
	ch := make(chan fedBatch, 1)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(ch)
		send := func(b fedBatch) bool {
			select {
			case ch <- b:
				return true
			case <-f.ctx.Done():
				return false
			}
		}
		defer func() {
			if r := recover(); r != nil {
				send(fedBatch{err: queryErr(ErrInternal, "internal error reading stream %s: %v", c.it.Labels(), r)})
			}
		}()
		for {
			if f.ctx.Err() != nil {
				return
			}
			select {
			case f.sem <- struct{}{}:
			case <-f.ctx.Done():
				return
			}
			if !c.it.Next() {
				<-f.sem
				if err := c.it.Err(); err != nil {
					send(fedBatch{err: fmt.Errorf("read stream %s: %w", c.it.Labels(), err)})
				}
				return
			}
			b := c.it.At()
			if len(b.Lines) != len(b.Ts) {
				<-f.sem
				send(fedBatch{err: fmt.Errorf("read stream %s: store returned a batch without lines", c.it.Labels())})
				return
			}
			var out []processed
			size := 0
			for i, ts := range b.Ts {
				if stopped(f.ctx) {
					<-f.sem
					return
				}
				line, ls, h, ok := c.sp.ProcessString(ts, b.Lines[i])
				if !ok {
					continue
				}
				out = append(out, processed{ts: ts, seq: b.Seq[i], line: strings.Clone(line), ls: ls, hash: h})
				// Lines a template made long leave in smaller batches,
				// so what waits for the merge stays bounded. The slot is
				// given back while waiting: the merge may first need a
				// stream that has none.
				if size += len(line); size >= maxFedBatchBytes {
					<-f.sem
					if !send(fedBatch{entries: out}) {
						return
					}
					out, size = nil, 0
					select {
					case f.sem <- struct{}{}:
					case <-f.ctx.Done():
						return
					}
				}
			}
			<-f.sem
			if len(out) > 0 && !send(fedBatch{entries: out}) {
				return
			}
		}
	}()
	return ch
}

// entryCursor walks one stream iterator, running the pipeline, and holds the
// next entry that survives it.
type entryCursor struct {
	it    store.StreamIterator
	sp    *log.StreamPipeline
	batch *store.Batch
	i     int
	cur   processed

	feeds   *feeder
	feed    chan fedBatch // set once the stream is read on its own goroutine
	pending []processed
	pi      int

	// streamHash is Loki's hash of the stream's stored labels, by which its
	// merge iterators order entries of equal time.
	streamHash uint64
}

// lokiStreamHash is Prometheus's labels hash (xxhash64 over name, 0xff,
// value, 0xff for each label in order), which Loki's iterators report as
// StreamHash for the stream an entry was read from.
func lokiStreamHash(ls labels.Labels) uint64 {
	d := xxhash.New()
	sep := []byte{0xff}
	for _, l := range ls {
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write(sep)
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write(sep)
	}
	return d.Sum64()
}

func (c *entryCursor) advance(ctx context.Context) (bool, error) {
	for {
		if c.feed != nil {
			if c.pi < len(c.pending) {
				c.cur = c.pending[c.pi]
				c.pi++
				return true, nil
			}
			select {
			case b, ok := <-c.feed:
				if !ok {
					return false, ctx.Err()
				}
				if b.err != nil {
					return false, b.err
				}
				c.pending, c.pi = b.entries, 0
			case <-ctx.Done():
				return false, ctx.Err()
			}
			continue
		}
		for c.batch != nil && c.i < len(c.batch.Ts) {
			if stopped(ctx) {
				return false, ctx.Err()
			}
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
		if f := c.feeds; f != nil && f.parallel && f.read >= f.threshold {
			c.batch = nil
			c.feed = f.start(c)
			continue
		}
		if !c.it.Next() {
			if err := c.it.Err(); err != nil {
				return false, fmt.Errorf("read stream %s: %w", c.it.Labels(), err)
			}
			return false, nil
		}
		if c.feeds != nil {
			c.feeds.read++
		}
		c.batch, c.i = c.it.At(), 0
		if len(c.batch.Lines) != len(c.batch.Ts) {
			return false, fmt.Errorf("read stream %s: store returned a batch without lines", c.it.Labels())
		}
	}
}

// entryHeap orders cursors by their current entry: oldest first forward,
// newest first backward. Equal times across streams go in ascending order of
// the stored stream's hash in both directions, as Loki's merge iterators
// (lessAscending/lessDescending over the stream hash) do; that order decides
// which tied entries a limit keeps.
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
	if ha, hb := h.cs[i].streamHash, h.cs[j].streamHash; ha != hb {
		return ha < hb
	}
	return labels.Compare(h.cs[i].it.Labels(), h.cs[j].it.Labels()) < 0
}
func (h *entryHeap) Swap(i, j int) { h.cs[i], h.cs[j] = h.cs[j], h.cs[i] }
func (h *entryHeap) Push(x any)    { h.cs = append(h.cs, x.(*entryCursor)) }
func (h *entryHeap) Pop() any {
	x := h.cs[len(h.cs)-1]
	h.cs = h.cs[:len(h.cs)-1]
	return x
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
