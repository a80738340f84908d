package ingest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"time"
)

// This file is the tracker's handling of content that moves between files:
// copies (copytruncate, cp) recognised and not read twice, the .gz of a
// plain generation, and the rest of a truncated or replaced file's content
// resumed from its copy.

// plainFor finds the position of a plain file whose head the given
// decompressed head starts with.
func (t *tracker) plainFor(head []byte) (string, position, bool) {
	for _, k := range sortedKeys(t.known) {
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
func (t *tracker) copyOf(dir string, head []byte, id fileID) string {
	// Positions, not files: a busy file belongs to its worker.
	for _, k := range sortedKeys(t.known) {
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

// openContent opens the plain file at path (size bytes long) if its head
// starts with the content fp names and it holds at least offset bytes.
// f is nil if not; opened says whether the file could be opened at all.
func openContent(path string, fp fingerprint, size, offset int64) (f *os.File, head []byte, opened bool) {
	f, err := openLog(path)
	if err != nil {
		return nil, nil, false
	}
	head, err = readHead(f)
	if err != nil || !fp.matches(head) || size < offset {
		f.Close()
		return nil, nil, true
	}
	return f, head, true
}

// resumeReplaced is the first half of handling a file that shrank or whose
// head changed (copytruncate, truncation, or the inode reused by a new
// file): the rest of its old content is read from a copy if one exists in
// the same directory, which it returns. The copy takes over tf's held
// entries; without one, the pump releases them. Then readAgain.
func (t *tracker) resumeReplaced(tf *trackedFile) *trackedFile {
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
	return c
}

// readAgain reads a replaced file again from its start, as new content.
func (t *tracker) readAgain(tf *trackedFile) {
	if _, err := tf.f.Seek(0, io.SeekStart); err != nil {
		t.in.problem("read %s again after truncation: %v", tf.path, err)
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
	tf.queued = true
}

// resumeCopy looks for the old content of key's position in its directory.
func (t *tracker) resumeCopy(key string, old position, oldFP fingerprint, exclude fileID) {
	t.resumeCopyWith(old, oldFP, &trackedFile{key: key, id: exclude, path: old.Path, name: old.Name, t: t.targetByKey(old.Target)})
}

// resumeCopyWith finds a file (plain or .gz) in the directory of from whose
// head matches oldFP and starts reading it at old.Offset, as the rest of
// from's old content. The copy is read to its end, then finished.
func (t *tracker) resumeCopyWith(old position, oldFP fingerprint, from *trackedFile) *trackedFile {
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

func (t *tracker) resumeCopyOnce(old position, oldFP fingerprint, from *trackedFile) *trackedFile {
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
			tf.queued = true
			return tf
		}
		f, head, _ := openContent(p, oldFP, fi.Size(), old.Offset)
		if f == nil {
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
		tf := &trackedFile{key: key, t: from.t, id: id, fp: fingerprintOf(head), name: from.name, path: p, f: f,
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
		tf.queued = true
		return tf
	}
	return nil
}
