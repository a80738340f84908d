package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Recompaction. Catch-up ingestion compresses with zstd's fastest level,
// the only one that keeps up with a backlog on two cores. Once ingestion is
// idle, the background loop rewrites those blocks at a stronger level, a
// stream and day at a time, and merges the head's small cuts into full
// blocks on the way. Each step is an ordinary commit: a new segment file,
// synced, then one manifest record that adds the new blocks and deletes the
// old ones, so a crash leaves either the old blocks or the new ones, never
// both or neither. Queries already reading the old segments keep them open
// until they finish (segments are reference counted).
//
// Blocks written this way carry codec codecZstdStrong (decoded exactly like
// codecZstd), which is how a restarted store knows they are done.

const (
	// compactLevel and compactBlockRaw are what idle time buys. On the
	// 64 MiB loggen corpus (BenchmarkBlockCodecs, LOKAL_BLOCK_SIZE, before
	// digit splitting), stored share of raw and encode MB per CPU-second:
	// fastest in 1 MiB blocks 12.7% at 190; better 11.1% (1 MiB), 10.9%
	// (2 MiB), 10.7% (4 MiB) at 105; best 10.8%, 10.6%, 10.4% at 43. On
	// the 1 GiB corpus through the real ingester (BenchmarkCorpusCompact,
	// BenchmarkCorpusQueries), from 11.2% after catch-up: better in 4 MiB
	// blocks 10.3%, needle query 16 ms, compaction peak RSS 83 MB; in
	// 2 MiB blocks 10.5%, 11 ms, 53 MB; best in 4 MiB blocks (without
	// digit splitting) peaked at 143 MB. The plugin must stay under 150 MB
	// and answer needles fast, so better in 2 MiB blocks it is.
	compactLevel    = zstd.SpeedBetterCompression
	compactBlockRaw = 2 << 20
	// compactStepRaw bounds one batch's line bytes, and so compaction's
	// memory: the batch's entries and its new blocks.
	compactStepRaw = 2 * compactBlockRaw
	// compactSegmentRaw is about how many line bytes one step rewrites into
	// one new segment file, batch after batch: fewer, larger files, while
	// a commit waits for a step no longer than about 0.2 s.
	compactSegmentRaw = 16 << 20
	// compactTickBudget is how long the background loop compacts per tick,
	// so compaction takes a fraction of one core and yields to ingestion.
	compactTickBudget = 250 * time.Millisecond
	// DefaultCompactAfterIdle is how long appends must have stopped before
	// the background loop starts recompacting.
	DefaultCompactAfterIdle = 30 * time.Second
)

// compactCandidate reports whether a block still has fast-level data.
func compactCandidate(b *blockRef) bool {
	return b.h.Codec == codecZstd && !b.corrupt.Load()
}

// liveTail is the block the next commit of a slowly growing stream will
// merge its new lines into: the newest block of the stream's newest day,
// if it is under maxMergeTail (commit.go), the size past which a commit
// no longer merges into it. Recompacting it would only be undone by that
// merge.
func liveTail(st *streamState) *blockRef {
	var tail *blockRef
	for _, b := range st.blocks {
		if tail == nil || b.seg.day > tail.seg.day || (b.seg.day == tail.seg.day && b.h.MaxTs > tail.h.MaxTs) {
			tail = b
		}
	}
	if tail == nil || tail.h.RawBytes >= maxMergeTail {
		return nil
	}
	return tail
}

// compactIdle says whether ingestion has stopped catching up for long
// enough. A live tail of a few lines a second counts as idle: its commits
// are by age, not because the head filled up.
func (s *Store) compactIdle() bool {
	if s.opts.CompactAfterIdle < 0 {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return !s.failing && time.Since(s.lastBusy) >= s.opts.CompactAfterIdle
}

// Compact recompacts every block still at the fast level (but each stream's
// live tail, see liveTail), step by step, until none is left or ctx is done. The background loop does the same on
// its own when ingestion is idle; Compact is for callers that want it now
// (a CLI that ingests a backlog and exits).
func (s *Store) Compact(ctx context.Context) error {
	if s.readOnly {
		return fmt.Errorf("recompaction: store %s is open read-only", s.dir)
	}
	var enc *zstd.Encoder
	defer func() {
		if enc != nil {
			enc.Close()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		did, err := s.compactStep(&enc)
		if err != nil || !did {
			if err == nil {
				s.writeFilterSums()
			}
			return err
		}
	}
}

// compactSome runs steps for about budget while the store stays idle; it is
// the background loop's share. *enc is made when a step first needs it and
// kept from tick to tick while compaction goes on; it is closed and nil once
// no work is left or ingestion is busy. It returns whether work may remain.
func (s *Store) compactSome(enc **zstd.Encoder, budget time.Duration) (bool, error) {
	release := func() {
		if *enc != nil {
			(*enc).Close()
			*enc = nil
		}
	}
	start := time.Now()
	for time.Since(start) < budget {
		if !s.compactIdle() {
			release() // ingestion is busy again: do not hold the memory
			return true, nil
		}
		did, err := s.compactStep(enc)
		if err != nil || !did {
			release()
			if err == nil {
				s.writeFilterSums()
			}
			return false, err
		}
	}
	return true, nil
}

// newCompactEncoder makes a single-threaded strong encoder: compaction is
// background work and must not take both cores.
func newCompactEncoder() (*zstd.Encoder, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(compactLevel),
		zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true),
		zstd.WithWindowSize(compactBlockRaw),
		zstd.WithZeroFrames(true),
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		return nil, fmt.Errorf("recompaction: zstd encoder: %w", err)
	}
	return enc, nil
}

// compactStep rewrites batches of fast-level blocks, each of one stream,
// all of one day, into one new segment of up to about compactSegmentRaw
// line bytes, making *enc if it is nil and there is work. It returns false
// when there is nothing left to do.
func (s *Store) compactStep(enc **zstd.Encoder) (bool, error) {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if s.released {
		return false, ErrClosed
	}
	var (
		day      int64
		segID    uint64
		next     [2]uint64
		picked   = map[*blockRef]bool{}
		buf      []byte
		blockOps []op
		used     []*blockRef
		did      bool
		raw      uint64
		c        *codecs
		fb       *filterBuilder
	)
	defer func() {
		if fb != nil {
			s.fbPool.put(fb)
		}
	}()
	for raw < compactSegmentRaw {
		// Commits and retention wait on commitMu, so the choice stays valid.
		s.mu.Lock()
		batch := s.pickBatch(did, day, picked)
		if len(batch) > 0 && !did {
			day = batch[0].seg.day
			segID = s.m.nextSeg
			s.m.nextSeg++
			next = [2]uint64{s.m.nextStream, s.m.nextSeg}
		}
		for _, b := range batch {
			b.seg.readers++
			picked[b] = true
		}
		s.mu.Unlock()
		if len(batch) == 0 {
			break
		}
		did = true
		if c == nil {
			if *enc == nil {
				e, err := newCompactEncoder()
				if err != nil {
					return false, err
				}
				*enc = e
			}
			c = &codecs{codec: codecZstdStrong, enc: *enc, splitDigits: true}
			fb = s.fbPool.get()
		}
		var use []*blockRef
		var err error
		buf, blockOps, use, err = s.compactBatch(batch, c, fb, segID, buf, blockOps)
		if err != nil {
			return false, err
		}
		used = append(used, use...)
		for _, b := range use {
			raw += b.h.RawBytes
		}
	}
	if len(blockOps) == 0 {
		// Nothing to do, or every block picked turned out corrupt (now
		// marked, so not picked again).
		return did, nil
	}
	seg := &segment{id: segID, day: day, size: int64(len(buf))}
	path := segPath(s.dir, seg)
	if err := s.writeSegment(path, buf); err != nil {
		if !errors.Is(err, errSimulatedCrash) {
			_ = os.Remove(path)
		}
		return false, fmt.Errorf("recompaction: %w", err)
	}
	ops := []op{{kind: opNextIDs, next: next}, {kind: opSegment, id: segID, day: day, size: seg.size}}
	ops = append(ops, blockOps...)
	for _, b := range used {
		ops = append(ops, op{kind: opDelBlock, seg: b.seg.id, off: b.off})
	}
	if err := s.appendRecord(ops); err != nil {
		if !errors.Is(err, errSimulatedCrash) {
			_ = os.Remove(path)
		}
		return false, fmt.Errorf("recompaction: %w", err)
	}
	s.mu.Lock()
	dead, err := s.m.apply(ops)
	s.mu.Unlock()
	if err != nil {
		return true, fmt.Errorf("compact applied to memory: %w", err)
	}
	s.removeDead(dead)
	s.maybeRewriteManifest()
	return true, nil
}

// pickBatch chooses the next blocks to recompact: the first stream's
// oldest candidates of one day (of day, when sameDay), up to
// compactStepRaw line bytes, none of them picked already. s.mu is held.
func (s *Store) pickBatch(sameDay bool, day int64, picked map[*blockRef]bool) []*blockRef {
	ids := make([]uint64, 0, len(s.m.streams))
	for id := range s.m.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var batch []*blockRef
	// Only blocks every forward client has sent (forward.go, rule 2).
	floor, fwd := s.fwdSentFloor()
	for _, id := range ids {
		st := s.m.streams[id]
		tail := liveTail(st)
		var raw uint64
		for _, b := range st.blocks { // sorted by MinTs
			if !compactCandidate(b) || b == tail || picked[b] || fwdUnsent(b, floor, fwd) {
				continue
			}
			if len(batch) == 0 && !sameDay {
				day, sameDay = b.seg.day, true
			}
			if b.seg.day != day {
				continue
			}
			batch = append(batch, b)
			raw += b.h.RawBytes
			if raw >= compactStepRaw {
				break
			}
		}
		if len(batch) > 0 {
			return batch
		}
	}
	return nil
}

// compactBatch reads one stream's blocks, merges their entries and appends
// them to buf as new blocks of segment segID, returning the blocks it
// replaced. Blocks it cannot read are marked corrupt and left alone.
func (s *Store) compactBatch(batch []*blockRef, c *codecs, fb *filterBuilder, segID uint64, buf []byte, blockOps []op) ([]byte, []op, []*blockRef, error) {
	held := make([]*segment, len(batch))
	for i, b := range batch {
		held[i] = b.seg
	}
	defer s.releaseSegments(held)
	var entries []Entry
	var use []*blockRef
	for _, b := range batch {
		es, err := s.readBlockEntries(b)
		if err != nil {
			if isReadCorruption(err) {
				if !b.corrupt.Swap(true) {
					s.noteCorrupt(b, err)
				}
				continue
			}
			return buf, blockOps, nil, fmt.Errorf("recompaction: %w", err)
		}
		entries = append(entries, es...)
		use = append(use, b)
	}
	if len(use) == 0 {
		return buf, blockOps, nil, nil
	}
	// Blocks of a stream may overlap in time (out-of-order appends).
	slices.SortStableFunc(entries, compareEntries)
	stream := use[0].stream
	for _, chunk := range cutBlocks(entries, compactBlockRaw) {
		off := int64(len(buf))
		var h blockHeader
		var err error
		buf, h, err = encodeBlock(buf, chunk, c, fb)
		if err != nil {
			return buf, blockOps, nil, fmt.Errorf("recompaction: %w", err)
		}
		blockOps = append(blockOps, op{kind: opAddBlock, stream: stream.id, seg: segID, off: off, hdr: h})
	}
	return buf, blockOps, use, nil
}
