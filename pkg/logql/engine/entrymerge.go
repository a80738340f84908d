package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/store"
)

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

// maxFedBatchBytes bounds the lines (or, for samples, the label sets) of
// one batch a stream's goroutine hands to the merge, and maxFedItems its
// items: every stream of a merge has a batch waiting and one being made,
// so a store batch of 8192 entries, each with a parser's label set, would
// cost every stream megabytes.
const (
	maxFedBatchBytes = 256 << 10
	maxFedItems      = 1024
)

// A merge of many streams shares fedTotalBytes and fedTotalItems among
// them: each stream holds up to three pieces (one the merge reads, one
// waiting, one being made), so a merge of 41 streams at the bounds above
// held 31 MiB of pieces besides the streams' decoded blocks. A piece is
// never cut below minFedBatchBytes and minFedItems, which keeps the
// hand-overs few.
const (
	fedTotalBytes    = 6 << 20
	fedTotalItems    = 24 << 10
	minFedBatchBytes = 16 << 10
	minFedItems      = 64
)

// fedLimits bounds the pieces a stream's goroutine hands to a merge.
type fedLimits struct{ bytes, items int }

// fedLimitsFor is the bound of each piece in a merge of n streams.
func fedLimitsFor(n int) fedLimits {
	n = 3 * max(n, 1)
	return fedLimits{
		bytes: max(minFedBatchBytes, min(maxFedBatchBytes, fedTotalBytes/n)),
		items: max(minFedItems, min(maxFedItems, fedTotalItems/n)),
	}
}

// full reports whether a piece of items holding size bytes is complete; a
// zero fedLimits bounds pieces by maxFedBatchBytes and maxFedItems.
func (l fedLimits) full(items, size int) bool {
	if l.bytes == 0 {
		l = fedLimits{maxFedBatchBytes, maxFedItems}
	}
	return size >= l.bytes || items >= l.items
}

// feeder hands a stream's reading and filtering to a goroutine once a query
// has read enough batches to be a long scan.
type feeder struct {
	ctx       context.Context
	sem       chan struct{} // bounds the goroutines filtering at once
	wg        sync.WaitGroup
	parallel  bool
	threshold int
	read      int       // batches read sequentially so far
	lim       fedLimits // of each piece a stream hands over
}

// start reads c's stream on a goroutine of its own, running the pipeline
// and copying the lines that survive it out of the store's buffers.
func (f *feeder) start(c *entryCursor) *feed[processed] {
	return startFeed(f.ctx, &f.wg, f.sem, c.it, func(b *store.Batch, r *feedRun[processed]) ([]processed, bool) {
		var out []processed
		size := 0
		for i, ts := range b.Ts {
			if stopped(f.ctx) {
				return nil, false
			}
			line, ls, h, ok := c.process(b, i)
			if !ok {
				continue
			}
			out = append(out, processed{ts: ts, seq: b.Seq[i], line: strings.Clone(line), ls: ls, hash: h})
			// Lines a template made long leave in smaller batches, so what
			// waits for the merge stays bounded.
			if size += len(line); f.lim.full(len(out), size) {
				if !r.flush(out) {
					return nil, false
				}
				out, size = nil, 0
			}
		}
		return out, true
	})
}

// entryCursor walks one stream iterator, running the pipeline, and holds the
// next entry that survives it.
type entryCursor struct {
	it    store.StreamIterator
	sp    *log.StreamPipeline
	pre   preprocessor // it, when it runs the pipeline over some entries
	batch *store.Batch
	i     int
	cur   processed

	feeds *feeder
	feed  *feed[processed] // set once the stream is read on its own goroutine

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

// preprocessor is a stream that ran the pipeline over some entries of its
// current batch itself (see memoStream).
type preprocessor interface {
	processed(i int) (line string, ls labels.Labels, hash uint64, ok bool)
}

// process runs the pipeline over entry i of b, the stream's current batch,
// unless the stream ran it already.
func (c *entryCursor) process(b *store.Batch, i int) (string, labels.Labels, uint64, bool) {
	if c.pre != nil {
		if line, ls, h, ok := c.pre.processed(i); ok {
			return line, ls, h, true
		}
	}
	return c.sp.ProcessStringMetadata(b.Ts[i], b.Lines[i], metadataAt(b, i))
}

func (c *entryCursor) advance(ctx context.Context) (bool, error) {
	for {
		if c.feed != nil {
			p, ok, err := c.feed.next(ctx)
			if ok {
				c.cur = p
			}
			if !ok && err == nil && suspended(c.it) {
				// The stream stopped short of a block the merge now
				// needs: read on, on a goroutine again.
				c.feed = nil
				continue
			}
			return ok, err
		}
		for c.batch != nil && c.i < len(c.batch.Ts) {
			if stopped(ctx) {
				return false, ctx.Err()
			}
			i := c.i
			c.i++
			ts := c.batch.Ts[i]
			line, ls, h, ok := c.process(c.batch, i)
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
			if suspended(c.it) {
				continue
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

// suspender is a stream that may stop short of its end (Next false, Err
// nil) until its reader wants more (see memoStream).
type suspender interface {
	Suspended() bool
}

// suspended reports whether it stopped short of its end: Next goes on.
func suspended(it store.StreamIterator) bool {
	s, ok := it.(suspender)
	return ok && s.Suspended()
}

// entryOrder orders cursors by their current entry: oldest first forward,
// newest first backward. Equal times across streams go in ascending order of
// the stored stream's hash in both directions, as Loki's merge iterators
// (lessAscending/lessDescending over the stream hash) do; that order decides
// which tied entries a limit keeps.
func entryOrder(backward bool) func(a, b *entryCursor) bool {
	return func(ca, cb *entryCursor) bool {
		a, b := &ca.cur, &cb.cur
		if a.ts != b.ts {
			if backward {
				return a.ts > b.ts
			}
			return a.ts < b.ts
		}
		if ha, hb := ca.streamHash, cb.streamHash; ha != hb {
			return ha < hb
		}
		return labels.Compare(ca.it.Labels(), cb.it.Labels()) < 0
	}
}
