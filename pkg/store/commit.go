package store

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/fsync"
)

// commit writes everything in the head as blocks and records them with the
// cursors in one manifest record. On failure the head keeps its entries and
// the cursors stay where they were; the next commit retries.
func (s *Store) commit() error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if s.released {
		return ErrClosed
	}
	did, err := s.commitLocked()
	if errors.Is(err, errSimulatedCrash) {
		return err
	}
	s.mu.Lock()
	close(s.commitDone)
	s.commitDone = make(chan struct{})
	if err != nil {
		s.failing = true
		s.lastErr = err
		s.lastErrAt = time.Now()
		if s.headBytes >= s.opts.HeadMemoryBudget {
			s.paused = true
		}
	} else if did {
		s.failing = false
		s.paused = false
		s.lastErr = nil
		s.lastCommit = time.Now()
	}
	s.mu.Unlock()
	return err
}

// encodeJob is one block to write.
type encodeJob struct {
	st      *streamState
	day     int64
	entries []Entry
	out     []byte
	hdr     blockHeader
	err     error
}

func (s *Store) commitLocked() (bool, error) {
	// Cut: everything in the head joins what a failed commit left.
	s.mu.Lock()
	var streams []*streamState
	for _, st := range s.m.streams {
		if len(st.head) > 0 {
			st.headHint = len(st.head)
			if len(st.flushing) == 0 {
				// The head becomes what is flushing: both are append-only
				// and queries keep capacity-limited prefixes, so it moves
				// without a copy.
				st.flushing = st.head
			} else {
				st.flushing = append(st.flushing, st.head...)
			}
			st.flushB += st.headBytes
			st.head, st.headBytes = nil, 0
		}
		if len(st.flushing) > 0 {
			streams = append(streams, st)
		}
	}
	if len(s.pending) > 0 {
		if s.flushCur == nil {
			s.flushCur = map[string][]byte{}
		}
		for k, v := range s.pending {
			s.flushCur[k] = v
		}
		s.pending = map[string][]byte{}
	}
	if len(streams) == 0 && len(s.flushCur) == 0 {
		s.mu.Unlock()
		return false, nil
	}
	type work struct {
		st        *streamState
		entries   []Entry
		persisted bool
		tails     map[int64]*blockRef // newest small block per day, to merge into
	}
	works := make([]work, 0, len(streams))
	// A block a forwarder was handed must not take new lines: they would
	// be sent again with it (forward.go, rule 1).
	floor := s.fwdMergeFloor()
	for _, st := range streams {
		w := work{st: st, entries: st.flushing, persisted: st.persisted, tails: map[int64]*blockRef{}}
		for _, b := range st.blocks {
			if b.h.RawBytes >= maxMergeTail || b.corrupt.Load() || compareKeys(blockKey{b.seg.id, b.off}, floor) < 0 {
				continue
			}
			d := b.seg.day
			if cur := w.tails[d]; cur == nil || b.h.MaxTs > cur.h.MaxTs {
				w.tails[d] = b
			}
		}
		for _, b := range w.tails {
			b.seg.readers++ // keep the file while we read it
		}
		works = append(works, w)
	}
	cursors := make(map[string][]byte, len(s.flushCur))
	for k, v := range s.flushCur {
		cursors[k] = v
	}
	s.mu.Unlock()

	var merged []*blockRef
	var jobs []*encodeJob
	for _, w := range works {
		// Queries may hold prefixes of the flushing slice: sort a copy,
		// and only when it is out of order (a catch-up's lines mostly come
		// in order).
		sorted := w.entries
		if !slices.IsSortedFunc(sorted, compareEntries) {
			sorted = slices.Clone(sorted)
			slices.SortStableFunc(sorted, compareEntries)
		}
		for len(sorted) > 0 {
			day := dayOf(sorted[0].Ts)
			n := sort.Search(len(sorted), func(i int) bool { return dayOf(sorted[i].Ts) > day })
			part := sorted[:n]
			sorted = sorted[n:]
			// A slow stream's small new part joins its newest small block;
			// a fast stream's part makes good blocks on its own.
			if tail := w.tails[day]; tail != nil && rawSize(part) < blockTargetRaw/2 {
				if old, err := s.readBlockEntries(tail); err == nil {
					part = mergeEntries(old, part)
					merged = append(merged, tail)
				}
			}
			for _, chunk := range cutBlocks(part, blockTargetRaw) {
				jobs = append(jobs, &encodeJob{st: w.st, day: day, entries: chunk})
			}
		}
	}
	var held []*segment
	for _, w := range works {
		for _, b := range w.tails {
			held = append(held, b.seg)
		}
	}
	s.releaseSegments(held)

	s.encodeAll(jobs)
	for _, j := range jobs {
		if j.err != nil {
			return false, fmt.Errorf("commit: %w", j.err)
		}
	}

	// One segment file per partition touched.
	byDay := map[int64][]*encodeJob{}
	var days []int64
	for _, j := range jobs {
		if byDay[j.day] == nil {
			days = append(days, j.day)
		}
		byDay[j.day] = append(byDay[j.day], j)
	}
	slices.Sort(days)
	s.mu.Lock()
	segIDs := make(map[int64]uint64, len(days))
	for _, d := range days {
		segIDs[d] = s.m.nextSeg
		s.m.nextSeg++
	}
	nextStream, nextSeg := s.m.nextStream, s.m.nextSeg
	s.mu.Unlock()

	var ops []op
	ops = append(ops, op{kind: opNextIDs, next: [2]uint64{nextStream, nextSeg}})
	for _, w := range works {
		if !w.persisted {
			ops = append(ops, op{kind: opStream, id: w.st.id, lbls: w.st.lbls})
		}
	}
	ops = append(ops, s.roomOps(jobs, days, merged)...)
	var written []string
	cleanup := func() {
		for _, p := range written {
			_ = os.Remove(p)
		}
	}
	for _, d := range days {
		seg := &segment{id: segIDs[d], day: d}
		var pieces [][]byte
		var blockOps []op
		for _, j := range byDay[d] {
			blockOps = append(blockOps, op{kind: opAddBlock, stream: j.st.id, seg: seg.id, off: seg.size, hdr: j.hdr})
			pieces = append(pieces, j.out)
			seg.size += int64(len(j.out))
		}
		path := segPath(s.dir, seg)
		written = append(written, path)
		if err := s.writeSegment(path, pieces...); err != nil {
			if !errors.Is(err, errSimulatedCrash) {
				cleanup()
			}
			return false, err
		}
		ops = append(ops, op{kind: opSegment, id: seg.id, day: d, size: seg.size})
		ops = append(ops, blockOps...)
	}
	for _, b := range merged {
		ops = append(ops, op{kind: opDelBlock, seg: b.seg.id, off: b.off})
	}
	keys := make([]string, 0, len(cursors))
	for k := range cursors {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := cursors[k]
		ops = append(ops, op{kind: opCursor, key: k, present: v != nil, val: v})
	}
	if err := s.appendRecord(ops); err != nil {
		if !errors.Is(err, errSimulatedCrash) {
			cleanup()
		}
		return false, err
	}

	s.mu.Lock()
	dead, err := s.m.apply(ops)
	// The record is durable: the head's entries must go even if memory
	// disagrees with the record (a bug; reopening replays the manifest and
	// repairs memory), or a retry would store them twice.
	for _, w := range works {
		w.st.flushing = nil
		s.headBytes -= w.st.flushB
		w.st.flushB = 0
	}
	s.flushCur = nil
	ids := make([]uint64, 0, len(segIDs))
	for _, id := range segIDs {
		ids = append(ids, id)
	}
	s.fwdNoteCommit(ids, time.Now())
	s.mu.Unlock()
	if err != nil {
		return true, fmt.Errorf("commit applied to memory: %w", err)
	}
	s.removeDead(dead)
	s.maybeRewriteManifest()
	return true, nil
}

// maxMergeTail is the largest block a commit decodes and encodes again
// to append a stream's few new lines to it. Every merge re-encodes the
// whole tail, so a slow stream pays for its block once per commit that
// touches it; past a quarter of a block the tail is a fair block already.
// At half a block, a 1 GiB catch-up re-encoded 70 MB of tails (7% of
// its encoding); at a quarter it uses 2-4% less CPU and stores 7% more
// blocks, which recompaction joins (95.5 vs 94.8 MiB after it).
const maxMergeTail = blockTargetRaw / 4

func rawSize(es []Entry) int {
	n := 0
	for _, e := range es {
		n += len(e.Line)
	}
	return n
}

func compareEntries(a, b Entry) int {
	if c := cmp.Compare(a.Ts, b.Ts); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

// mergeEntries merges two sorted runs; on ties a's entry goes first.
func mergeEntries(a, b []Entry) []Entry {
	out := make([]Entry, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if compareEntries(b[j], a[i]) < 0 {
			out = append(out, b[j])
			j++
		} else {
			out = append(out, a[i])
			i++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// cutBlocks splits sorted entries into blocks of about target line bytes,
// balancing the last two so no block is a sliver.
func cutBlocks(es []Entry, target int) [][]Entry {
	total := 0
	for _, e := range es {
		total += len(e.Line)
	}
	n := max(1, (total+target-1)/target)
	if n > 1 && total/n < target/2 {
		n--
	}
	per := total/n + 1
	var out [][]Entry
	start, acc := 0, 0
	for i, e := range es {
		acc += len(e.Line)
		if (acc >= per && len(out) < n-1) || i-start+1 >= maxBlockEntries {
			out = append(out, es[start:i+1])
			start, acc = i+1, 0
		}
	}
	if start < len(es) {
		out = append(out, es[start:])
	}
	return out
}

func (s *Store) encodeAll(jobs []*encodeJob) {
	next := make(chan *encodeJob)
	var wg sync.WaitGroup
	for range min(workers(), max(1, len(jobs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fb := s.fbPool.get()
			defer s.fbPool.put(fb)
			for j := range next {
				j.out, j.hdr, j.err = encodeBlock(nil, j.entries, s.codecs, fb)
			}
		}()
	}
	raw := 0
	for _, j := range jobs {
		next <- j
		raw += rawSize(j.entries)
	}
	close(next)
	wg.Wait()
	if raw < blockTargetRaw {
		// A small commit (a quiet live tail): keep no scratch until the
		// next one.
		s.fbPool.drain()
	}
}

// writeSegment writes data, one piece after another, to a new segment file
// and syncs it and its directory.
func (s *Store) writeSegment(path string, data ...[]byte) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create partition %s: %w", dir, err)
		}
		if err := fsync.Dir(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	if err := s.fault("segment-write"); err != nil {
		return fmt.Errorf("write segment %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	for _, p := range data {
		if _, err := f.Write(p); err != nil {
			f.Close()
			return fmt.Errorf("write segment %s: %w", path, err)
		}
	}
	if err := s.fault("segment-sync"); err != nil {
		f.Close()
		return fmt.Errorf("sync segment %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync segment %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close segment %s: %w", path, err)
	}
	return fsync.Dir(dir)
}

// appendRecord makes one record durable at the manifest's end. A failed
// write is cut off again so the next record follows a valid one.
func (s *Store) appendRecord(ops []op) error {
	if s.manFile == nil {
		if err := s.rewriteManifest(); err != nil {
			return err
		}
	}
	rec := frameRecord(encodeOps(ops))
	err := s.fault("manifest-append")
	if errors.Is(err, errSimulatedCrash) {
		return err
	}
	if err == nil {
		_, err = s.manFile.WriteAt(rec, s.manSize.Load())
	}
	if err == nil {
		err = s.fault("manifest-sync")
		if errors.Is(err, errSimulatedCrash) {
			return err
		}
	}
	if err == nil {
		err = s.manFile.Sync()
	}
	if err != nil {
		if terr := s.manFile.Truncate(s.manSize.Load()); terr != nil {
			// We cannot tell what is on disk: write a fresh snapshot next time.
			_ = s.manFile.Close()
			s.manFile = nil
		}
		return fmt.Errorf("append to manifest: %w", err)
	}
	s.manSize.Add(int64(len(rec)))
	return nil
}

// rewriteManifest replaces the manifest with one snapshot record, through a
// synced temporary file renamed over the old one.
func (s *Store) rewriteManifest() error {
	s.mu.RLock()
	ops := s.m.snapshotOps()
	s.mu.RUnlock()
	data := append([]byte(manifestMagic), frameRecord(encodeOps(ops))...)
	tmp := filepath.Join(s.dir, manifestTmpName)
	path := filepath.Join(s.dir, manifestName)
	if err := s.fault("manifest-rewrite"); err != nil {
		return fmt.Errorf("rewrite manifest: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("rewrite manifest: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("rewrite manifest: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("rewrite manifest: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rewrite manifest: %w", err)
	}
	// Windows refuses to rename over an open file. Without a handle the
	// next append rewrites the manifest again if this rename fails.
	if s.manFile != nil {
		_ = s.manFile.Close()
		s.manFile = nil
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rewrite manifest: %w", err)
	}
	if err := fsync.Dir(s.dir); err != nil {
		return err
	}
	nf, err := os.OpenFile(path, os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("reopen manifest: %w", err)
	}
	s.manFile = nf
	s.manSize.Store(int64(len(data)))
	s.snapshotSize = int64(len(data))
	// The old checkpoint describes the log before the rewrite; a failure
	// here leaves it, which repair can still use.
	_ = writeCheckpoint(s.dir, data)
	return nil
}

// maybeRewriteManifest compacts the log once it is mostly history.
func (s *Store) maybeRewriteManifest() {
	if n := s.manSize.Load(); n > manifestRewriteMin && n > 4*s.snapshotSize {
		_ = s.rewriteManifest() // on failure the log simply keeps growing
	}
}

// removeDead deletes files of segments no commit references and no reader
// holds.
func (s *Store) removeDead(dead []*segment) {
	s.mu.Lock()
	paths := s.collectDeadLocked(dead)
	s.mu.Unlock()
	removeFiles(paths)
}

// releaseSegments drops readers' holds and deletes files that were only
// waiting for them.
func (s *Store) releaseSegments(segs []*segment) {
	if len(segs) == 0 {
		return
	}
	s.mu.Lock()
	for _, seg := range segs {
		seg.readers--
	}
	paths := s.collectDeadLocked(segs)
	s.mu.Unlock()
	removeFiles(paths)
}

func (s *Store) collectDeadLocked(segs []*segment) []string {
	if s.readOnly {
		return nil // the writer owns the files
	}
	var paths []string
	var ids []uint64
	days := map[int64]bool{}
	for _, seg := range segs {
		if seg.dead && !seg.deleted && seg.readers == 0 {
			seg.deleted = true
			paths = append(paths, segPath(s.dir, seg), resultCachePath(s.dir, seg.id))
			ids = append(ids, seg.id)
			days[seg.day] = true
		}
	}
	s.dropFiles(ids, nil)
	return append(paths, s.dropDaySumsLocked(days)...)
}

func removeFiles(paths []string) {
	for _, p := range paths {
		_ = os.Remove(p)
		_ = os.Remove(filepath.Dir(p)) // the partition, once empty
	}
}

// ApplyRetention drops whole partitions that are older than the retention
// period or, oldest first, while the store is over its size limit. It never
// drops the newest partition for size alone.
func (s *Store) ApplyRetention(now time.Time) error {
	if s.readOnly {
		return fmt.Errorf("retention: store %s is open read-only", s.dir)
	}
	if s.opts.Retention == 0 && s.opts.MaxBytes == 0 {
		return nil
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if s.released {
		return ErrClosed
	}
	s.mu.RLock()
	type dayInfo struct {
		day   int64
		bytes int64
	}
	var days []dayInfo
	total := s.manSize.Load()
	for d, ds := range s.m.days {
		days = append(days, dayInfo{d, ds.bytes})
		total += ds.bytes
	}
	s.mu.RUnlock()
	slices.SortFunc(days, func(a, b dayInfo) int { return cmp.Compare(a.day, b.day) })
	var ops []op
	cutoff := now.UnixNano() - int64(s.opts.Retention)
	for len(days) > 0 {
		d := days[0]
		old := s.opts.Retention > 0 && (d.day+1)*nsPerDay <= cutoff
		big := s.opts.MaxBytes > 0 && total > s.opts.MaxBytes && len(days) > 1
		if !old && !big {
			break
		}
		// Age alone never drops what a forward client has not sent; the
		// size limit does, and the loss is counted (forward.go, rule 3).
		s.mu.Lock()
		unsent := s.fwdDayUnsent(d.day)
		if unsent && big {
			s.fwdNoteDrop(d.day)
		}
		s.mu.Unlock()
		if unsent && !big {
			break
		}
		ops = append(ops, op{kind: opDropDay, day: d.day})
		total -= d.bytes
		days = days[1:]
	}
	if len(ops) == 0 {
		return nil
	}
	if err := s.appendRecord(ops); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	s.mu.Lock()
	dead, err := s.m.apply(ops)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	s.removeDead(dead)
	s.maybeRewriteManifest()
	return nil
}
