package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// This file finds files and settles their identities: discovery by glob,
// positions matched to files after a restart, copies and compressed
// generations recognised by content, truncation and replacement.

// discover globs every target and starts tracking new files.
func (t *tailer) discover() {
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
func (t *tailer) track(tg *target, name, resolved string, fi os.FileInfo, id fileID) {
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
	tf := &tailedFile{key: key, t: tg, id: id, fp: fp, name: name, path: resolved, f: f, size: fi.Size(),
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
	t.dispatch(tf)
}

// trackGzip reads a compressed rotated file once. Its identity is the
// fingerprint of its decompressed head, so the .gz of a generation already
// read as plain text is recognised and not read again.
func (t *tailer) trackGzip(tg *target, name, resolved string, fi os.FileInfo, id fileID) {
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
	t.dispatch(tf)
}

func (t *tailer) openGzip(tg *target, key, name, resolved string, fi os.FileInfo, id fileID, fp fingerprint, offset int64) (*tailedFile, error) {
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
	tf := &tailedFile{key: key, t: tg, id: id, fp: fp, name: name, path: resolved, gz: true, f: f, zr: zr,
		size: fi.Size(), rotated: true, lastGrowth: in.opts.Now(),
		lr: t.newReader(zr, offset), pipe: t.pipeline(tg, name)}
	t.files[key] = tf
	t.byID[id] = tf
	return tf, nil
}

// plainFor finds the position of a plain file whose head the given
// decompressed head starts with.
func (t *tailer) plainFor(head []byte) (string, position, bool) {
	keys := make([]string, 0, len(t.known))
	for k := range t.known {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := t.known[k]
		if p.Gzip {
			continue
		}
		fp, err := parseFingerprint(p.FP)
		if err != nil || fp.N < minCopyFingerprint {
			continue
		}
		if fp.matches(head) {
			return k, p, true
		}
	}
	return "", position{}, false
}

// copyOf reports which tracked or finished file of dir the head is a copy
// of (a copytruncate or cp of it), or "".
func (t *tailer) copyOf(dir string, head []byte, id fileID) string {
	// Positions, not files: a busy file belongs to its worker.
	keys := make([]string, 0, len(t.known))
	for k := range t.known {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := t.known[k]
		if p.Gzip || (p.Dev == id.Dev && p.Ino == id.Ino) || filepath.Dir(p.Path) != dir {
			continue
		}
		if !p.Done && t.files[k] == nil {
			continue // not found (yet): its content is not known to be read
		}
		if fp, err := parseFingerprint(p.FP); err == nil && fp.N >= minCopyFingerprint && fp.matches(head) {
			return p.Path
		}
		if !p.Done && sharesHead(p, head) {
			// A copy still being written is shorter than the fingerprint:
			// compare the bytes it has with the file it copies.
			return p.Path
		}
	}
	return ""
}

// minSharedHead is how many leading bytes two files must share to call one
// a copy of the other when fingerprints cannot tell (a copy in progress).
// Log lines are templated and stamped to the second, so two generations
// can share their first hundred bytes; half a fingerprint they cannot.
const minSharedHead = fingerprintBytes / 2

// minSuccessorBytes: a smaller unknown generation may be a copy just begun
// and is left alone.
const minSuccessorBytes = 64

// sharesHead reports whether the file of position p (if it is still at its
// path: positions may name a path another file has taken since) and head
// agree on their common leading bytes, at least minSharedHead of them.
func sharesHead(p position, head []byte) bool {
	if len(head) < minSharedHead {
		return false
	}
	f, err := openLog(p.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	if id, ok := openedID(f); !ok || id != (fileID{Dev: p.Dev, Ino: p.Ino}) {
		return false
	}
	other, err := readHead(f)
	if err != nil {
		return false
	}
	n := min(len(head), len(other))
	return n >= minSharedHead && bytes.Equal(head[:n], other[:n])
}

// handleReplaced deals with a file that shrank or whose head changed
// (copytruncate, truncation, or the inode reused by a new file): the rest
// of its old content is read from a copy if one exists in the same
// directory, and the file itself is read again from its start.
func (t *tailer) handleReplaced(tf *tailedFile) {
	in := t.in
	old := t.known[tf.key]
	oldFP := tf.fp
	if tf.lr.pendingStart() > old.Offset {
		old.Offset = tf.lr.pendingStart()
	}
	c := t.resumeCopyWith(old, oldFP, tf)
	if c != nil {
		in.opts.Logf("%s was truncated or replaced at offset %d: its old content continues in %s", tf.path, old.Offset, c.path)
	} else {
		in.opts.Logf("%s was truncated or replaced at offset %d: no copy found", tf.path, old.Offset)
	}
	if c == nil && tf.size < old.Offset && old.Size > old.Offset {
		in.problem("%s was truncated before %d bytes of it were read, and no copy was found", tf.path, old.Size-old.Offset)
	}
	if c == nil && tf.pipe != nil {
		// Nobody continues the old content: what the stages still hold of
		// it is complete now.
		r := t.newResult(tf)
		tf.pipe.flushAll(r)
		for _, se := range r.allStreams() {
			for _, e := range se.Entries {
				t.batch.bytes += len(e.Line)
			}
			t.batch.lines += int64(len(se.Entries))
			t.batch.add(se)
		}
	}
	// Read the file again from its start.
	if _, err := tf.f.Seek(0, io.SeekStart); err != nil {
		in.problem("read %s again after truncation: %v", tf.path, err)
		t.retire(tf)
		t.setCursor(tf.key, nil)
		return
	}
	head, _ := readHead(tf.f)
	tf.fp = fingerprintOf(head)
	tf.lr = t.newReader(tf.f, 0)
	tf.pipe.release()
	tf.pipe = t.pipeline(tf.t, tf.name)
	if fi, err := tf.f.Stat(); err == nil {
		tf.size = fi.Size()
	}
	p := tf.position(false)
	t.setCursor(tf.key, &p)
	t.recordNew(tf.key)
	t.logTrack("replaced-reset", tf)
	t.dispatch(tf)
}

// resumeCopy looks for the old content of key's position in its directory.
func (t *tailer) resumeCopy(key string, old position, oldFP fingerprint, exclude fileID) {
	t.resumeCopyWith(old, oldFP, &tailedFile{key: key, id: exclude, path: old.Path, name: old.Name, t: t.targetByKey(old.Target)})
}

// resumeCopyWith finds a file (plain or .gz) in the directory of from whose
// head matches oldFP and starts reading it at old.Offset, as the rest of
// from's old content. The copy is read to its end, then finished.
func (t *tailer) resumeCopyWith(old position, oldFP fingerprint, from *tailedFile) *tailedFile {
	// A rotating writer renames files while we list the directory, so a
	// file can be missed by one listing: look again before giving up.
	for attempt := 0; attempt < searchAttempts; attempt++ {
		if attempt > 0 {
			time.Sleep(searchRetryPause)
		}
		if tf := t.resumeCopyOnce(old, oldFP, from); tf != nil {
			return tf
		}
	}
	return nil
}

// searchAttempts and searchRetryPause bound the directory searches for a
// file being renamed (logrotate shifts .1 to .2 and so on in a burst).
const (
	searchAttempts   = 3
	searchRetryPause = 10 * time.Millisecond
)

func (t *tailer) resumeCopyOnce(old position, oldFP fingerprint, from *tailedFile) *tailedFile {
	if oldFP.N < minCopyFingerprint || from.t == nil {
		return nil
	}
	dir := filepath.Dir(from.path)
	if from.path == "" {
		dir = filepath.Dir(old.Path)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		fi, id, err := statID(p)
		if err != nil || id == from.id || t.byID[id] != nil {
			continue
		}
		if _, err := t.in.op.CheckPath(p); err != nil {
			continue
		}
		if isGzipName(p) {
			head, err := readGzipHead(p)
			if err != nil || !oldFP.matches(head) {
				continue
			}
			key := cursorKey(id, true, fingerprintOf(head))
			if kp, ok := t.known[key]; ok && kp.Done {
				continue
			}
			tf, err := t.openGzip(from.t, key, from.name, p, fi, id, fingerprintOf(head), old.Offset)
			if err != nil {
				continue
			}
			delete(t.ignored, id)
			pos := tf.position(false)
			t.setCursor(key, &pos)
			t.recordCopy(key, from.key, old.FP, t.committedSoFar(from.key, old))
			t.dispatch(tf)
			return tf
		}
		f, err := openLog(p)
		if err != nil {
			continue
		}
		head, err := readHead(f)
		if err != nil || !oldFP.matches(head) || fi.Size() < old.Offset {
			f.Close()
			continue
		}
		key := cursorKey(id, false, fingerprintOf(head))
		if kp, ok := t.known[key]; ok && kp.Done {
			f.Close()
			continue
		}
		if _, err := f.Seek(old.Offset, io.SeekStart); err != nil {
			f.Close()
			continue
		}
		in := t.in
		tf := &tailedFile{key: key, t: from.t, id: id, fp: fingerprintOf(head), name: from.name, path: p, f: f,
			size: fi.Size(), rotated: true, lastGrowth: in.opts.Now(),
			lr: t.newReader(f, old.Offset), pipe: t.pipeline(from.t, from.name)}
		if from.pipe != nil && from.lr != nil {
			// The copy continues the old content: so does its multiline state.
			tf.pipe, from.pipe = from.pipe, nil
			if ps, ok := tf.pipe.pendingFrom(); ok && ps < old.Offset {
				tf.lr = t.newReader(f, old.Offset)
			}
		}
		delete(t.ignored, id)
		t.files[key] = tf
		t.byID[id] = tf
		pos := tf.position(false)
		t.setCursor(key, &pos)
		t.recordCopy(key, from.key, old.FP, t.committedSoFar(from.key, old))
		t.logTrack("copy", tf)
		t.dispatch(tf)
		return tf
	}
	return nil
}

func (t *tailer) targetByKey(key string) *target {
	for _, tg := range t.in.targets {
		if tg.key == key {
			return tg
		}
	}
	return nil
}

// recoverUnmatched finds, after a restart, the files of positions that
// discovery did not match: generations rotated away (once or more) while
// Lokal was stopped. They are looked for by identity in their last
// directory and read to their end.
func (t *tailer) recoverUnmatched() {
	in := t.in
	keys := make([]string, 0, len(t.known))
	for k := range t.known {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := t.known[k]
		if p.Done || t.files[k] != nil {
			continue
		}
		fp, err := parseFingerprint(p.FP)
		if err != nil {
			t.setCursor(k, nil)
			continue
		}
		tg := t.targetByKey(p.Target)
		if tg == nil {
			in.problem("%s: its scrape config %s is gone from the settings; position dropped", p.Path, p.Target)
			t.setCursor(k, nil)
			continue
		}
		found := false
		for attempt := 0; attempt < searchAttempts && !found; attempt++ {
			if attempt > 0 {
				time.Sleep(searchRetryPause)
			}
			found = t.findByIdentity(k, p, fp, tg)
		}
		if found {
			continue
		}
		if p.Size > p.Offset {
			in.problem("%s disappeared while Lokal was stopped, %d bytes unread", p.Path, p.Size-p.Offset)
		}
		t.setCursor(k, nil)
	}
}

// findByIdentity looks for a position's file at its last path, then in the
// same directory by inode, then as a .gz or a copy of its content.
func (t *tailer) findByIdentity(key string, p position, fp fingerprint, tg *target) bool {
	in := t.in
	want := fileID{Dev: p.Dev, Ino: p.Ino}
	dir := filepath.Dir(p.Path)
	candidates := []string{p.Path}
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if e.Type().IsRegular() {
				candidates = append(candidates, filepath.Join(dir, e.Name()))
			}
		}
	}
	for _, c := range candidates {
		fi, id, err := statID(c)
		if err != nil || id != want || p.Gzip {
			continue
		}
		if _, err := in.op.CheckPath(c); err != nil {
			in.problem("%s (rotated from %s): %v", c, p.Name, err)
			return false
		}
		f, err := openLog(c)
		if err != nil {
			continue
		}
		head, err := readHead(f)
		if err != nil || !fp.matches(head) || fi.Size() < p.Offset {
			f.Close()
			break // the inode holds other content now
		}
		if _, err := f.Seek(p.Offset, io.SeekStart); err != nil {
			f.Close()
			return false
		}
		tf := &tailedFile{key: key, t: tg, id: id, fp: fp, name: p.Name, path: c, f: f, size: fi.Size(),
			rotated: true, lastGrowth: in.opts.Now(),
			lr: t.newReader(f, p.Offset), pipe: t.pipeline(tg, p.Name)}
		if nameFI, nameID, err := statID(p.Name); err == nil && nameID == id && nameFI != nil {
			tf.rotated = false // still where it was discovered (discovery missed it: allowlist changed?)
		}
		t.files[key] = tf
		t.byID[id] = tf
		np := tf.position(false)
		t.setCursor(key, &np)
		t.logTrack("identity", tf)
		t.dispatch(tf)
		return true
	}
	if p.Gzip {
		// A .gz is known by its content: look at its last path.
		fi, id, err := statID(p.Path)
		if err != nil {
			return false
		}
		if _, err := in.op.CheckPath(p.Path); err != nil {
			return false
		}
		head, err := readGzipHead(p.Path)
		if err != nil || fingerprintOf(head) != fp || t.byID[id] != nil {
			return false
		}
		tf, err := t.openGzip(tg, key, p.Name, p.Path, fi, id, fp, p.Offset)
		if err != nil {
			in.problem("%s: %v", p.Path, err)
			return false
		}
		t.logTrack("identity", tf)
		t.dispatch(tf)
		return true
	}
	// Compressed, or copied (copytruncate while stopped).
	return t.resumeCopyWith(p, fp, &tailedFile{key: key, id: want, path: p.Path, name: p.Name, t: tg}) != nil
}

// gcDone forgets finished files that have been gone for doneGrace.
func (t *tailer) gcDone(now time.Time) {
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

func samePosition(a, b position) bool {
	a.Seen, b.Seen = 0, 0
	return a == b
}

// trackSuccessors finds generations written while Lokal was stopped that
// no position knows: with two rotations between commits, the file that
// replaced a known one was itself rotated away before it was durably
// recorded. They sit in the directory of a known file, are named after it
// (app.log.1 for app.log), no glob matches them, and they changed after
// that file's position was last stored, which no older generation did. An
// unknown file has no stored lines (a position is stored with its lines),
// so reading it from its start cannot duplicate; copies of known content
// are still recognised by fingerprint.
func (t *tailer) trackSuccessors() {
	type anchor struct {
		tg   *target
		dir  string
		seen int64
	}
	anchors := map[string]*anchor{}
	for _, p := range t.known {
		tg := t.targetByKey(p.Target)
		if tg == nil || p.Gzip || p.Name == "" || p.Seen == 0 {
			continue
		}
		a := anchors[p.Name]
		if a == nil {
			a = &anchor{tg: tg, dir: filepath.Dir(p.Name)}
			anchors[p.Name] = a
		}
		a.seen = max(a.seen, p.Seen)
	}
	names := make([]string, 0, len(anchors))
	for n := range anchors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		a := anchors[name]
		seen := time.Unix(0, a.seen)
		base := filepath.Base(name)
		entries, err := os.ReadDir(a.dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), base) || e.Name() == base {
				continue
			}
			c := filepath.Join(a.dir, e.Name())
			if a.tg.include.Match(c) {
				continue // discovery's business
			}
			fi, id, err := statID(c)
			if err != nil || fi.Size() < minSuccessorBytes || fi.ModTime().Before(seen.Add(-mtimeSlack)) || t.byID[id] != nil {
				continue
			}
			if _, ok := t.ignored[id]; ok {
				continue
			}
			if _, ok := t.known[cursorKey(id, false, fingerprint{})]; ok && !isGzipName(c) {
				continue
			}
			if _, err := t.in.op.CheckPath(c); err != nil {
				continue
			}
			t.in.opts.Logf("%s: a generation of %s written while Lokal was stopped", c, name)
			t.trackRotated(a.tg, name, c, fi, id)
		}
	}
}

// trackRotated starts reading a rotated generation nobody knew from its
// start, unless it is a copy of content already known.
func (t *tailer) trackRotated(tg *target, name, path string, fi os.FileInfo, id fileID) {
	if isGzipName(path) {
		t.trackGzip(tg, name, path, fi, id)
		if tf := t.byID[id]; tf != nil {
			tf.rotated = true
		}
		return
	}
	t.track(tg, name, path, fi, id)
	if tf := t.byID[id]; tf != nil {
		tf.rotated = true
	}
}
