package store

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/fsync"
)

// The store never deletes what it cannot prove is garbage. What it cannot
// read or account for goes into quarantine/ inside the store directory, one
// folder per event, where nothing reads it and nothing removes it:
//
//	quarantine/<time>-<why>/MANIFEST.tail          bytes cut off a torn manifest
//	quarantine/<time>-<why>/MANIFEST               a damaged manifest repair replaced
//	quarantine/<time>-<why>/segments/<day>/<id>.seg segment files no valid record accounts for
//	quarantine/<time>-<why>/blocks/<day>-<id>-<offset>.blk a corrupt block's bytes
const (
	quarantineDirName  = "quarantine"
	manifestPrevName   = "MANIFEST.prev"
	manifestPrevTmp    = "MANIFEST.prev.tmp"
	quarantineBlockExt = ".blk"
	segmentExt         = ".seg"
)

// segmentFiles lists the paths of the segment files under dir/data.
func segmentFiles(dir string) []string {
	root := filepath.Join(dir, dataDirName)
	days, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range days {
		if !d.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			continue
		}
		for _, f := range files {
			if _, ok := parseSegName(f.Name()); ok && f.Type().IsRegular() {
				out = append(out, filepath.Join(root, d.Name(), f.Name()))
			}
		}
	}
	return out
}

func countSegmentFiles(dir string) int { return len(segmentFiles(dir)) }

// parseSegName returns the id of a segment file name.
func parseSegName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 64)
	return id, err == nil
}

// newQuarantine creates a fresh quarantine folder for one event.
func newQuarantine(dir, why string) (string, error) {
	base := filepath.Join(dir, quarantineDirName, time.Now().UTC().Format("20060102T150405.000000000Z")+"-"+why)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("create quarantine folder: %w", err)
	}
	return base, nil
}

// moveToQuarantine moves a file below q, keeping its partition folder.
func moveToQuarantine(q, path string) error {
	dst := filepath.Join(q, "segments", filepath.Base(filepath.Dir(path)), filepath.Base(path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("quarantine %s: %w", path, err)
	}
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("quarantine %s: %w", path, err)
	}
	_ = os.Remove(filepath.Dir(path)) // the partition, once empty
	return nil
}

// quarantineTornTail keeps the bytes a torn manifest tail held.
func (s *Store) quarantineTornTail(tail []byte) (string, error) {
	q, err := newQuarantine(s.dir, "torn-manifest")
	if err != nil {
		return "", err
	}
	if err := fsync.WriteFile(filepath.Join(q, "MANIFEST.tail"), tail); err != nil {
		return "", fmt.Errorf("quarantine torn manifest tail: %w", err)
	}
	return q, nil
}

// quarantineOrphans moves the segment files the interrupted commit may
// have written (ids the manifest never handed out) into q: the record that
// named them is unreadable, so they are not proven garbage. A file it
// cannot move is an error: removeGarbage would delete it.
func (s *Store) quarantineOrphans(q string) (int, error) {
	live := map[string]bool{}
	for _, seg := range s.m.segments {
		live[segPath(s.dir, seg)] = true
	}
	n := 0
	for _, p := range segmentFiles(s.dir) {
		id, _ := parseSegName(filepath.Base(p))
		if live[p] || id < s.m.nextSeg {
			continue
		}
		if err := moveToQuarantine(q, p); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// quarantinedFiles counts the segments and blocks kept in quarantine.
func quarantinedFiles(dir string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(dir, quarantineDirName), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, segmentExt) || strings.HasSuffix(p, quarantineBlockExt)) {
			n++
		}
		return nil
	})
	return n
}

// checkpoint copies the manifest's valid bytes to MANIFEST.prev (through a
// synced temporary file and a rename), so damage done to MANIFEST later can
// be undone by `lokal repair`. The writer checkpoints at open, at close,
// after a rewrite and every checkpointInterval while the manifest grows.
func (s *Store) checkpoint() error {
	if s.manFile == nil {
		return nil
	}
	n := s.manSize.Load()
	data := make([]byte, n)
	if _, err := s.manFile.ReadAt(data, 0); err != nil {
		return fmt.Errorf("checkpoint manifest: %w", err)
	}
	return writeCheckpoint(s.dir, data)
}

func writeCheckpoint(dir string, data []byte) error {
	tmp := filepath.Join(dir, manifestPrevTmp)
	if err := fsync.WriteFile(tmp, data); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("checkpoint manifest: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, manifestPrevName)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("checkpoint manifest: %w", err)
	}
	return fsync.Dir(dir)
}

// readCheckpoint returns the checkpoint's bytes, or nil.
func readCheckpoint(dir string) []byte {
	b, _ := os.ReadFile(filepath.Join(dir, manifestPrevName))
	return b
}

// checkCheckpoint refuses a manifest whose readable part is shorter than
// its checkpoint prev while starting with the same bytes: the manifest only
// grows between checkpoints (a rewrite changes its first record), so
// committed records were cut off, by damage rather than by a crash. A
// reader that does not hold the lock must read prev before the manifest,
// so that a checkpoint written meanwhile is never newer than what it reads.
func checkCheckpoint(dir string, prev, data []byte, valid int64) error {
	if int64(len(prev)) <= valid || !bytes.Equal(prev[:valid], data[:valid]) {
		return nil
	}
	if _, _, err := readManifest(prev); err != nil {
		return nil
	}
	return &ManifestError{Path: filepath.Join(dir, manifestName), Offset: valid, Record: -1, NextValid: -1,
		Reason: fmt.Sprintf("it ends at %d bytes but its checkpoint %s holds %d: committed records were cut off", valid, manifestPrevName, len(prev))}
}
