package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lokal-logs/lokal/pkg/store"
)

// pipeline makes a file's pipeline. Stages were compiled once in New, so a
// failure here is unexpected; the file is then read with no stages rather
// than not at all, and the problem reported.
func (t *tailer) pipeline(tg *target, name string) *filePipeline {
	fp, err := t.in.newFilePipeline(tg, name)
	if err != nil {
		t.in.problem("%v: reading %s without stages", err, name)
		bare := *tg
		bare.stages = nil
		fp, err = t.in.newFilePipeline(&bare, name)
		if err != nil {
			t.in.problem("%v", err)
		}
	}
	return fp
}

func (r *chunkResult) allStreams() []*store.StreamEntries {
	out := make([]*store.StreamEntries, 0, len(r.streams)+len(r.extra))
	for _, se := range r.streams {
		out = append(out, se)
	}
	return append(out, r.extra...)
}

// worker reads the files the coordinator hands it, one at a time.
func (t *tailer) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case tf := <-t.work:
			t.results <- t.read(tf)
		}
	}
}

// read reads one file from where it stands, up to readBudget bytes, and
// runs the lines through the file's stages. It never blocks on anything but
// the disk.
func (t *tailer) read(tf *tailedFile) (r *chunkResult) {
	in := t.in
	now := in.opts.Now()
	r = t.newResult(tf)
	defer func() {
		// Stages run user-supplied templates and regexes: a panic there must
		// cost one file, not the process.
		if p := recover(); p != nil {
			r.err = fmt.Errorf("panic while reading: %v", p)
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
		fi, err := tf.f.Stat()
		if err != nil {
			r.err = err
			r.pos = tf.position(false)
			return r
		}
		size := fi.Size()
		if size < tf.lr.off {
			tf.size = size
			tf.replaced = true
			return r
		}
		// A write that did not grow the file (truncated and rewritten to
		// the same size) changes only the mtime: check the head then too.
		if size != tf.size || !fi.ModTime().Equal(tf.mtime) || tf.fp.N < fingerprintBytes && size > int64(tf.fp.N) {
			head, err := readHead(tf.f)
			if err != nil {
				r.err = err
				r.pos = tf.position(false)
				return r
			}
			if !tf.fp.matches(head) {
				tf.size = size
				tf.replaced = true
				return r
			}
			if len(head) > tf.fp.N {
				tf.fp = fingerprintOf(head)
			}
		}
		tf.size = size
		tf.mtime = fi.ModTime()
		if !tf.rotated {
			t.checkRotated(tf, fi)
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
	if t.follow {
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
	if r.eof && (tf.gz || tf.rotated) && (!t.follow || tf.gz || now.Sub(tf.lastGrowth) >= in.opts.RotatedIdle) {
		// It can no longer grow: its unterminated last line is complete.
		tf.lr.flushPartial(emit)
		tf.pipe.flushAll(r)
		r.done = true
	}
	r.pos = tf.position(r.done)
	if r.eof || r.done {
		tf.lr.release()
	}
	if r.done {
		tf.close()
	}
	return r
}

// checkRotated notices that the path a file was discovered at no longer
// leads to it (renamed or deleted) and finds where it went.
func (t *tailer) checkRotated(tf *tailedFile, fi os.FileInfo) {
	deleted := linkCount(fi) == 0
	if !deleted {
		if _, id, err := statID(tf.name); err == nil && id == tf.id {
			return
		}
	}
	tf.rotated = true
	tf.lastGrowth = t.in.opts.Now()
	if deleted {
		return
	}
	dir := filepath.Dir(tf.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if _, id, err := statID(p); err == nil && id == tf.id {
			tf.path = p
			return
		}
	}
}
