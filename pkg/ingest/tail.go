package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/klauspost/compress/gzip"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// minCopyFingerprint is the shortest head that may identify a copy: a few
// bytes shared by chance must not make a new file look like an old one.
const minCopyFingerprint = 32

// doneGrace is how long the position of a finished file is kept after the
// file disappears: logrotate's delaycompress writes the .gz of a generation
// later, and that .gz must be recognised as already read.
const doneGrace = 7 * 24 * time.Hour

// mtimeSlack allows for file systems whose mtime clock is coarser than the
// wall clock (a few ms on Linux), so a successor written right after a
// position was stored is not mistaken for an older generation.
const mtimeSlack = 2 * time.Second

// gcEvery is how often finished files are checked for disappearance.
const gcEvery = 30 * time.Second

// tailedFile is one file being read. The coordinator owns it, except while
// it is handed to a worker (busy), which then owns it alone.
type tailedFile struct {
	key    string
	t      *target
	id     fileID
	fp     fingerprint
	name   string // filename label: the path it was discovered at
	path   string // where it is now (resolved)
	gz     bool
	f      *os.File
	zr     *gzip.Reader
	lr     *lineReader
	pipe   *filePipeline
	size   int64
	mtime  time.Time
	busy   bool
	queued bool

	// rotated: name no longer leads to this file (renamed, deleted, or a
	// copy being finished); it is read to its end, then closed.
	rotated    bool
	lastGrowth time.Time
	// wasRotated is rotated as last seen by the coordinator (for health).
	wasRotated bool
	// replaced: the worker found the file shrunk or its head rewritten.
	replaced bool
	// backlog: the file was there when the run started and has not been
	// read to its end since; its read-time entries are counted.
	backlog bool
}

// position returns the cursor value for what has been handed over so far:
// lines still held (an unterminated one, or a multiline entry in the
// making) are read again after a restart.
func (tf *tailedFile) position(done bool) position {
	off := tf.lr.pendingStart()
	if p, ok := tf.pipe.pendingFrom(); ok && p < off {
		off = p
	}
	return position{Offset: off, FP: tf.fp.String(), Path: tf.path, Name: tf.name, Target: tf.t.key,
		Size: tf.size, Dev: tf.id.Dev, Ino: tf.id.Ino, Gzip: tf.gz, Done: done}
}

func (tf *tailedFile) close() {
	if tf.zr != nil {
		tf.zr.Close()
		tf.zr = nil
	}
	if tf.f != nil {
		tf.f.Close()
		tf.f = nil
	}
}

// chunkResult is what a worker hands back after reading one file.
type chunkResult struct {
	tf       *tailedFile
	streams  map[uint64]*store.StreamEntries
	extra    []*store.StreamEntries // hash collisions
	last     *store.StreamEntries   // stream of the previous entry
	pos      position
	rawBytes int64
	lines    int64
	trunc    int64
	invalid  int64
	eof      bool
	done     bool // read to its end and closed
	retry    bool // closed unfinished (a .gz still being written): rediscover
	err      error
	// countReadTime: count the entries that keep their read time (see
	// readtime.go) in readTime.
	countReadTime bool
	readTime      []*readTimeAcc
}

// tailer is one CatchUp or Run: a coordinator goroutine (run) that owns the
// file table, a pool of workers that read, and an appender that stores.
type tailer struct {
	in     *Ingester
	follow bool

	known   map[string]position // cursor values, as last handed to the appender
	sc      *sidecar            // identities the store may not have committed yet
	files   map[string]*tailedFile
	byID    map[fileID]*tailedFile
	ignored map[fileID]string // copies of tracked files, not read
	claimed map[string]string // discovered path -> target key

	work    chan *tailedFile
	results chan *chunkResult
	busy    int
	// stopping: ctx ended or a fatal error; no new reads are handed out.
	stopping bool
	// starting: files are being matched with positions; nothing is read
	// before every file's identity is settled (a file read while its copy
	// is being judged could be read twice).
	starting bool

	batch      *pendingBatch
	appendReqs chan *pendingBatch
	// failed closes when the appender gives up (appendErr says why);
	// appenderDone closes when it has returned.
	failed       chan struct{}
	appenderDone chan struct{}
	appendErr    error

	// heldDue is when the earliest entry held by a file's stages becomes
	// due (zero: none armed); heldTimer fires then. One timer serves every
	// file, so a quiet file's last line is released on time without a
	// timer per line or a poll tick.
	heldDue   time.Time
	heldTimer *time.Timer

	// readTime counts entries stored at their read time, by file and
	// stream; readTimeDirty says the counts changed since the last batch.
	readTime      map[string]*readTimeAcc
	readTimeDirty bool

	watcher  *fsnotify.Watcher
	watched  map[string]bool
	lastGC   time.Time
	rejected map[string]string
	matched  int
}

func newTailer(in *Ingester, follow bool) *tailer {
	return &tailer{in: in, follow: follow,
		known: map[string]position{}, files: map[string]*tailedFile{}, byID: map[fileID]*tailedFile{},
		ignored: map[fileID]string{}, claimed: map[string]string{}, watched: map[string]bool{},
		rejected: map[string]string{}, readTime: map[string]*readTimeAcc{}}
}

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
	return &pendingBatch{streams: map[uint64][]*store.StreamEntries{}, cursors: map[string][]byte{}}
}

func (b *pendingBatch) empty() bool { return len(b.order) == 0 && len(b.cursors) == 0 }

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

func (b *pendingBatch) appendBatch() store.AppendBatch {
	out := store.AppendBatch{Cursors: b.cursors, Streams: make([]store.StreamEntries, 0, len(b.order))}
	for _, se := range b.order {
		out.Streams = append(out.Streams, *se)
	}
	return out
}

func (t *tailer) setCursor(key string, p *position) {
	if t.batch.since.IsZero() {
		t.batch.since = t.in.opts.Now()
	}
	if p == nil {
		delete(t.known, key)
		t.batch.cursors[key] = nil
		t.forget(key)
		return
	}
	p.Seen = t.in.opts.Now().UnixNano()
	t.known[key] = *p
	t.batch.cursors[key] = encodePosition(*p)
}

// run is the coordinator loop.
func (t *tailer) run(ctx context.Context) (err error) {
	in := t.in
	t.batch = newBatch()
	cursors := in.app.Cursors()
	t.loadReadTime(cursors)
	for k, v := range cursors {
		if len(k) < len(cursorPrefix) || k[:len(cursorPrefix)] != cursorPrefix {
			continue // not ours
		}
		p, _, derr := decodePosition(v)
		if derr != nil {
			in.problem("position %s is unreadable (%v): the file will be read from its start", k, derr)
			continue
		}
		t.known[k] = p
	}
	t.sc = newSidecar(in.app)
	t.loadPositions()

	// Workers read; the appender stores. Both stop when their channels close.
	t.work = make(chan *tailedFile)
	t.results = make(chan *chunkResult, in.opts.Workers)
	workerCtx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorkers()
	for i := 0; i < in.opts.Workers; i++ {
		go t.worker(workerCtx)
	}
	// The appender outlives ctx by finalAppendTimeout so what was read when
	// ctx ended still gets stored.
	appendCtx, cancelAppend := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAppend()
	go func() {
		select {
		case <-ctx.Done():
			timer := time.NewTimer(finalAppendTimeout)
			defer timer.Stop()
			select {
			case <-timer.C:
				cancelAppend()
			case <-appendCtx.Done():
			}
		case <-appendCtx.Done():
		}
	}()
	t.appendReqs = make(chan *pendingBatch)
	t.failed = make(chan struct{})
	t.appenderDone = make(chan struct{})
	go t.appender(appendCtx)
	defer func() {
		for _, tf := range t.files {
			if !tf.busy {
				tf.close()
			}
		}
		if t.watcher != nil {
			t.watcher.Close()
		}
	}()

	if t.follow && !in.opts.NoFsnotify {
		if w, werr := fsnotify.NewWatcher(); werr != nil {
			in.problem("file events unavailable (%v): polling every %s", werr, in.pollInterval())
		} else {
			t.watcher = w
		}
	}

	t.starting = true
	t.discover()
	t.resumeOrphans()
	t.recoverUnmatched()
	t.trackSuccessors()
	for _, tf := range t.files {
		tf.backlog = true
	}
	t.starting = false
	t.publishFiles()
	t.dispatchAll()

	var (
		poll      <-chan time.Time
		pollTick  *time.Ticker
		events    <-chan fsnotify.Event
		werrs     <-chan error
		passSoon  = time.NewTimer(time.Hour)
		flushTick = time.NewTicker(in.opts.BatchAge)
		heldC     <-chan time.Time
	)
	passSoon.Stop()
	defer flushTick.Stop()
	t.heldTimer = time.NewTimer(time.Hour)
	t.heldTimer.Stop()
	defer t.heldTimer.Stop()
	if t.follow {
		heldC = t.heldTimer.C
		pollTick = time.NewTicker(in.pollInterval())
		defer pollTick.Stop()
		poll = pollTick.C
		if t.watcher != nil {
			events, werrs = t.watcher.Events, t.watcher.Errors
		}
	}
	passPending := false
	ctxDone := ctx.Done()
	stopping := false

	for {
		if !t.follow && !stopping && t.busy == 0 && t.idle() {
			break // catch-up: everything read
		}
		if stopping && t.busy == 0 {
			break
		}
		select {
		case <-ctxDone:
			stopping = true
			t.stopping = true
			ctxDone = nil
			poll, events = nil, nil
		case r := <-t.results:
			t.busy--
			t.merge(r)
			if !stopping && !r.done && !r.retry && !r.eof && r.err == nil {
				t.dispatch(r.tf)
			}
			if t.batch.bytes >= in.opts.BatchBytes {
				if err := t.flush(); err != nil {
					return t.finish(ctx, err)
				}
			}
		case <-poll:
			t.pass(true)
		case ev := <-events:
			if ev.Op&(fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 {
				passPending = true
			}
			passSoon.Reset(20 * time.Millisecond)
		case <-passSoon.C:
			t.pass(passPending)
			passPending = false
		case <-heldC:
			t.heldDue = time.Time{}
			t.flushHeld()
			// A released line is what a live tail waits for: store it now
			// unless reads are under way (their results will join it).
			if t.busy == 0 || t.batch.bytes >= in.opts.BatchBytes {
				if err := t.flush(); err != nil {
					return t.finish(ctx, err)
				}
			}
		case werr := <-werrs:
			in.problem("file events: %v", werr)
		case <-flushTick.C:
			if t.busy == 0 || in.opts.Now().Sub(t.batch.since) >= in.opts.BatchAge {
				if err := t.flush(); err != nil {
					return t.finish(ctx, err)
				}
			}
			t.publishFiles()
		case <-t.failed:
			return t.finish(ctx, t.appendErr)
		}
	}
	return t.finish(ctx, nil)
}

// idle reports whether no file has anything left to read (catch-up's end).
func (t *tailer) idle() bool {
	for _, tf := range t.files {
		if tf.queued || tf.busy {
			return false
		}
	}
	return true
}

// finish flushes pipelines and the batch, waits for the appender and
// reports the outcome.
func (t *tailer) finish(ctx context.Context, cause error) error {
	t.stopping = true
	// Let busy workers hand back what they read.
	for t.busy > 0 {
		r := <-t.results
		t.busy--
		t.merge(r)
	}
	if cause == nil {
		// Entries held by multiline stages are complete as far as anyone
		// will know: store them and advance past them.
		for _, tf := range t.sortedFiles() {
			if r := t.flushPipeline(tf); r != nil {
				t.merge(r)
			}
		}
		cause = t.flush()
	}
	t.savePositions()
	close(t.appendReqs)
	<-t.appenderDone
	if cause == nil {
		cause = t.appendErr
	}
	t.publishFiles()
	if cause != nil {
		return cause
	}
	if !t.follow && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// flush hands the batch to the appender, waiting while it is busy: that wait
// is the backpressure that bounds memory.
func (t *tailer) flush() error {
	t.stageReadTime()
	if t.batch.empty() {
		return nil
	}
	b := t.batch
	t.batch = newBatch()
	select {
	case t.appendReqs <- b:
		return nil
	case <-t.failed:
		return t.appendErr
	}
}

// appender stores batches in order, retrying refused appends without ever
// skipping one: a later cursor must never be stored before earlier lines.
func (t *tailer) appender(ctx context.Context) {
	in := t.in
	defer close(t.appenderDone)
	for b := range t.appendReqs {
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
				t.appendErr = fmt.Errorf("ingest: store %d lines: %w (they will be read again on restart)", b.lines, aerr)
				close(t.failed)
				// Drain so the coordinator never blocks on a dead appender.
				for range t.appendReqs {
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

func (t *tailer) dispatchAll() {
	for _, tf := range t.sortedFiles() {
		t.dispatch(tf)
	}
}

// dispatch queues a file for a worker. The work channel is unbuffered and
// the coordinator must keep receiving results, so at most Workers files are
// handed out; the rest wait in queued state.
func (t *tailer) dispatch(tf *tailedFile) {
	if tf.busy {
		return
	}
	tf.queued = true
	t.pump()
}

func (t *tailer) pump() {
	if !t.starting {
		// Identities first: a file is never read before the positions
		// file names it.
		t.savePositions()
	}
	for !t.stopping && !t.starting && t.busy < t.in.opts.Workers {
		var next *tailedFile
		for _, tf := range t.sortedFiles() {
			if tf.queued && !tf.busy {
				next = tf
				break
			}
		}
		if next == nil {
			return
		}
		next.queued = false
		next.busy = true
		t.busy++
		t.work <- next
	}
}

func (t *tailer) sortedFiles() []*tailedFile {
	out := make([]*tailedFile, 0, len(t.files))
	for _, tf := range t.files {
		out = append(out, tf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// pass looks at every file after an event or a poll tick.
func (t *tailer) pass(rediscover bool) {
	if rediscover {
		t.discover()
	}
	for _, tf := range t.files {
		if !tf.busy {
			tf.queued = true
		}
	}
	t.pump()
	if now := t.in.opts.Now(); now.Sub(t.lastGC) >= gcEvery {
		t.lastGC = now
		t.gcDone(now)
	}
}

// merge takes a worker's result into the batch and the file table.
func (t *tailer) merge(r *chunkResult) {
	tf := r.tf
	tf.busy = false
	tf.wasRotated = tf.rotated
	b := t.batch
	if b.since.IsZero() && (len(r.streams) > 0 || r.rawBytes > 0) {
		b.since = t.in.opts.Now()
	}
	for _, se := range r.allStreams() {
		for _, e := range se.Entries {
			b.bytes += len(e.Line)
		}
		b.lines += int64(len(se.Entries))
		b.add(se)
	}
	b.rawBytes += r.rawBytes
	b.trunc += r.trunc
	b.invalid += r.invalid
	t.mergeReadTime(r)
	if t.follow && tf.backlog && (r.eof || tf.lr != nil && tf.lr.eof) {
		if _, held := tf.pipe.pendingFrom(); !held {
			tf.backlog = false // caught up: from here lines are read as written
		}
	}
	if r.err != nil {
		t.in.problem("read %s: %v", tf.path, r.err)
	}
	if tf.replaced {
		tf.replaced = false
		t.handleReplaced(tf)
		t.pump()
		return
	}
	if old, ok := t.known[tf.key]; !ok || !samePosition(old, r.pos) {
		p := r.pos
		t.setCursor(tf.key, &p)
	}
	if r.done || r.retry || (r.err != nil && tf.f == nil) {
		t.retire(tf)
	} else {
		t.armHeld(tf)
	}
	t.pump()
}

// armHeld makes sure the held-entries timer fires when tf's held entry
// becomes due. Only the coordinator calls it, on a file no worker has.
func (t *tailer) armHeld(tf *tailedFile) {
	if !t.follow || t.stopping || tf.busy || tf.pipe == nil || t.files[tf.key] != tf {
		return
	}
	at, ok := tf.pipe.p.NextFlush()
	if !ok {
		return
	}
	if at.IsZero() {
		at = t.in.opts.Now()
	}
	if !t.heldDue.IsZero() && !at.Before(t.heldDue) {
		return
	}
	t.heldDue = at
	// A Timer's Reset is safe on a fired or stopped timer since Go 1.23:
	// no stale value can be received afterwards.
	t.heldTimer.Reset(max(at.Sub(t.in.opts.Now()), 0))
}

// flushHeld releases the held entries that are due, of every file no
// worker is reading (a busy file flushes itself at the end of its read),
// and re-arms the timer for those still held.
func (t *tailer) flushHeld() {
	now := t.in.opts.Now()
	for _, tf := range t.sortedFiles() {
		if tf.busy || tf.pipe == nil || tf.f == nil {
			continue
		}
		if _, ok := tf.pipe.pendingFrom(); !ok {
			continue
		}
		r := t.newResult(tf)
		tf.pipe.flushOld(now, r)
		r.pos = tf.position(false)
		t.merge(r) // re-arms the timer if tf still holds something
	}
}

// retire forgets a finished file; its Done position stays in known.
func (t *tailer) retire(tf *tailedFile) {
	tf.close()
	tf.pipe.release()
	delete(t.files, tf.key)
	if t.byID[tf.id] == tf {
		delete(t.byID, tf.id)
	}
}

// flushPipeline releases entries a multiline stage still holds for a file
// that is not being read.
func (t *tailer) flushPipeline(tf *tailedFile) *chunkResult {
	if tf.busy {
		return nil
	}
	if _, ok := tf.pipe.pendingFrom(); !ok {
		return nil
	}
	r := t.newResult(tf)
	tf.pipe.flushAll(r)
	r.pos = tf.position(false)
	return r
}

// publishFiles refreshes the file list of the health snapshot.
func (t *tailer) publishFiles() {
	// Busy files belong to their worker: describe every file from its
	// position, which only the coordinator writes.
	files := make([]FileStatus, 0, len(t.files))
	for _, tf := range t.sortedFiles() {
		p := t.known[tf.key]
		files = append(files, FileStatus{Path: p.Path, Name: p.Name, Job: tf.t.job, Offset: p.Offset, Size: p.Size,
			Rotated: tf.wasRotated, Gzip: p.Gzip})
	}
	done := 0
	for _, p := range t.known {
		if p.Done {
			done++
		}
	}
	in := t.in
	in.mu.Lock()
	in.hs.files = files
	in.hs.tracked = len(files)
	in.hs.done = done
	in.hs.matched = t.matched
	in.hs.rejects = make(map[string]string, len(t.rejected))
	for k, v := range t.rejected {
		in.hs.rejects[k] = v
	}
	in.mu.Unlock()
}

// watchDir asks for events of a directory (best effort: polling covers it).
func (t *tailer) watchDir(dir string) {
	if t.watcher == nil || t.watched[dir] {
		return
	}
	t.watched[dir] = true
	if err := t.watcher.Add(dir); err != nil {
		t.in.opts.Logf("watch %s: %v (polling covers it)", dir, err)
	}
}

// logTrack says why a file is (again) being read, and from where.
func (t *tailer) logTrack(how string, tf *tailedFile) {
	t.in.opts.Logf("read %s (%s, %s) from %d [%s]", tf.path, tf.name, tf.key, tf.lr.pendingStart(), how)
}

// newReader makes a line reader whose buffers come from the ingester's pool.
func (t *tailer) newReader(r io.Reader, off int64) *lineReader {
	lr := newLineReader(r, off, t.in.maxLine())
	lr.pool = &t.in.buffers
	return lr
}
