package ingest

import (
	"context"
	"time"

	"github.com/fsnotify/fsnotify"
)

// pump is one CatchUp or Run: it reads, batches and appends. A coordinator
// goroutine (run) owns the tracker and hands the files it wants read to a
// pool of workers (pump_read.go), merges what they read into a batch
// together with the positions it covers, and hands full or old batches to
// an appender goroutine (pump_append.go) that stores each in one append.
type pump struct {
	in     *Ingester
	follow bool
	tr     *tracker

	work    chan *trackedFile
	results chan *chunkResult
	busy    int
	// stopping: ctx ended or a fatal error; no new reads are handed out.
	stopping bool

	// batch is filled by the pump (lines) and the tracker (positions)
	// until it is handed to the appender.
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
}

func newPump(in *Ingester, follow bool) *pump {
	b := newBatch()
	return &pump{in: in, follow: follow, tr: newTracker(in, b), batch: b, readTime: map[string]*readTimeAcc{}}
}

// run is the coordinator loop.
func (p *pump) run(ctx context.Context) (err error) {
	in := p.in
	cursors := in.app.Cursors()
	p.loadReadTime(cursors)
	p.tr.load(cursors)

	// Workers read; the appender stores. Both stop when their channels close.
	p.work = make(chan *trackedFile)
	p.results = make(chan *chunkResult, in.opts.Workers)
	workerCtx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorkers()
	for i := 0; i < in.opts.Workers; i++ {
		go p.worker(workerCtx)
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
	p.appendReqs = make(chan *pendingBatch)
	p.failed = make(chan struct{})
	p.appenderDone = make(chan struct{})
	go p.appender(appendCtx)
	defer p.tr.close()

	if p.follow && !in.opts.NoFsnotify {
		p.tr.watch()
	}

	// Nothing is read before every file's identity is settled.
	p.tr.start()
	p.tr.publish()
	p.dispatchAll()

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
	p.heldTimer = time.NewTimer(time.Hour)
	p.heldTimer.Stop()
	defer p.heldTimer.Stop()
	if p.follow {
		heldC = p.heldTimer.C
		pollTick = time.NewTicker(in.pollInterval())
		defer pollTick.Stop()
		poll = pollTick.C
		events, werrs = p.tr.events()
	}
	passPending := false
	ctxDone := ctx.Done()
	stopping := false

	for {
		if !p.follow && !stopping && p.busy == 0 && p.idle() {
			break // catch-up: everything read
		}
		if stopping && p.busy == 0 {
			break
		}
		select {
		case <-ctxDone:
			stopping = true
			p.stopping = true
			ctxDone = nil
			poll, events = nil, nil
		case r := <-p.results:
			p.busy--
			p.merge(r)
			if !stopping && !r.done && !r.retry && !r.eof && r.err == nil {
				p.dispatch(r.tf)
			}
			if p.batch.bytes >= in.opts.BatchBytes {
				if err := p.flush(); err != nil {
					return p.finish(ctx, err)
				}
			}
		case <-poll:
			p.pass(true)
		case ev := <-events:
			if ev.Op&(fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 {
				passPending = true
			}
			passSoon.Reset(20 * time.Millisecond)
		case <-passSoon.C:
			p.pass(passPending)
			passPending = false
		case <-heldC:
			p.heldDue = time.Time{}
			p.flushHeld()
			// A released line is what a live tail waits for: store it now
			// unless reads are under way (their results will join it).
			if p.busy == 0 || p.batch.bytes >= in.opts.BatchBytes {
				if err := p.flush(); err != nil {
					return p.finish(ctx, err)
				}
			}
		case werr := <-werrs:
			in.problem("file events: %v", werr)
		case <-flushTick.C:
			if p.busy == 0 || in.opts.Now().Sub(p.batch.since) >= in.opts.BatchAge {
				if err := p.flush(); err != nil {
					return p.finish(ctx, err)
				}
			}
			p.tr.publish()
		case <-p.failed:
			return p.finish(ctx, p.appendErr)
		}
	}
	return p.finish(ctx, nil)
}

// idle reports whether no file has anything left to read (catch-up's end).
func (p *pump) idle() bool {
	for _, tf := range p.tr.files {
		if tf.queued || tf.busy {
			return false
		}
	}
	return true
}

// finish flushes pipelines and the batch, waits for the appender and
// reports the outcome.
func (p *pump) finish(ctx context.Context, cause error) error {
	p.stopping = true
	// Let busy workers hand back what they read.
	for p.busy > 0 {
		r := <-p.results
		p.busy--
		p.merge(r)
	}
	if cause == nil {
		// Entries held by multiline stages are complete as far as anyone
		// will know: store them and advance past them.
		for _, tf := range p.tr.sortedFiles() {
			if r := p.flushPipeline(tf); r != nil {
				p.merge(r)
			}
		}
		cause = p.flush()
	}
	p.tr.savePositions()
	close(p.appendReqs)
	<-p.appenderDone
	if cause == nil {
		cause = p.appendErr
	}
	p.tr.publish()
	if cause != nil {
		return cause
	}
	if !p.follow && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func (p *pump) dispatchAll() {
	for _, tf := range p.tr.sortedFiles() {
		p.dispatch(tf)
	}
}

// dispatch queues a file for a worker.
func (p *pump) dispatch(tf *trackedFile) {
	if tf.busy {
		return
	}
	tf.queued = true
	p.handOut()
}

// handOut gives queued files to idle workers. The work channel is
// unbuffered and the coordinator must keep receiving results, so at most
// Workers files are handed out; the rest stay queued.
func (p *pump) handOut() {
	// Identities first: a file is never read before the positions file
	// names it.
	p.tr.savePositions()
	for !p.stopping && p.busy < p.in.opts.Workers {
		var next *trackedFile
		for _, tf := range p.tr.sortedFiles() {
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
		p.busy++
		p.work <- next
	}
}

// pass looks at every file after an event or a poll tick.
func (p *pump) pass(rediscover bool) {
	if rediscover {
		p.tr.discover()
	}
	for _, tf := range p.tr.files {
		if !tf.busy {
			tf.queued = true
		}
	}
	p.handOut()
	p.tr.gc(p.in.opts.Now())
}

// merge takes a worker's result into the batch and the file table.
func (p *pump) merge(r *chunkResult) {
	tf := r.tf
	tf.busy = false
	tf.wasRotated = tf.rotated
	b := p.batch
	if b.since.IsZero() && (len(r.streams) > 0 || r.rawBytes > 0) {
		b.since = p.in.opts.Now()
	}
	b.addStreams(r)
	b.rawBytes += r.rawBytes
	b.trunc += r.trunc
	b.invalid += r.invalid
	p.mergeReadTime(r)
	if p.follow && tf.backlog && (r.eof || tf.lr != nil && tf.lr.eof) {
		if _, held := tf.pipe.pendingFrom(); !held {
			tf.backlog = false // caught up: from here lines are read as written
		}
	}
	if r.err != nil {
		p.in.problem("read %s: %v", tf.path, r.err)
	}
	if tf.replaced {
		tf.replaced = false
		if c := p.tr.resumeReplaced(tf); c == nil && tf.pipe != nil {
			// Nobody continues the old content: what the stages still
			// hold of it is complete now.
			held := p.newResult(tf)
			tf.pipe.flushAll(held)
			b.addStreams(held)
		}
		p.tr.readAgain(tf)
		p.handOut()
		return
	}
	p.tr.advance(tf, r.pos)
	if r.done || r.retry || (r.err != nil && tf.f == nil) {
		p.tr.retire(tf)
	} else {
		p.armHeld(tf)
	}
	p.handOut()
}

// armHeld makes sure the held-entries timer fires when tf's held entry
// becomes due. Only the coordinator calls it, on a file no worker has.
func (p *pump) armHeld(tf *trackedFile) {
	if !p.follow || p.stopping || tf.busy || tf.pipe == nil || p.tr.files[tf.key] != tf {
		return
	}
	at, ok := tf.pipe.p.NextFlush()
	if !ok {
		return
	}
	if at.IsZero() {
		at = p.in.opts.Now()
	}
	if !p.heldDue.IsZero() && !at.Before(p.heldDue) {
		return
	}
	p.heldDue = at
	// A Timer's Reset is safe on a fired or stopped timer since Go 1.23:
	// no stale value can be received afterwards.
	p.heldTimer.Reset(max(at.Sub(p.in.opts.Now()), 0))
}

// flushHeld releases the held entries that are due, of every file no
// worker is reading (a busy file flushes itself at the end of its read),
// and re-arms the timer for those still held.
func (p *pump) flushHeld() {
	now := p.in.opts.Now()
	for _, tf := range p.tr.sortedFiles() {
		if tf.busy || tf.pipe == nil || tf.f == nil {
			continue
		}
		if _, ok := tf.pipe.pendingFrom(); !ok {
			continue
		}
		r := p.newResult(tf)
		tf.pipe.flushOld(now, r)
		r.pos = tf.position(false)
		p.merge(r) // re-arms the timer if tf still holds something
	}
}

// flushPipeline releases entries a multiline stage still holds for a file
// that is not being read.
func (p *pump) flushPipeline(tf *trackedFile) *chunkResult {
	if tf.busy {
		return nil
	}
	if _, ok := tf.pipe.pendingFrom(); !ok {
		return nil
	}
	r := p.newResult(tf)
	tf.pipe.flushAll(r)
	r.pos = tf.position(false)
	return r
}
