package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/lokal-logs/lokal/pkg/store"
)

// chunkResult is what a worker hands back after reading one file.
type chunkResult struct {
	tf       *trackedFile
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
	// entryHints are the capacities a stream's entries start with, by
	// label hash: what the file's previous read gave each stream.
	entryHints map[uint64]int
}

// newResult starts a chunk result for tf: its read-time entries are
// counted while tf is being caught up on (a CatchUp counts all of them).
func (p *pump) newResult(tf *trackedFile) *chunkResult {
	return &chunkResult{tf: tf, streams: map[uint64]*store.StreamEntries{}, countReadTime: !p.follow || tf.backlog, entryHints: tf.entryHints}
}

// sizes are the entries each stream of r got, by label hash, with an
// eighth more for a read that gets a few more, bounded so
// that one odd read (a burst of empty lines) does not size later ones
// beyond reason.
func (r *chunkResult) sizes() map[uint64]int {
	if len(r.streams) == 0 {
		return nil
	}
	out := make(map[uint64]int, len(r.streams))
	for h, se := range r.streams {
		out[h] = min(len(se.Entries)+len(se.Entries)/8, maxEntryHint)
	}
	return out
}

func (r *chunkResult) allStreams() []*store.StreamEntries {
	out := make([]*store.StreamEntries, 0, len(r.streams)+len(r.extra))
	for _, se := range r.streams {
		out = append(out, se)
	}
	return append(out, r.extra...)
}

// worker reads the files the coordinator hands it, one at a time.
func (p *pump) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case tf := <-p.work:
			p.results <- p.read(tf)
		}
	}
}

// read reads one file from where it stands, up to readBudget bytes, and
// runs the lines through the file's stages. It never blocks on anything but
// the disk.
func (p *pump) read(tf *trackedFile) (r *chunkResult) {
	in := p.in
	now := in.opts.Now()
	r = p.newResult(tf)
	defer func() {
		// Stages run user-supplied templates and regexes: a panic there must
		// cost one file, not the process.
		if rec := recover(); rec != nil {
			r.err = fmt.Errorf("panic while reading: %v", rec)
			r.done = true
			r.pos = tf.position(false)
			tf.close()
		}
	}()
	if tf.f == nil || tf.pipe == nil {
		r.err = fmt.Errorf("file is closed")
		r.done = true
		r.pos = tf.position(false)
		return r
	}
	if !tf.gz {
		if err := tf.recheck(in.opts.Now); err != nil {
			r.err = err
			r.pos = tf.position(false)
			return r
		}
		if tf.replaced {
			return r // the tracker deals with it
		}
	}
	emit := func(rl rawLine) {
		if rl.Truncated > 0 {
			r.trunc++
		}
		if rl.InvalidUTF8 {
			r.invalid++
		}
		tf.pipe.process(rl, now, r)
	}
	// Nothing new in a plain file (the common case when following): no
	// buffer, no read.
	idle := !tf.gz && tf.size == tf.lr.off+int64(tf.lr.buffered())
	if idle {
		tf.lr.eof = true
	}
	for budget := readBudget; budget > 0 && !idle; {
		n, err := tf.lr.fill()
		r.rawBytes += int64(n)
		budget -= n
		tf.lr.scan(emit)
		if err != nil {
			r.err = err
			break
		}
		if n == 0 {
			break
		}
	}
	if r.rawBytes > 0 {
		tf.lastGrowth = now
	}
	r.eof = tf.lr.eof
	if p.follow {
		tf.pipe.flushOld(now, r)
	}
	if r.err != nil && tf.gz {
		if errors.Is(r.err, io.ErrUnexpectedEOF) {
			// Still being compressed: close it without finishing; the
			// next discovery resumes it from the position.
			in.opts.Logf("%s ends early (still being compressed?): read again later from %d", tf.path, tf.lr.pendingStart())
			r.pos = tf.position(false)
			tf.close()
			r.err = nil
			r.retry = true
			return r
		}
		// A corrupt .gz cannot be resumed: keep what was read, finish it.
		r.done = true
	}
	if r.eof && (tf.gz || tf.rotated) && (!p.follow || tf.gz || now.Sub(tf.lastGrowth) >= in.opts.RotatedIdle) {
		// It can no longer grow: its unterminated last line is complete.
		tf.lr.flushPartial(emit)
		tf.pipe.flushAll(r)
		r.done = true
	}
	r.pos = tf.position(r.done)
	tf.entryHints = r.sizes()
	if !p.follow || tf.backlog {
		// A backlog is read once: its pages would only crowd the cache.
		dropReadPages(tf, r.eof || r.done)
	}
	if r.eof || r.done {
		tf.lr.release()
	}
	if r.done {
		tf.close()
	}
	return r
}
