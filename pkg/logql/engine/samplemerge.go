package engine

import (
	"context"
	"math"
	"sync"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// sampleCursor holds the next sample of one stream. The stream is read and
// its lines parsed on a goroutine of its own (parsing is the costly part of
// unwrapped queries, and they read every block anyway), and the samples
// are merged here in time order.
type sampleCursor struct {
	feed *feed[sampleRec]

	ts   int64
	v    float64
	ls   labels.Labels
	hash uint64
	// lsText is ls.String(), built only when two cursors tie on time:
	// parsers can make a new label set per line.
	lsText  string
	hasText bool
	// mark is set when the current item is no sample but the time its
	// stream has been read up to (see sampleRec.mark).
	mark bool
}

type sampleRec struct {
	ts   int64
	v    float64
	ls   labels.Labels
	hash uint64
	// mark makes the record no sample but a note that the stream has no
	// sample before ts: a stream whose lines give no sample (a parser or
	// unwrap that finds nothing in them) would otherwise be read to its
	// end before the merge could order its first sample, holding up the
	// query (and its refusals) for the whole read.
	mark bool
}

func (c *sampleCursor) text() string {
	if !c.hasText {
		c.lsText, c.hasText = c.ls.String(), true
	}
	return c.lsText
}

func (c *sampleCursor) advance(ctx context.Context) (bool, error) {
	r, ok, err := c.feed.next(ctx)
	if !ok {
		return false, err
	}
	if r.mark || c.mark || r.hash != c.hash || !labels.Equal(r.ls, c.ls) {
		c.lsText, c.hasText = "", false
	}
	c.ts, c.v, c.ls, c.hash, c.mark = r.ts, r.v, r.ls, r.hash, r.mark
	return true, nil
}

// sampleOrder orders cursors by time, ties by the text of their labels,
// then by value (NaN first): samples of one series at the same time (from
// two streams) then fold in one order however the streams are split (per
// stream, or per block from the cache), and avg, first and last come out
// the same.
func sampleOrder(a, b *sampleCursor) bool {
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	if at, bt := a.text(), b.text(); at != bt {
		return at < bt
	}
	return a.v < b.v || (math.IsNaN(a.v) && !math.IsNaN(b.v))
}

// mergeSamples merges the samples of every stream in time order, each
// stream read on a goroutine of its own (at most Parallelism parsing at
// once). The caller must call stop, which ends the readers and waits for
// them, before it closes the iterators; on error mergeSamples has stopped
// them itself.
func (ev *evaluator) mergeSamples(its []store.StreamIterator, ex *log.SampleExtractor, x *syntax.RangeAggregationExpr, rng, off int64) (m *merge[*sampleCursor], stop func(), err error) {
	ctx, cancel := context.WithCancel(ev.ctx)
	wg := &sync.WaitGroup{}
	stop = func() {
		cancel()
		wg.Wait()
	}
	sem := make(chan struct{}, ev.e.opts.Parallelism)
	cs := make([]*sampleCursor, 0, len(its))
	lim := fedLimitsFor(len(its))
	for _, it := range its {
		cs = append(cs, &sampleCursor{feed: ev.feedSamples(ctx, wg, sem, it, ex.ForStream(it.Labels()), x.Grouping, rng, off, lim)})
	}
	if m, err = newMarkedMerge(ev.ctx, cs, sampleOrder, func(c *sampleCursor) bool { return c.mark }); err != nil {
		stop()
		return nil, nil, err
	}
	return m, stop, nil
}

// feedSamples reads one stream on its own goroutine, sending the samples
// that fall in some window in pieces bounded by lim; sem bounds how many
// streams parse at once.
//
// Samples carry their grouped labels (by/without of the range aggregation),
// as Loki's extractors do: grouping runs here in parallel, and ties in the
// time-ordered merge compare the short grouped label sets.
func (ev *evaluator) feedSamples(ctx context.Context, wg *sync.WaitGroup, sem chan struct{}, it store.StreamIterator, sx *log.StreamSampleExtractor, grouping *syntax.Grouping, rng, off int64, lim fedLimits) *feed[sampleRec] {
	g := &grouper{g: grouping}
	return startFeed(ctx, wg, sem, it, func(b *store.Batch, r *feedRun[sampleRec]) ([]sampleRec, bool) {
		var recs []sampleRec
		size := 0     // bytes of the label sets made for these samples
		sent := false // some of the batch's samples were flushed
		for i, ts := range b.Ts {
			if stopped(ctx) {
				return nil, false
			}
			if lo, hi := ev.stepSpan(ts+off, rng); lo > hi {
				continue
			}
			v, ls, h, ok := sx.ProcessStringMetadata(ts, b.Lines[i], metadataAt(b, i))
			if ok {
				gl, gh := g.group(ls, h)
				if n := len(recs); n == 0 || recs[n-1].hash != gh {
					size += labelsBytes(gl)
				}
				recs = append(recs, sampleRec{ts: ts, v: v, ls: gl, hash: gh})
				if lim.full(len(recs), size) {
					if !r.flush(recs) {
						return nil, false
					}
					recs, size = nil, 0
					sent = true
				}
			}
		}
		if len(recs) == 0 && !sent && len(b.Ts) > 0 {
			// Nothing in this batch: tell the merge how far the stream
			// has got, so it orders the other streams' samples before
			// this one reads on.
			return []sampleRec{{ts: b.Ts[len(b.Ts)-1], mark: true}}, true
		}
		return recs, true
	})
}

// labelsBytes is about what a label set costs in memory: its strings and
// their headers.
func labelsBytes(ls labels.Labels) int {
	n := 24
	for _, l := range ls {
		n += 32 + len(l.Name) + len(l.Value)
	}
	return n
}
