package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/lokal-logs/lokal/pkg/labels"
)

const (
	lockName    = "LOCK"
	dataDirName = "data"
)

// Options tune a store. The zero value keeps everything forever and uses
// the default head sizes; DefaultOptions gives the documented defaults.
type Options struct {
	// Retention drops partitions whose whole day is older than this; 0
	// keeps everything.
	Retention time.Duration
	// MaxBytes drops the oldest partitions while the store is larger; 0
	// means no limit.
	MaxBytes int64

	// Head sizing; zero means the default constant.
	HeadFlushBytes   int64
	HeadMemoryBudget int64
	HeadMaxAge       time.Duration

	// CompactAfterIdle is how long ingestion must have stopped catching up
	// (no commit because the head filled up) before blocks are recompacted
	// in the background; zero means the default, negative never (Compact
	// still works).
	CompactAfterIdle time.Duration
}

// DefaultOptions are the settings a store gets when the user sets nothing.
func DefaultOptions() Options {
	return Options{Retention: DefaultRetention, MaxBytes: DefaultMaxBytes}
}

func (o Options) withDefaults() Options {
	if o.HeadFlushBytes <= 0 {
		o.HeadFlushBytes = DefaultHeadFlushBytes
	}
	if o.HeadMemoryBudget <= 0 {
		o.HeadMemoryBudget = DefaultHeadMemoryBudget
	}
	if o.HeadMemoryBudget < o.HeadFlushBytes {
		o.HeadMemoryBudget = o.HeadFlushBytes
	}
	if o.HeadMaxAge <= 0 {
		o.HeadMaxAge = DefaultHeadMaxAge
	}
	if o.CompactAfterIdle == 0 {
		o.CompactAfterIdle = DefaultCompactAfterIdle
	}
	return o
}

// ErrPaused is returned by Append while commits fail (a full disk, say)
// and the head is over its memory budget: the caller should wait and retry;
// its cursors have not advanced, so nothing is lost.
var ErrPaused = errors.New("store paused")

// ErrClosed is returned by calls on a closed store.
var ErrClosed = errors.New("store closed")

// LockedError says another process writes the store.
type LockedError struct {
	Dir string
	PID int // 0 when unknown
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("store %s is locked by pid %d (another Lokal writes it; open it read-only or stop that one)", e.Dir, e.PID)
	}
	return fmt.Sprintf("store %s is locked by another process", e.Dir)
}

// Store is a log store in one directory.
type Store struct {
	dir      string
	opts     Options
	readOnly bool
	codecs   *codecs
	// cacheGate keeps result cache writes out of a closed store.
	cacheGate resultCacheGate
	// sums records the filter summary files loaded (filtersumfile.go).
	sums filterSums

	lockFile *os.File
	manFile  *os.File // writer: manifest open for appending

	// commitMu serialises commits, retention and manifest rewrites.
	commitMu     sync.Mutex
	manSize      atomic.Int64 // valid bytes in the manifest; Info reads it without commitMu
	snapshotSize int64        // size of the last full snapshot
	released     bool         // files closed: no more commits

	mu         sync.RWMutex
	m          *meta
	headBytes  int64 // lines + per-entry overhead in head and flushing
	headOldest time.Time
	pending    map[string][]byte // cursors appended since the last cut
	flushCur   map[string][]byte // cursors of the commit in progress
	commitDone chan struct{}     // closed and replaced after every commit attempt
	lastErr    error
	lastErrAt  time.Time
	lastCommit time.Time
	lastBusy   time.Time // the head last filled up: ingestion was catching up
	paused     bool      // Append refused entries since the last failure
	failing    bool      // the last commit failed
	closed     bool
	manStamp   manifestStamp // read-only: what was loaded
	fwd        fwdState      // forwarders' positions (forward.go)

	// faults, when set by tests, can fail a commit stage to simulate a
	// full disk or a crash.
	faults func(stage string) error

	filesMu sync.Mutex
	files   map[uint64]*os.File // open segment files by id

	fbPool  builderPool
	bufPool sync.Pool // *[]byte read buffers

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// errSimulatedCrash, returned by a fault hook, makes a commit stop dead as
// if the process had been killed at that point.
var errSimulatedCrash = errors.New("simulated crash")

type manifestStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

// Open opens (creating if needed) the store in dir as its only writer.
func Open(dir string, opts Options) (*Store, error) {
	return open(dir, opts, false)
}

// OpenReadOnly opens an existing store for reading while another process may
// write it; each read sees the data committed by then.
func OpenReadOnly(dir string, opts Options) (*Store, error) {
	return open(dir, opts, true)
}

func open(dir string, opts Options, readOnly bool) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("no store directory given")
	}
	s := &Store{
		dir:        dir,
		opts:       opts.withDefaults(),
		readOnly:   readOnly,
		pending:    map[string][]byte{},
		commitDone: make(chan struct{}),
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		// Compaction waits after open too: an ingester usually starts
		// catching up right away.
		lastBusy: time.Now(),
	}
	if opts.Retention < 0 || opts.MaxBytes < 0 {
		return nil, fmt.Errorf("store retention and max bytes must not be negative")
	}
	s.fbPool = newBuilderPool(workers())
	c, err := newCodecs(codecZstd)
	if err != nil {
		return nil, fmt.Errorf("store codecs: %w", err)
	}
	s.codecs = c
	if readOnly {
		if err := s.reload(); err != nil {
			c.close()
			return nil, err
		}
		close(s.done)
		return s, nil
	}
	if err := s.openWriter(); err != nil {
		s.releaseFiles()
		c.close()
		return nil, err
	}
	if err := s.ApplyRetention(time.Now()); err != nil {
		s.lastErr = err
	}
	go s.background()
	return s, nil
}

func (s *Store) openWriter() error {
	if err := os.MkdirAll(filepath.Join(s.dir, dataDirName), 0o755); err != nil {
		return fmt.Errorf("create store: %w", err)
	}
	lf, err := lockStore(s.dir)
	if err != nil {
		return err
	}
	s.lockFile = lf

	path := filepath.Join(s.dir, manifestName)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// A store that has segments but no manifest lost it: starting
		// afresh would declare every segment garbage.
		if n := countSegmentFiles(s.dir); n > 0 {
			return &ManifestError{Path: path, Missing: true, Segments: n}
		}
		s.m = newMeta()
		if err := s.rewriteManifest(); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("read manifest: %w", err)
	default:
		m, valid, rerr := loadManifest(path, data)
		if rerr != nil && !errors.Is(rerr, errTornTail) {
			return rerr
		}
		if err := checkCheckpoint(s.dir, readCheckpoint(s.dir), data, valid); err != nil {
			return err
		}
		s.m = m
		var moved int
		if rerr != nil {
			// A torn tail is a commit that never completed: keep its bytes
			// and the segments it may have written aside, then cut it.
			q, qerr := s.quarantineTornTail(data[valid:])
			if qerr != nil {
				return qerr
			}
			// Orphans first: once the tail is cut, a valid manifest would
			// prove them garbage.
			if moved, err = s.quarantineOrphans(q); err != nil {
				return err
			}
			if err := os.Truncate(path, valid); err != nil {
				return fmt.Errorf("truncate manifest: %w", err)
			}
			s.lastErr = fmt.Errorf("recovered from an interrupted commit: %w; its %d bytes and %d segment files it may have written are in %s", rerr, len(data)-int(valid), moved, q)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("open manifest: %w", err)
		}
		s.manFile = f
		s.manSize.Store(valid)
		s.snapshotSize = valid
	}
	s.removeGarbage()
	// Without a checkpoint the store still works; repair then has only
	// MANIFEST itself.
	if err := s.checkpoint(); err != nil && s.lastErr == nil {
		s.lastErr = err
	}
	s.checkSegments()
	return nil
}

// loadManifest replays a manifest into fresh metadata. Errors other than
// a torn tail are *ManifestError naming path.
func loadManifest(path string, data []byte) (*meta, int64, error) {
	recs, valid, rerr := readManifest(data)
	var me *ManifestError
	if errors.As(rerr, &me) {
		me.Path = path
		return nil, 0, me
	}
	if rerr != nil && !errors.Is(rerr, errTornTail) {
		return nil, 0, fmt.Errorf("manifest %s: %w", path, rerr)
	}
	m := newMeta()
	for i, ops := range recs {
		if _, err := m.apply(ops); err != nil {
			return nil, 0, &ManifestError{Path: path, Record: i, Offset: -1, Reason: err.Error(), NextValid: -1}
		}
	}
	return m, valid, rerr
}

// reload reads the manifest again for a read-only store when it changed.
func (s *Store) reload() error {
	path := filepath.Join(s.dir, manifestName)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		if n := countSegmentFiles(s.dir); n > 0 {
			return &ManifestError{Path: path, Missing: true, Segments: n}
		}
	}
	if err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	stamp := manifestStamp{size: fi.Size(), mtime: fi.ModTime(), ino: inodeOf(fi)}
	s.mu.RLock()
	same := s.m != nil && stamp == s.manStamp
	s.mu.RUnlock()
	if same {
		return nil
	}
	prev := readCheckpoint(s.dir) // before the manifest: see checkCheckpoint
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	// A writer may be appending right now: an incomplete last record is
	// simply not committed yet.
	m, valid, err := loadManifest(path, data)
	if err != nil && !errors.Is(err, errTornTail) {
		return err
	}
	if err := checkCheckpoint(s.dir, prev, data, valid); err != nil {
		return err
	}
	s.mu.Lock()
	// Iterators of earlier selects may still read segments the writer has
	// replaced since: their open handles are what keeps those readable.
	keep := make(map[uint64]*segment, len(m.segments))
	for id, seg := range m.segments {
		keep[id] = seg
	}
	if s.m != nil {
		for id, seg := range s.m.segments {
			if seg.readers > 0 {
				keep[id] = seg
			}
		}
	}
	s.m = m
	s.manStamp = stamp
	s.mu.Unlock()
	s.dropFiles(nil, keep)
	s.checkSegments()
	return nil
}

// removeGarbage deletes the segment files a valid manifest proves are
// garbage: those of partitions and segments its records dropped (ids below
// its next segment id) and those of a commit that never wrote its record
// (ids from it on: the manifest ends cleanly before any record naming
// them). Anything else in data/ (files that are not segments) is left
// alone. The caller has checked the manifest; a damaged one never gets here.
func (s *Store) removeGarbage() {
	live := map[string]bool{}
	for _, seg := range s.m.segments {
		live[segPath(s.dir, seg)] = true
	}
	for _, p := range segmentFiles(s.dir) {
		if !live[p] {
			_ = os.Remove(p)
			_ = os.Remove(filepath.Dir(p)) // only succeeds when empty
		}
	}
	_ = os.Remove(filepath.Join(s.dir, manifestTmpName))
	s.removeResultCacheGarbage()
	s.removeFilterSumGarbage()
}

// checkSegments marks blocks of missing or short segment files corrupt, so
// Info reports them at once instead of at the first query.
func (s *Store) checkSegments() {
	s.mu.RLock()
	segs := make([]*segment, 0, len(s.m.segments))
	for _, seg := range s.m.segments {
		segs = append(segs, seg)
	}
	blocks := make([]*blockRef, 0, len(s.m.blocks))
	for _, b := range s.m.blocks {
		blocks = append(blocks, b)
	}
	s.mu.RUnlock()
	short := map[*segment]int64{}
	for _, seg := range segs {
		fi, err := os.Stat(segPath(s.dir, seg))
		switch {
		case err != nil:
			short[seg] = 0
		case fi.Size() < seg.size:
			short[seg] = fi.Size()
		}
	}
	if len(short) == 0 {
		return
	}
	for _, b := range blocks {
		if n, ok := short[b.seg]; ok && b.off+b.h.totalLen() > n {
			b.corrupt.Store(true)
		}
	}
}

// Close commits the head and releases the store.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cacheGate.close()
	var err error
	if !s.readOnly {
		close(s.stop)
		<-s.done
		if cerr := s.commit(); cerr != nil {
			err = fmt.Errorf("close store %s: final commit: %w", s.dir, cerr)
		}
	}
	s.commitMu.Lock()
	if !s.readOnly && err == nil {
		// Everything is committed; a checkpoint that fails (a full disk)
		// leaves the one of the last open, which repair can still use.
		_ = s.checkpoint()
	}
	s.released = true
	s.releaseFiles()
	s.commitMu.Unlock()
	s.codecs.close()
	return err
}

// abandon drops the store as a killed process would: no final commit.
func (s *Store) abandon() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	s.commitMu.Lock()
	s.released = true
	s.releaseFiles()
	s.commitMu.Unlock()
	s.codecs.close()
}

func (s *Store) releaseFiles() {
	s.dropFiles(nil, map[uint64]*segment{})
	if s.manFile != nil {
		_ = s.manFile.Close()
		s.manFile = nil
	}
	if s.lockFile != nil {
		unlockStore(s.lockFile)
		s.lockFile = nil
	}
}

// background commits the head by age and size, retries failed commits and
// applies retention.
func (s *Store) background() {
	defer close(s.done)
	tick := time.NewTicker(backgroundTick)
	defer tick.Stop()
	lastRetention := time.Now()  // Open has just applied it
	lastCheckpoint := time.Now() // and checkpointed the manifest
	checkpointed := s.manSize.Load()
	compactPending := true       // a restarted store may have work left
	var compactEnc *zstd.Encoder // kept between ticks while work remains
	defer func() {
		if compactEnc != nil {
			compactEnc.Close()
		}
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-tick.C:
		}
		committed := false
		if s.commitDue() {
			committed = s.commit() == nil
		}
		// After a commit too: a backlog of old lines must not pile up in
		// partitions that retention would drop anyway.
		if committed || time.Since(lastRetention) >= retentionInterval {
			lastRetention = time.Now()
			_ = s.ApplyRetention(time.Now())
		}
		if time.Since(lastCheckpoint) >= checkpointInterval {
			lastCheckpoint = time.Now()
			s.commitMu.Lock()
			if !s.released && s.manSize.Load() != checkpointed {
				checkpointed = s.manSize.Load()
				_ = s.checkpoint() // the older checkpoint stays usable
			}
			s.commitMu.Unlock()
		}
		// A failed recompaction (a full disk) leaves the old blocks and is
		// tried again after the next successful commit.
		if compactPending && s.compactIdle() {
			compactPending, _ = s.compactSome(&compactEnc, compactTickBudget)
		} else if committed {
			compactPending = true
		}
		if !compactPending {
			s.fbPool.drain() // nothing left to encode until the next commit
		}
	}
}

func (s *Store) commitDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.headBytes == 0 && len(s.pending) == 0 && s.flushCur == nil {
		return false
	}
	if s.failing {
		return time.Since(s.lastErrAt) >= commitRetryInterval
	}
	if s.headBytes >= s.opts.HeadFlushBytes {
		s.lastBusy = time.Now()
		return true
	}
	return time.Since(s.headOldest) >= s.opts.HeadMaxAge
}

// Flush commits the head now.
func (s *Store) Flush(ctx context.Context) error {
	if s.readOnly {
		return fmt.Errorf("flush: store %s is open read-only", s.dir)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.commit()
}

// Dir is the store's directory. The ingester keeps its positions file
// (ingest-positions) there, beside the store it belongs to.
func (s *Store) Dir() string { return s.dir }

// Cursors returns the cursors of the last durable commit.
func (s *Store) Cursors() map[string][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string][]byte, len(s.m.cursors))
	for k, v := range s.m.cursors {
		out[k] = bytes.Clone(v)
	}
	return out
}

// Append adds a batch to the head atomically: all of it or, on error, none.
func (s *Store) Append(ctx context.Context, b AppendBatch) error {
	if s.readOnly {
		return fmt.Errorf("append: store %s is open read-only", s.dir)
	}
	type prepared struct {
		ls  labels.Labels
		key string
	}
	prep := make([]prepared, len(b.Streams))
	var add int64
	for i, se := range b.Streams {
		ls := se.Labels.WithoutEmpty()
		if len(ls) == 0 && len(se.Entries) > 0 {
			return fmt.Errorf("append: stream %d has no labels", i)
		}
		for j := 1; j < len(ls); j++ {
			if ls[j-1].Name >= ls[j].Name {
				return fmt.Errorf("append: labels %s are not sorted with unique names", ls)
			}
		}
		for _, e := range se.Entries {
			if len(e.Line) > maxLineBytes {
				return fmt.Errorf("append: a line of %d bytes in stream %s is over the store's %d-byte limit", len(e.Line), ls, maxLineBytes)
			}
			add += entrySize(&e)
		}
		prep[i] = prepared{ls, labelsKey(ls)}
	}

	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.headBytes == 0 || s.headBytes+add <= s.opts.HeadMemoryBudget {
			break
		}
		if s.failing {
			err := s.lastErr
			s.paused = true
			s.mu.Unlock()
			return fmt.Errorf("%w: the head is full (%s) and commits fail: %v", ErrPaused, fmtBytes(s.opts.HeadMemoryBudget), err)
		}
		// Normal back-pressure: wait for the commit in progress.
		s.lastBusy = time.Now()
		done := s.commitDone
		s.mu.Unlock()
		s.poke()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	if s.headBytes == 0 {
		s.headOldest = time.Now()
	}
	for i, se := range b.Streams {
		if len(se.Entries) == 0 {
			continue
		}
		st := s.m.byKey[prep[i].key]
		if st == nil {
			id := s.m.nextStream
			st = s.m.addStream(id, prep[i].ls)
		}
		if st.head == nil && st.headHint > len(se.Entries) {
			// Catch-up refills a stream's head at about the pace it was
			// cut: one allocation instead of a doubling series.
			st.head = make([]Entry, 0, st.headHint)
		}
		st.head = append(st.head, se.Entries...)
		for i := range se.Entries {
			n := entrySize(&se.Entries[i])
			st.headBytes += n
			s.headBytes += n
		}
	}
	for k, v := range b.Cursors {
		if v == nil {
			s.pending[k] = nil
		} else {
			s.pending[k] = bytes.Clone(v)
		}
	}
	due := s.headBytes >= s.opts.HeadFlushBytes
	s.mu.Unlock()
	if due {
		s.poke()
	}
	return nil
}

// entrySize is what an entry costs the head: its line, its metadata and
// the fixed overhead.
func entrySize(e *Entry) int64 {
	n := int64(len(e.Line)) + entryOverhead
	for _, l := range e.Metadata {
		n += int64(len(l.Name)+len(l.Value)) + metadataPairOverhead
	}
	return n
}

func (s *Store) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Info is the store's health.
type Info struct {
	Dir         string
	ReadOnly    bool
	Streams     int
	Partitions  int
	Blocks      int
	Entries     int64 // committed entries
	RawBytes    int64 // committed line bytes
	StoredBytes int64 // segment files and manifest on disk
	HeadEntries int64 // entries in memory, not yet committed
	HeadBytes   int64 // their line bytes
	MinTime     int64 // Unix ns over committed and head entries; 0 when empty
	MaxTime     int64
	// CorruptBlocks are blocks found corrupt so far (by queries, by a
	// missing or short segment file, or by Verify); every query skips them.
	CorruptBlocks int
	// CorruptEntries are the entries those blocks hold: lost to queries.
	CorruptEntries int64
	// ManifestProblem is empty while the manifest is sound; otherwise what
	// is wrong with it (read-only stores: the writer refuses to open a
	// damaged store). Run `lokal repair`.
	ManifestProblem string
	// Quarantined counts segment files and blocks kept in quarantine/:
	// data the store could not read or account for, moved aside by
	// recovery or repair instead of being deleted.
	Quarantined int
	// UncompactedBlocks are still at ingestion's fast compression level;
	// the background loop recompacts them once ingestion is idle, except
	// each stream's live tail (at most one small block per stream).
	UncompactedBlocks int
	// Paused is true while commits fail and Append refuses new entries.
	Paused     bool
	LastError  string
	LastCommit time.Time
}

// Info reports the store's size and health.
func (s *Store) Info() Info {
	var problem string
	if s.readOnly {
		if err := s.reload(); err != nil {
			problem = err.Error()
		}
	}
	quarantined := quarantinedFiles(s.dir)
	s.mu.RLock()
	defer s.mu.RUnlock()
	in := Info{Dir: s.dir, ReadOnly: s.readOnly, Streams: len(s.m.streams), Partitions: len(s.m.days),
		Blocks: len(s.m.blocks), Paused: s.paused, LastCommit: s.lastCommit, StoredBytes: s.manSize.Load(),
		ManifestProblem: problem, Quarantined: quarantined}
	if s.readOnly {
		in.StoredBytes = s.manStamp.size
	}
	if s.lastErr != nil {
		in.LastError = s.lastErr.Error()
	}
	first := true
	span := func(lo, hi int64) {
		if first || lo < in.MinTime {
			in.MinTime = lo
		}
		if first || hi > in.MaxTime {
			in.MaxTime = hi
		}
		first = false
	}
	for _, d := range s.m.days {
		in.StoredBytes += d.bytes
	}
	for _, b := range s.m.blocks {
		in.Entries += int64(b.h.Count)
		in.RawBytes += int64(b.h.RawBytes)
		if b.corrupt.Load() {
			in.CorruptBlocks++
			in.CorruptEntries += int64(b.h.Count)
		}
		if b.h.Codec == codecZstd {
			in.UncompactedBlocks++
		}
		span(b.h.MinTs, b.h.MaxTs)
	}
	for _, st := range s.m.streams {
		for _, part := range [][]Entry{st.flushing, st.head} {
			for _, e := range part {
				in.HeadEntries++
				in.HeadBytes += int64(len(e.Line))
				span(e.Ts, e.Ts)
			}
		}
	}
	return in
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// setFaults installs a fault hook; commits read it under commitMu.
func (s *Store) setFaults(f func(stage string) error) {
	s.commitMu.Lock()
	s.faults = f
	s.commitMu.Unlock()
}

func (s *Store) fault(stage string) error {
	if s.faults == nil {
		return nil
	}
	return s.faults(stage)
}

func workers() int { return max(1, min(runtime.GOMAXPROCS(0), 4)) }
