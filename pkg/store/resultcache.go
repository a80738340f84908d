package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// The result cache directory holds what a query engine computed from
// blocks (see FORMAT.md, "Result cache"): one file per segment, so the
// store drops a segment's cached results with the segment itself
// (retention, compaction), and at a writer's open drops the files of
// segments it no longer holds. The store never reads these files; it only
// names and removes them. Everything in them is derived from blocks that
// remain (or, once removed, that nobody asks about again), so deleting them
// loses nothing.
const (
	resultCacheDirName = "cache"
	resultCacheExt     = ".rc"
)

// ResultCacheDir returns the directory for results derived from the
// store's blocks and whether this process may write there: only the writer
// may, a read-only store (a second process) only reads what the writer
// kept. The directory may not exist yet; a writer creates it when it first
// writes.
func (s *Store) ResultCacheDir() (dir string, writable bool) {
	return filepath.Join(s.dir, resultCacheDirName), !s.readOnly
}

// ResultCacheFile is the base name of the result cache file for the
// blocks of segment seg.
func ResultCacheFile(seg uint64) string {
	return fmt.Sprintf("%016x%s", seg, resultCacheExt)
}

// ParseResultCacheFile returns the segment of a result cache file's base
// name, and false for any other name.
func ParseResultCacheFile(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, resultCacheExt)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 64)
	return id, err == nil
}

// ResultCacheTemp is the name a result cache file is rewritten under
// before it is renamed over name; the store removes such leftovers.
func ResultCacheTemp(name string) string { return name + ".tmp" }

// ReplaceDerivedFile writes data to path through its temporary name
// (ResultCacheTemp) and a rename, so a reader sees the old file or the new
// one. Derived data only (the result cache, the filter summaries): there is
// no sync, since a file cut short by a crash fails its checksum and is
// rebuilt from the blocks.
func ReplaceDerivedFile(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), ResultCacheTemp(filepath.Base(path)))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

func isResultCacheTemp(name string) bool {
	base, ok := strings.CutSuffix(name, ".tmp")
	if !ok {
		return false
	}
	_, ok = ParseResultCacheFile(base)
	return ok
}

// resultCachePath is where segment seg's cached results live.
func resultCachePath(dir string, seg uint64) string {
	return filepath.Join(dir, resultCacheDirName, ResultCacheFile(seg))
}

// Fingerprint is a hash of the block's header as the manifest records it
// (codec, entry count, time range, raw bytes and section lengths, the
// header's own checksum included): a cache keyed by the block's id and its
// fingerprint never takes a result computed from other bytes for this
// block's, even across a store deleted and created again in place.
func (b *BlockInfo) Fingerprint() uint64 {
	if b.ref == nil {
		return 0
	}
	return b.ref.fingerprint()
}

// fingerprint is BlockInfo.Fingerprint of the block.
func (b *blockRef) fingerprint() uint64 {
	var hdr [blockHeaderSize]byte
	b.h.marshal(hdr[:])
	h := fnv.New64a()
	h.Write(hdr[:])
	var id [16]byte
	binary.LittleEndian.PutUint64(id[:], b.seg.id)
	binary.LittleEndian.PutUint64(id[8:], uint64(b.off))
	h.Write(id[:])
	return h.Sum64()
}

// resultCacheGate lets result cache writes run only while the store is
// open.
type resultCacheGate struct {
	mu     sync.RWMutex
	closed bool
}

func (g *resultCacheGate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// ResultCacheWrite runs write, which changes the result cache directory,
// while the store stays open (Close waits for it), and reports false
// without running it once the store is closed: a cache writer finishing
// late never writes into a directory its owner has let go of. Writes of
// a read-only store are refused too.
func (s *Store) ResultCacheWrite(write func()) bool {
	s.cacheGate.mu.RLock()
	defer s.cacheGate.mu.RUnlock()
	if s.cacheGate.closed || s.readOnly {
		return false
	}
	write()
	return true
}

// SegmentBytes is the size of the store's live segment files, what a
// cache budgets a share of.
func (s *Store) SegmentBytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.m == nil {
		return 0
	}
	var n int64
	for _, seg := range s.m.segments {
		n += seg.size
	}
	return n
}

// removeResultCacheGarbage deletes the result cache files of segments the
// manifest no longer holds (a removal the process did not live to finish,
// or a store created again in place). Other files are left alone.
func (s *Store) removeResultCacheGarbage() {
	removeDerived(filepath.Join(s.dir, resultCacheDirName), func(name string) bool {
		if isResultCacheTemp(name) {
			return true
		}
		seg, ok := ParseResultCacheFile(name)
		if !ok {
			return false
		}
		_, live := s.m.segments[seg]
		return !live
	})
}

// removeResultCache deletes the whole result cache of the store in dir:
// repair, which may drop blocks from segments that stay, calls it before
// rewriting the manifest.
func removeResultCache(dir string) {
	d := filepath.Join(dir, resultCacheDirName)
	removeDerived(d, func(name string) bool {
		_, ok := ParseResultCacheFile(name)
		return ok || isResultCacheTemp(name)
	})
	_ = os.Remove(d) // once empty
}

// removeDerived deletes the files of dir, a folder of derived data (the
// result cache, the filter summaries), that match says may go; a missing
// folder has nothing to delete. Only derived data is ever deleted this way:
// it is rebuilt from the blocks (FORMAT.md).
func removeDerived(dir string, match func(name string) bool) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if match(e.Name()) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
