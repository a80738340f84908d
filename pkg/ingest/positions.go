package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/lokal-logs/lokal/pkg/internal/fsync"
)

// The store commits positions together with the lines before them, which
// can take DefaultHeadMaxAge (15 s). A file read and rotated away before
// its first commit would be unknown to the next start if the process died
// in between (kill -9, OOM): no position names its identity, and no glob
// matches its new name. The positions file closes that gap. It records,
// before a file's first read, the file's identity (device, inode,
// fingerprint) and the offset up to which its content is committed (0 for
// new content), and is replaced atomically (write, fsync, rename, fsync of
// the directory) whenever an identity appears, changes content or goes.
// It never claims more than the store has: a restart takes the store's
// cursors first and the file's entries only for keys the store lacks, so
// nothing committed is read twice and nothing recorded is lost.

// PositionsFileName is the positions file in the store's directory.
const PositionsFileName = "ingest-positions"

// positionsVersion is the format of the positions file.
const positionsVersion = 1

// maxLineage bounds how far a restart follows copies of copies.
const maxLineage = 8

// pruneAt is how many entries the positions file may hold before those the
// store has committed since are dropped from it (each write rewrites it
// whole, and logs rotated every few seconds for a week are many files).
// A variable so that a test can prune small files.
var pruneAt = 256

// sideEntry is one identity the store may not know yet.
type sideEntry struct {
	// Pos is the file's position with Offset the committed offset of its
	// content when recorded: 0 for new content, else that of the file it
	// continues.
	Pos position `json:"pos"`
	// From is the key of the file whose content this one continues (a copy
	// of a copytruncated file, the .gz of a rotated one); FromFP is that
	// file's fingerprint then. At a restart, a store cursor of From with
	// the same content says how much of it is committed.
	From   string `json:"from,omitempty"`
	FromFP string `json:"from_fp,omitempty"`
}

type positionsFile struct {
	Version   int                  `json:"version"`
	Positions map[string]sideEntry `json:"positions"`
}

// sidecar is the in-memory side of the positions file; the tracker
// owns it.
type sidecar struct {
	path    string // "" when the appender has no directory: disabled
	entries map[string]sideEntry
	// started are the store's cursors when the run began, for the
	// committed offset of content that continues in a copy.
	started map[string]position
	// orphans are recorded contents the store's cursors do not name.
	orphans []orphan
	dirty   bool
	// failing is set after a failed write, so the problem is reported once
	// until a write succeeds.
	failing bool
}

// dirAppender is an appender that lives in a directory (the store).
type dirAppender interface{ Dir() string }

// newSidecar finds where the positions file lives: beside the store.
func newSidecar(app any) *sidecar {
	sc := &sidecar{entries: map[string]sideEntry{}, started: map[string]position{}}
	if d, ok := app.(dirAppender); ok && d.Dir() != "" {
		sc.path = filepath.Join(d.Dir(), PositionsFileName)
	}
	return sc
}

// loadPositions adds to known (the store's cursors) the identities of the
// positions file that the store does not know, with the offset their
// content is committed to.
func (t *tracker) loadPositions() {
	sc := t.sc
	for k, p := range t.known {
		sc.started[k] = p
	}
	if sc.path == "" {
		return
	}
	data, err := os.ReadFile(sc.path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.in.problem("read %s: %v: files rotated away before their first commit may not be found", sc.path, err)
		return
	}
	var pf positionsFile
	if err := json.Unmarshal(data, &pf); err != nil || pf.Version != positionsVersion {
		if err == nil {
			err = fmt.Errorf("version %d, want %d", pf.Version, positionsVersion)
		}
		t.in.problem("%s is unreadable (%v): files rotated away before their first commit may not be found", sc.path, err)
		return
	}
	for _, k := range slices.Sorted(maps.Keys(pf.Positions)) {
		e := pf.Positions[k]
		if _, err := parseFingerprint(e.Pos.FP); err != nil || e.Pos.Offset < 0 {
			t.in.problem("%s: entry %s is unreadable: its file is not resumed from it", sc.path, k)
			sc.dirty = true
			continue
		}
		e.Pos.Offset = t.committedOffset(e, pf.Positions, 0)
		e.Pos.Done, e.Pos.Missing = false, 0
		if c, ok := t.known[k]; ok {
			sc.dirty = true
			// The store's cursor is the truth about the content it names.
			// Content recorded after it (the file was truncated and
			// written again, then copied away before a commit) is a
			// lineage of its own, looked for among the siblings.
			if e.Pos.Seen > c.Seen && e.Pos.FP != c.FP {
				sc.orphans = append(sc.orphans, orphan{key: k, entry: e})
			}
			continue
		}
		sc.entries[k] = e
		t.known[k] = e.Pos
	}
}

// orphan is content a file held after its last committed position: the
// store's cursor names the file's older content.
type orphan struct {
	key   string
	entry sideEntry
}

// resumeOrphans looks for the copies of orphaned content, after discovery
// has settled which files are what (a file that still holds the content
// is read by discovery from its start, as new content).
func (t *tracker) resumeOrphans() {
	for _, o := range t.sc.orphans {
		fp, err := parseFingerprint(o.entry.Pos.FP)
		if err != nil {
			continue
		}
		tg := t.targetByKey(o.entry.Pos.Target)
		if tg == nil {
			continue
		}
		p := o.entry.Pos
		t.resumeCopyWith(p, fp, &trackedFile{key: o.key, id: fileID{Dev: p.Dev, Ino: p.Ino}, path: p.Path, name: p.Name, t: tg})
	}
	t.sc.orphans = nil
}

// committedOffset is how far the content of a positions-file entry is
// committed: when it continues another file's content and the store has
// that file's cursor for the same content, the cursor's offset; else the
// offset recorded with it.
func (t *tracker) committedOffset(e sideEntry, all map[string]sideEntry, depth int) int64 {
	if e.From == "" || depth >= maxLineage {
		return e.Pos.Offset
	}
	if c, ok := t.sc.started[e.From]; ok {
		if t.sameContent(c, e) {
			return c.Offset
		}
		return e.Pos.Offset
	}
	if from, ok := all[e.From]; ok && from.Pos.FP == e.FromFP {
		return t.committedOffset(from, all, depth+1)
	}
	return e.Pos.Offset
}

// sameContent reports whether the store's cursor c describes the content
// that e continues. Fingerprints of a file under 1 KiB grow as it grows,
// so a shorter one is checked against the head of e's file.
func (t *tracker) sameContent(c position, e sideEntry) bool {
	if c.FP == e.FromFP {
		return true
	}
	cfp, err1 := parseFingerprint(c.FP)
	efp, err2 := parseFingerprint(e.FromFP)
	if err1 != nil || err2 != nil || cfp.N >= efp.N || cfp.N < minCopyFingerprint || e.Pos.Gzip {
		return false
	}
	f, err := openLog(e.Pos.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	if id, ok := openedID(f); !ok || id != (fileID{Dev: e.Pos.Dev, Ino: e.Pos.Ino}) {
		return false
	}
	head, err := readHead(f)
	return err == nil && cfp.matches(head)
}

// recordNew records new content at key (a file seen for the first time,
// or a file read again from its start after truncation): nothing of it is
// committed.
func (t *tracker) recordNew(key string) {
	if t.sc.path == "" {
		return
	}
	p, ok := t.known[key]
	if !ok {
		return
	}
	p.Offset, p.Done, p.Missing = 0, false, 0
	t.sc.entries[key] = sideEntry{Pos: p}
	t.sc.dirty = true
}

// recordCopy records that key continues the content of from (whose
// fingerprint was fromFP), committed up to base (see committedSoFar).
func (t *tracker) recordCopy(key, from, fromFP string, base int64) {
	if t.sc.path == "" {
		return
	}
	p, ok := t.known[key]
	if !ok {
		return
	}
	p.Offset, p.Done, p.Missing = base, false, 0
	t.sc.entries[key] = sideEntry{Pos: p, From: from, FromFP: fromFP}
	t.sc.dirty = true
}

// committedSoFar is the best known committed offset of from's content
// old, which a copy continues: from's positions-file entry (every change of
// content replaces it), else the store's cursor at the start of the run
// (a restart refines it from the store, see committedOffset), but never
// more than old's offset (content recorded after that cursor).
func (t *tracker) committedSoFar(from string, old position) int64 {
	if e, ok := t.sc.entries[from]; ok {
		return e.Pos.Offset
	}
	if c, ok := t.sc.started[from]; ok {
		return min(c.Offset, old.Offset)
	}
	return old.Offset
}

// forget drops key's entry: its file is gone or finished for good.
func (t *tracker) forget(key string) {
	if _, ok := t.sc.entries[key]; ok {
		delete(t.sc.entries, key)
		t.sc.dirty = true
	}
}

// savePositions writes the positions file if it changed. A failure is
// reported (once) and costs only the protection the file gives.
func (t *tracker) savePositions() {
	sc := t.sc
	if sc == nil || sc.path == "" || !sc.dirty {
		return
	}
	if len(sc.entries) > pruneAt {
		t.prunePositions()
	}
	if err := fsync.ReplaceFile(sc.path, encodePositions(sc.entries)); err != nil {
		if !sc.failing {
			t.in.problem("write %s: %v: a file rotated away before its first commit is lost if Lokal is killed", sc.path, err)
		}
		sc.failing = true
		return
	}
	sc.failing = false
	sc.dirty = false
}

// prunePositions drops the entries the store has committed a position for
// since they were recorded: its cursor is the truth from then on (see
// loadPositions, which keeps only content recorded after the cursor).
func (t *tracker) prunePositions() {
	committed := t.in.app.Cursors()
	for k, e := range t.sc.entries {
		v, ok := committed[k]
		if !ok {
			continue
		}
		if c, _, err := decodePosition(v); err == nil && c.Seen >= e.Pos.Seen {
			delete(t.sc.entries, k)
		}
	}
}

func encodePositions(entries map[string]sideEntry) []byte {
	b, _ := json.Marshal(positionsFile{Version: positionsVersion, Positions: entries}) // plain values: cannot fail
	return b
}
