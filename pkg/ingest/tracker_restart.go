package ingest

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// This file is the tracker's work after a restart: finding the files of
// positions that discovery did not match, and the generations written
// while Lokal was stopped.

// minSuccessorBytes: a smaller unknown generation may be a copy just begun
// and is left alone.
const minSuccessorBytes = 64

// recoverUnmatched finds, after a restart, the files of positions that
// discovery did not match: generations rotated away (once or more) while
// Lokal was stopped. They are looked for by identity in their last
// directory and read to their end.
func (t *tracker) recoverUnmatched() {
	in := t.in
	for _, k := range sortedKeys(t.known) {
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
func (t *tracker) findByIdentity(key string, p position, fp fingerprint, tg *target) bool {
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
		f, _, opened := openContent(c, fp, fi.Size(), p.Offset)
		if !opened {
			continue
		}
		if f == nil {
			break // the inode holds other content now
		}
		if _, err := f.Seek(p.Offset, io.SeekStart); err != nil {
			f.Close()
			return false
		}
		tf := &trackedFile{key: key, t: tg, id: id, fp: fp, name: p.Name, path: c, f: f, size: fi.Size(),
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
		tf.queued = true
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
		tf.queued = true
		return true
	}
	// Compressed, or copied (copytruncate while stopped).
	return t.resumeCopyWith(p, fp, &trackedFile{key: key, id: want, path: p.Path, name: p.Name, t: tg}) != nil
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
func (t *tracker) trackSuccessors() {
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
	for _, name := range sortedKeys(anchors) {
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
func (t *tracker) trackRotated(tg *target, name, path string, fi os.FileInfo, id fileID) {
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
