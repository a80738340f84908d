package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// pendingBatch accumulates entries and cursors for one append.
type pendingBatch struct {
	streams map[uint64][]*store.StreamEntries // by label hash, collisions chained
	order   []*store.StreamEntries
	cursors map[string][]byte
	bytes   int
	lines   int64
	since   time.Time
	// health deltas, applied when the append succeeds
	rawBytes, trunc, invalid int64
	// readTime replaces the ingester's counts when the append succeeds.
	readTime    []ReadTimeStat
	readTimeSet bool
}

func newBatch() *pendingBatch {
	b := &pendingBatch{}
	b.clear()
	return b
}

func (b *pendingBatch) clear() {
	*b = pendingBatch{streams: map[uint64][]*store.StreamEntries{}, cursors: map[string][]byte{}}
}

func (b *pendingBatch) empty() bool { return len(b.order) == 0 && len(b.cursors) == 0 }

// take returns what the batch holds and empties it in place (the tracker
// keeps writing positions to the same batch).
func (b *pendingBatch) take() *pendingBatch {
	out := *b
	b.clear()
	return &out
}

func (b *pendingBatch) add(se *store.StreamEntries) {
	h := se.Labels.Hash()
	for _, have := range b.streams[h] {
		if labels.Equal(have.Labels, se.Labels) {
			have.Entries = append(have.Entries, se.Entries...)
			return
		}
	}
	cp := &store.StreamEntries{Labels: se.Labels, Entries: se.Entries}
	b.streams[h] = append(b.streams[h], cp)
	b.order = append(b.order, cp)
}

// addStreams adds the entries of a chunk result.
func (b *pendingBatch) addStreams(r *chunkResult) {
	for _, se := range r.allStreams() {
		for _, e := range se.Entries {
			b.bytes += len(e.Line)
		}
		b.lines += int64(len(se.Entries))
		b.add(se)
	}
}

func (b *pendingBatch) appendBatch() store.AppendBatch {
	out := store.AppendBatch{Cursors: b.cursors, Streams: make([]store.StreamEntries, 0, len(b.order))}
	for _, se := range b.order {
		out.Streams = append(out.Streams, *se)
	}
	return out
}

// flush hands the batch to the appender, waiting while it is busy: that wait
// is the backpressure that bounds memory.
func (p *pump) flush() error {
	p.stageReadTime()
	if p.batch.empty() {
		return nil
	}
	b := p.batch.take()
	select {
	case p.appendReqs <- b:
		return nil
	case <-p.failed:
		return p.appendErr
	}
}

// appender stores batches in order, retrying refused appends without ever
// skipping one: a later cursor must never be stored before earlier lines.
func (p *pump) appender(ctx context.Context) {
	in := p.in
	defer close(p.appenderDone)
	for b := range p.appendReqs {
		ab := b.appendBatch()
		for {
			aerr := in.app.Append(ctx, ab)
			if aerr == nil {
				break
			}
			if ctx.Err() != nil || !errors.Is(aerr, store.ErrPaused) {
				// Only a paused store is waited for; anything else (closed,
				// refused input) ends the run. Positions did not advance,
				// so the lines are read again on restart.
				p.appendErr = fmt.Errorf("ingest: store %d lines: %w (they will be read again on restart)", b.lines, aerr)
				close(p.failed)
				// Drain so the coordinator never blocks on a dead appender.
				for range p.appendReqs {
				}
				return
			}
			in.mu.Lock()
			wasPaused := in.hs.paused
			in.hs.paused = true
			in.hs.pausedReason = aerr.Error()
			in.mu.Unlock()
			if !wasPaused {
				in.opts.Logf("ingest paused: store refused an append: %v", aerr)
			}
			select {
			case <-ctx.Done():
			case <-time.After(in.opts.RetryInterval):
			}
		}
		in.mu.Lock()
		in.hs.paused = false
		in.hs.pausedReason = ""
		in.hs.lastAppend = in.opts.Now()
		in.hs.lines += b.lines
		in.hs.bytes += b.rawBytes
		in.hs.truncated += b.trunc
		in.hs.invalid += b.invalid
		if b.readTimeSet {
			in.readTime = b.readTime
		}
		in.mu.Unlock()
		if len(ab.Streams) > 0 {
			in.notify(ab.Streams)
		}
	}
}
