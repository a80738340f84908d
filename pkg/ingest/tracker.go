package ingest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/klauspost/compress/gzip"
)

// The tracker knows which file is what; the pump (pump.go) reads them. The
// tracker finds files by glob, knows them by device, inode and fingerprint
// (identity.go), follows them through rotation by rename and copytruncate
// and into gzip-compressed generations, reads the rest of a truncated
// file's content from its copy (tracker_copies.go), finds after a restart
// the generations rotated away while Lokal was stopped
// (tracker_restart.go), and keeps every file's position and the positions
// file (positions.go).

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

// trackedFile is one tracked file. The tracker owns it, except while the
// pump has handed it to a worker (busy), which then owns it alone.
type trackedFile struct {
	// entryHints: see chunkResult.entryHints. Written by the worker that
	// reads the file.
	entryHints map[uint64]int

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
	queued bool // waits for a worker

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
func (tf *trackedFile) position(done bool) position {
	off := tf.lr.pendingStart()
	if p, ok := tf.pipe.pendingFrom(); ok && p < off {
		off = p
	}
	return position{Offset: off, FP: tf.fp.String(), Path: tf.path, Name: tf.name, Target: tf.t.key,
		Size: tf.size, Dev: tf.id.Dev, Ino: tf.id.Ino, Gzip: tf.gz, Done: done}
}

func (tf *trackedFile) close() {
	if tf.zr != nil {
		tf.zr.Close()
		tf.zr = nil
	}
	if tf.f != nil {
		tf.f.Close()
		tf.f = nil
	}
}

// recheck looks at a plain file before it is read: its size, whether its
// head still holds the content it is known by (else it is marked replaced:
// shrunk, or truncated and rewritten), and whether the path it was
// discovered at still leads to it. Only the file's owner calls it.
func (tf *trackedFile) recheck(now func() time.Time) error {
	fi, err := tf.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size < tf.lr.off {
		tf.size = size
		tf.replaced = true
		return nil
	}
	// A write that did not grow the file (truncated and rewritten to the
	// same size) changes only the mtime: check the head then too.
	if size != tf.size || !fi.ModTime().Equal(tf.mtime) || tf.fp.N < fingerprintBytes && size > int64(tf.fp.N) {
		head, err := readHead(tf.f)
		if err != nil {
			return err
		}
		if !tf.fp.matches(head) {
			tf.size = size
			tf.replaced = true
			return nil
		}
		if len(head) > tf.fp.N {
			tf.fp = fingerprintOf(head)
		}
	}
	tf.size = size
	tf.mtime = fi.ModTime()
	if !tf.rotated {
		tf.checkRotated(fi, now)
	}
	return nil
}

// checkRotated notices that the path a file was discovered at no longer
// leads to it (renamed or deleted) and finds where it went.
func (tf *trackedFile) checkRotated(fi os.FileInfo, now func() time.Time) {
	deleted := linkCount(fi) == 0
	if !deleted {
		if _, id, err := statID(tf.name); err == nil && id == tf.id {
			return
		}
	}
	tf.rotated = true
	tf.lastGrowth = now()
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

// tracker owns the tracked files and their positions. It runs on the
// pump's coordinator goroutine. A file it wants read is marked queued; the
// pump hands it to a worker after the tracker's call returns, once the
// positions file names it.
type tracker struct {
	in *Ingester

	known   map[string]position // cursor values, as last handed to the store
	sc      *sidecar            // identities the store may not have committed yet
	files   map[string]*trackedFile
	byID    map[fileID]*trackedFile
	ignored map[fileID]string // copies of tracked files, not read
	claimed map[string]string // discovered path -> target key

	// out is the batch that position changes go out with: the pump adds
	// the lines they cover and stores both in one append.
	out *pendingBatch

	watcher  *fsnotify.Watcher
	watched  map[string]bool
	lastGC   time.Time
	rejected map[string]string
	matched  int
}

func newTracker(in *Ingester, out *pendingBatch) *tracker {
	return &tracker{in: in, out: out,
		known: map[string]position{}, files: map[string]*trackedFile{}, byID: map[fileID]*trackedFile{},
		ignored: map[fileID]string{}, claimed: map[string]string{}, watched: map[string]bool{},
		rejected: map[string]string{}}
}

// load takes the positions of the store's cursors, then the identities of
// the positions file that the store does not know yet.
func (t *tracker) load(cursors map[string][]byte) {
	for k, v := range cursors {
		if len(k) < len(cursorPrefix) || k[:len(cursorPrefix)] != cursorPrefix {
			continue // not ours
		}
		p, _, derr := decodePosition(v)
		if derr != nil {
			t.in.problem("position %s is unreadable (%v): the file will be read from its start", k, derr)
			continue
		}
		t.known[k] = p
	}
	t.sc = newSidecar(t.in.app)
	t.loadPositions()
}

// watch asks for file events, falling back to polling.
func (t *tracker) watch() {
	if w, werr := fsnotify.NewWatcher(); werr != nil {
		t.in.problem("file events unavailable (%v): polling every %s", werr, t.in.pollInterval())
	} else {
		t.watcher = w
	}
}

// events are the file events (nil channels without a watcher).
func (t *tracker) events() (<-chan fsnotify.Event, <-chan error) {
	if t.watcher == nil {
		return nil, nil
	}
	return t.watcher.Events, t.watcher.Errors
}

// start settles every file's identity before anything is read (a file
// read while its copy is being judged could be read twice): the files the
// globs match, the copies of orphaned content, the files of positions that
// discovery did not match, and the generations written while Lokal was
// stopped. Every file found is a backlog.
func (t *tracker) start() {
	t.discover()
	t.resumeOrphans()
	t.recoverUnmatched()
	t.trackSuccessors()
	for _, tf := range t.files {
		tf.backlog = true
	}
}

// close closes the files no worker holds and stops the file events.
func (t *tracker) close() {
	for _, tf := range t.files {
		if !tf.busy {
			tf.close()
		}
	}
	if t.watcher != nil {
		t.watcher.Close()
	}
}

// setCursor records key's position (nil: the file is gone or finished for
// good) in the outgoing batch.
func (t *tracker) setCursor(key string, p *position) {
	if t.out.since.IsZero() {
		t.out.since = t.in.opts.Now()
	}
	if p == nil {
		delete(t.known, key)
		t.out.cursors[key] = nil
		t.forget(key)
		return
	}
	p.Seen = t.in.opts.Now().UnixNano()
	t.known[key] = *p
	t.out.cursors[key] = encodePosition(*p)
}

// advance records how far a file's lines have been handed over.
func (t *tracker) advance(tf *trackedFile, p position) {
	if old, ok := t.known[tf.key]; !ok || !samePosition(old, p) {
		t.setCursor(tf.key, &p)
	}
}

func samePosition(a, b position) bool {
	a.Seen, b.Seen = 0, 0
	return a == b
}

// sortedKeys returns m's keys in order. (slices.Sorted(maps.Keys(m)) costs
// allocations for the iterator, on every file discovery.)
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (t *tracker) sortedFiles() []*trackedFile {
	out := make([]*trackedFile, 0, len(t.files))
	for _, tf := range t.files {
		out = append(out, tf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// retire forgets a finished file; its Done position stays in known.
func (t *tracker) retire(tf *trackedFile) {
	tf.close()
	tf.pipe.release()
	delete(t.files, tf.key)
	if t.byID[tf.id] == tf {
		delete(t.byID, tf.id)
	}
}

// publish refreshes the file list of the health snapshot.
func (t *tracker) publish() {
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
func (t *tracker) watchDir(dir string) {
	if t.watcher == nil || t.watched[dir] {
		return
	}
	t.watched[dir] = true
	if err := t.watcher.Add(dir); err != nil {
		t.in.opts.Logf("watch %s: %v (polling covers it)", dir, err)
	}
}

// logTrack says why a file is (again) being read, and from where.
func (t *tracker) logTrack(how string, tf *trackedFile) {
	t.in.opts.Logf("read %s (%s, %s) from %d [%s]", tf.path, tf.name, tf.key, tf.lr.pendingStart(), how)
}

// newReader makes a line reader whose buffers come from the ingester's pool.
func (t *tracker) newReader(r io.Reader, off int64) *lineReader {
	lr := newLineReader(r, off, t.in.maxLine())
	lr.pool = &t.in.buffers
	return lr
}

// pipeline makes a file's pipeline. Stages were compiled once in New, so a
// failure here is unexpected; the file is then read with no stages rather
// than not at all, and the problem reported.
func (t *tracker) pipeline(tg *target, name string) *filePipeline {
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

func (t *tracker) targetByKey(key string) *target {
	for _, tg := range t.in.targets {
		if tg.key == key {
			return tg
		}
	}
	return nil
}

// discover globs every target and starts tracking new files.
func (t *tracker) discover() {
	in := t.in
	matched := 0
	seen := map[string]bool{}
	// Rejections are judged afresh each pass: a file that went away or
	// became allowed is no longer listed.
	t.rejected = map[string]string{}
	for _, tg := range in.targets {
		if _, err := in.op.CheckPath(tg.include.raw); err != nil {
			t.rejected[tg.include.raw] = err.Error()
			continue
		}
		delete(t.rejected, tg.include.raw)
		paths := tg.include.Glob(func(dir string, err error) {
			in.problem("list %s: %v", dir, err)
		})
		for _, p := range paths {
			if tg.exclude != nil && tg.exclude.Match(p) {
				continue
			}
			if seen[p] {
				if owner := t.claimed[p]; owner != tg.key {
					in.problem("%s is matched by %s and %s: read once, as %s", p, owner, tg.key, owner)
				}
				continue
			}
			seen[p] = true
			if _, ok := t.claimed[p]; !ok {
				t.claimed[p] = tg.key
			}
			resolved, err := in.op.CheckPath(p)
			if err != nil {
				t.rejected[p] = err.Error()
				continue
			}
			fi, id, err := statID(resolved)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					t.rejected[p] = err.Error()
				}
				continue
			}
			if !fi.Mode().IsRegular() {
				t.rejected[p] = "not a regular file"
				continue
			}
			delete(t.rejected, p)
			matched++
			t.watchDir(filepath.Dir(resolved))
			if t.byID[id] != nil {
				continue
			}
			if _, ok := t.ignored[id]; ok {
				continue
			}
			t.track(tg, p, resolved, fi, id)
		}
		if t.watcher != nil {
			t.watchDir(literalPrefix(tg.include))
		}
	}
	t.matched = matched
}

// literalPrefix is the deepest directory of a pattern without wildcards.
func literalPrefix(g *globPattern) string {
	if len(g.alts) == 0 {
		return "/"
	}
	dir := "/"
	for _, s := range g.alts[0][:max(0, len(g.alts[0])-1)] {
		if s == "**" || hasMeta(s) {
			break
		}
		dir = filepath.Join(dir, s)
	}
	return dir
}

// track starts following a newly discovered file, resuming from its
// position when its identity is known.
func (t *tracker) track(tg *target, name, resolved string, fi os.FileInfo, id fileID) {
	in := t.in
	if isGzipName(resolved) {
		t.trackGzip(tg, name, resolved, fi, id)
		return
	}
	f, err := openLog(resolved)
	if err != nil {
		t.rejected[name] = err.Error()
		return
	}
	head, err := readHead(f)
	if err != nil {
		f.Close()
		t.rejected[name] = err.Error()
		return
	}
	fp := fingerprintOf(head)
	key := cursorKey(id, false, fp)
	offset := int64(0)
	fresh := true // content nobody has read
	if p, ok := t.known[key]; ok {
		pfp, _ := parseFingerprint(p.FP)
		if pfp.matches(head) {
			fresh = false
			if p.Done {
				f.Close()
				if p.Missing != 0 {
					p.Missing = 0
					t.setCursor(key, &p)
				}
				return
			}
			offset = p.Offset
			if p.Name != "" {
				name = p.Name
			}
			if fp.N < pfp.N {
				fp = pfp
			}
		} else {
			// Same inode, other content: the file was truncated or replaced
			// while we were not looking. Finish its old content from a copy
			// if there is one, then read the new content from the start.
			t.resumeCopy(key, p, pfp, id)
		}
	} else if owner := t.copyOf(filepath.Dir(resolved), head, id); owner != "" {
		f.Close()
		t.ignored[id] = owner
		in.opts.Logf("%s is a copy of %s: not read again", resolved, owner)
		return
	}
	if offset > fi.Size() {
		offset = 0 // shrank since: start over (handled as truncation)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		t.rejected[name] = err.Error()
		return
	}
	tf := &trackedFile{key: key, t: tg, id: id, fp: fp, name: name, path: resolved, f: f, size: fi.Size(),
		lr: t.newReader(f, offset), pipe: t.pipeline(tg, name), lastGrowth: in.opts.Now()}
	t.files[key] = tf
	t.byID[id] = tf
	// Record what the file holds now (its fingerprint may have changed), so
	// copies of this content are recognised from here on.
	if p := tf.position(false); !samePosition(p, t.known[key]) {
		t.setCursor(key, &p)
	}
	if fresh {
		t.recordNew(key)
	}
	t.logTrack("track", tf)
	tf.queued = true
}

// trackGzip reads a compressed rotated file once. Its identity is the
// fingerprint of its decompressed head, so the .gz of a generation already
// read as plain text is recognised and not read again.
func (t *tracker) trackGzip(tg *target, name, resolved string, fi os.FileInfo, id fileID) {
	head, err := readGzipHead(resolved)
	if errors.Is(err, errIncomplete) {
		t.in.opts.Logf("%v: will look again", err)
		return
	}
	if err != nil {
		t.rejected[name] = err.Error()
		return
	}
	fp := fingerprintOf(head)
	key := cursorKey(id, true, fp)
	offset := int64(0)
	var from, fromFP string // the plain file whose content this continues
	var base int64
	if p, ok := t.known[key]; ok {
		if p.Done {
			return
		}
		offset = p.Offset
		if p.Name != "" {
			name = p.Name
		}
	} else if plainKey, p, ok := t.plainFor(head); ok {
		if p.Done {
			// Already read as plain text: remember the .gz as read too.
			np := p
			np.Path, np.Gzip, np.Dev, np.Ino, np.FP = resolved, true, id.Dev, id.Ino, fp.String()
			np.Offset = 0
			np.Missing = 0
			t.setCursor(key, &np)
			return
		}
		if other := t.files[plainKey]; other != nil {
			// The plain file is still open and being read: it has the lines.
			t.ignored[id] = other.path
			return
		}
		// The plain file went away before we finished it: go on from the
		// same offset in the decompressed stream.
		offset = p.Offset
		name = p.Name
		from, fromFP, base = plainKey, p.FP, t.committedSoFar(plainKey, p)
		t.setCursor(plainKey, nil)
	}
	tf, err := t.openGzip(tg, key, name, resolved, fi, id, fp, offset)
	if err != nil {
		t.rejected[name] = err.Error()
		return
	}
	p := tf.position(false)
	t.setCursor(key, &p)
	switch {
	case from != "":
		t.recordCopy(key, from, fromFP, base)
	case offset == 0:
		t.recordNew(key)
	}
	t.logTrack("gzip", tf)
	tf.queued = true
}

// openGzip opens a .gz at offset of its decompressed stream and tracks it.
func (t *tracker) openGzip(tg *target, key, name, resolved string, fi os.FileInfo, id fileID, fp fingerprint, offset int64) (*trackedFile, error) {
	f, err := openLog(resolved)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", resolved, err)
	}
	if offset > 0 {
		if _, err := io.CopyN(io.Discard, zr, offset); err != nil {
			zr.Close()
			f.Close()
			return nil, fmt.Errorf("%s: skip to %d: %w", resolved, offset, err)
		}
	}
	in := t.in
	tf := &trackedFile{key: key, t: tg, id: id, fp: fp, name: name, path: resolved, gz: true, f: f, zr: zr,
		size: fi.Size(), rotated: true, lastGrowth: in.opts.Now(),
		lr: t.newReader(zr, offset), pipe: t.pipeline(tg, name)}
	t.files[key] = tf
	t.byID[id] = tf
	return tf, nil
}

// gc forgets, every gcEvery, the finished files that have been gone for
// doneGrace.
func (t *tracker) gc(now time.Time) {
	if now.Sub(t.lastGC) < gcEvery {
		return
	}
	t.lastGC = now
	for k, p := range t.known {
		if !p.Done {
			continue
		}
		if _, id, err := statID(p.Path); err == nil && id.Dev == p.Dev && id.Ino == p.Ino {
			continue
		}
		if p.Missing == 0 {
			p.Missing = now.Unix()
			t.setCursor(k, &p)
			continue
		}
		if now.Sub(time.Unix(p.Missing, 0)) >= doneGrace {
			t.setCursor(k, nil)
		}
	}
}
