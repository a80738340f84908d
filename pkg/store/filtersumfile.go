package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Filter summary files persist the filter summaries of filter.go, one file
// per partition (day), so that a process's first query with a line filter
// reads one file per day instead of the token filter of every block (see
// FORMAT.md, "Filter summary files"). They are derived data: a file that is
// missing, damaged, of another version or for other blocks is a miss, the
// query reads the blocks' filters as before and the writer builds the file
// again. Each entry names its block by segment, offset and the block's
// fingerprint, so an entry is only ever applied to the very block it was
// computed from; entries of blocks that are gone are ignored.
const (
	filterSumDirName  = "filtersum"
	filterSumExt      = ".fsum"
	filterSumMagic    = "LKFS"
	filterSumVersion  = 1
	filterSumHdrLen   = 4 + 1 + 3 + 8 + 4 // magic, version, reserved, day, entries
	filterSumEntryLen = 8 + 8 + 8 + 1     // segment, offset, fingerprint, log2
	// filterSumNone is an entry's log2 for a block without a summary (its
	// filter is the exact one, which does not fold, or could not be read
	// or checked): the file covers the block, and a query reads its filter.
	filterSumNone = 0
)

// filterSumPath is where day's filter summaries live.
func filterSumPath(dir string, day int64) string {
	return filepath.Join(dir, filterSumDirName, dayDir(day)+filterSumExt)
}

// filterSums is a store's record of which days' summary files this process
// has loaded (or tried to) for its queries, and checked (or built) for the
// store, for the meta it holds.
type filterSums struct {
	mu    sync.Mutex
	m     *meta
	tried map[int64]sumsTried
	// builds counts rebuilds in flight, for tests.
	builds sync.WaitGroup
	// buildMu runs builds one at a time: a first query that finds no
	// files keeps one core for itself, and no two builds write the same
	// temporary file.
	buildMu sync.Mutex
}

// sumsTried says what was done with a day's file since the day last
// changed.
type sumsTried uint8

const (
	sumsLoaded  sumsTried = 1 << iota // its summaries given to the blocks
	sumsChecked                       // its coverage checked, the file built if not
)

// sumEntry is one block's summary in a file; bm points into the file.
type sumEntry struct {
	seg  uint64
	off  int64
	fp   uint64
	log2 int
	bm   []byte
}

// marshalFilterSums encodes day's entries, sorted by segment and offset.
func marshalFilterSums(day int64, ents []sumEntry) []byte {
	n := filterSumHdrLen + 4
	for _, e := range ents {
		n += filterSumEntryLen + len(e.bm)
	}
	b := make([]byte, 0, n)
	b = append(b, filterSumMagic...)
	b = append(b, filterSumVersion, 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(day))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ents)))
	for _, e := range ents {
		b = binary.LittleEndian.AppendUint64(b, e.seg)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.off))
		b = binary.LittleEndian.AppendUint64(b, e.fp)
		b = append(b, byte(e.log2))
		b = append(b, e.bm...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// errFilterSumFile is every reason a summary file is not used.
var errFilterSumFile = errors.New("filter summary file")

func badFilterSums(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errFilterSumFile, fmt.Sprintf(format, args...))
}

// parseFilterSums checks and decodes a summary file of day.
func parseFilterSums(b []byte, day int64) ([]sumEntry, error) {
	if len(b) < filterSumHdrLen+4 {
		return nil, badFilterSums("%d bytes, shorter than a header", len(b))
	}
	body := b[:len(b)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
		return nil, badFilterSums("checksum %08x, want %08x", got, want)
	}
	if string(body[:4]) != filterSumMagic {
		return nil, badFilterSums("bad magic %q", body[:4])
	}
	if body[4] != filterSumVersion {
		return nil, badFilterSums("version %d, want %d", body[4], filterSumVersion)
	}
	if d := int64(binary.LittleEndian.Uint64(body[8:])); d != day {
		return nil, badFilterSums("holds day %d, want %d", d, day)
	}
	n := int(binary.LittleEndian.Uint32(body[16:]))
	rest := body[filterSumHdrLen:]
	if n > len(rest)/filterSumEntryLen {
		return nil, badFilterSums("%d entries in %d bytes", n, len(rest))
	}
	ents := make([]sumEntry, 0, n)
	for i := 0; i < n; i++ {
		if len(rest) < filterSumEntryLen {
			return nil, badFilterSums("entry %d truncated", i)
		}
		e := sumEntry{
			seg:  binary.LittleEndian.Uint64(rest),
			off:  int64(binary.LittleEndian.Uint64(rest[8:])),
			fp:   binary.LittleEndian.Uint64(rest[16:]),
			log2: int(rest[24]),
		}
		rest = rest[filterSumEntryLen:]
		if e.log2 != filterSumNone {
			if e.log2 < minFilterLog2 || e.log2 >= maxFilterLog2 {
				return nil, badFilterSums("entry %d: summary of 2^%d bits", i, e.log2)
			}
			size := (1 << e.log2) / 8
			if len(rest) < size {
				return nil, badFilterSums("entry %d truncated", i)
			}
			e.bm, rest = rest[:size], rest[size:]
		}
		ents = append(ents, e)
	}
	if len(rest) != 0 {
		return nil, badFilterSums("%d bytes after the last entry", len(rest))
	}
	return ents, nil
}

// loadFilterSums gives the blocks of the days [start, end) touches the
// summaries their days' files hold, once per day and process, before a
// select with a pruning line filter checks them; a writer builds a day's
// file again in the background when it is a miss or does not cover all
// the day's blocks. With build set (the writer's background loop) it only
// checks the files, once per day and process too, builds the ones that
// need it before it returns, and gives no block a summary.
func (s *Store) loadFilterSums(start, end int64, build bool) {
	s.mu.RLock()
	m := s.m
	var days []int64
	if m != nil && !s.closed {
		for day := range m.days {
			if day >= dayOf(start) && day <= dayOf(end-1) {
				days = append(days, day)
			}
		}
	}
	s.mu.RUnlock()
	if len(days) == 0 {
		return
	}
	s.sums.mu.Lock()
	if s.sums.m != m {
		s.sums.m, s.sums.tried = m, map[int64]sumsTried{}
	}
	what := sumsLoaded
	if build {
		what = sumsChecked
	}
	days = slices.DeleteFunc(days, func(day int64) bool {
		was := s.sums.tried[day]
		s.sums.tried[day] |= what
		return was&what != 0
	})
	s.sums.mu.Unlock()
	// Two goroutines: the files of a week are a few MB to check and apply.
	var next atomic.Int64
	work := func() {
		for i := int(next.Add(1) - 1); i < len(days); i = int(next.Add(1) - 1) {
			day := days[i]
			if s.loadDaySums(m, day, !build) || s.readOnly {
				continue
			}
			if build {
				s.ResultCacheWrite(func() { s.writeDaySums(m, day) })
			} else {
				s.rebuildDaySums(m, day)
			}
		}
	}
	var wg sync.WaitGroup
	if len(days) > 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// writeFilterSums builds the summary file of every day whose file does not
// cover its blocks, unless this process did so since the day last changed.
// The writer's background loop calls it when recompaction is done, when the
// days' blocks stay as they are. It keeps no summary in memory: the
// queries that need them load them.
func (s *Store) writeFilterSums() {
	if !s.readOnly {
		s.loadFilterSums(math.MinInt64, math.MaxInt64, true)
	}
}

// loadDaySums reports whether day's summary file covers every block of the
// day in m and, when apply is set, gives the blocks their summaries.
func (s *Store) loadDaySums(m *meta, day int64, apply bool) bool {
	raw, err := os.ReadFile(filterSumPath(s.dir, day))
	if err != nil {
		return false
	}
	ents, err := parseFilterSums(raw, day)
	if err != nil {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := m.days[day]
	if s.m != m || d == nil {
		return true // replaced meanwhile: nothing to cover here
	}
	covered := 0
	for _, e := range ents {
		b := m.blocks[blockKey{e.seg, e.off}]
		if b == nil || b.seg.day != day || b.fingerprint() != e.fp {
			continue
		}
		covered++
		if apply && e.log2 != filterSumNone && b.filterSum.Load() == nil {
			keepSummaryOf(b, tokenFilter{log2: e.log2, bm: append([]byte(nil), e.bm...)})
		}
	}
	total := 0
	for _, seg := range d.segs {
		total += seg.live
	}
	return covered >= total
}

// rebuildDaySums writes day's summary file again, in the background, from
// the summaries its blocks have and the filters of those that have none.
// A read-only store never writes; a closed store does not start.
func (s *Store) rebuildDaySums(m *meta, day int64) {
	s.sums.builds.Add(1)
	go func() {
		defer s.sums.builds.Done()
		s.ResultCacheWrite(func() { s.writeDaySums(m, day) })
	}()
}

func (s *Store) writeDaySums(m *meta, day int64) {
	s.sums.buildMu.Lock()
	defer s.sums.buildMu.Unlock()
	s.mu.RLock()
	var blocks []*blockRef
	if s.m == m && m.days[day] != nil {
		for _, b := range m.blocks {
			if b.seg.day == day {
				blocks = append(blocks, b)
			}
		}
	}
	s.mu.RUnlock()
	if len(blocks) == 0 {
		return
	}
	slices.SortFunc(blocks, func(a, b *blockRef) int {
		if a.seg.id != b.seg.id {
			return cmpInt64(int64(a.seg.id), int64(b.seg.id))
		}
		return cmpInt64(a.off, b.off)
	})
	ents := make([]sumEntry, 0, len(blocks))
	var buf []byte
	for _, b := range blocks {
		e := sumEntry{seg: b.seg.id, off: b.off, fp: b.fingerprint()}
		sum := b.filterSum.Load()
		// A block without a summary in the file (filterSumNone) has its
		// filter read by the query: so do the exact filter, which does
		// not fold, and a block whose filter cannot be read or checked
		// here, which the query then reports.
		switch {
		case sum != nil:
			e.log2, e.bm = sum.log2, sum.bm
		case b.corrupt.Load() || !summarizable(b.h.FilterLen):
		default:
			// Only the file gets the summary: what this process keeps
			// in memory is up to its queries.
			if f, err := s.readFilterInto(b, &buf); err == nil {
				folded, ok := f.summarize()
				if !ok {
					folded = tokenFilter{log2: f.log2, bm: append([]byte(nil), f.bm...)}
				}
				e.log2, e.bm = folded.log2, folded.bm
			}
		}
		ents = append(ents, e)
	}
	path := filterSumPath(s.dir, day)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	_ = ReplaceDerivedFile(path, marshalFilterSums(day, ents))
}

// dropDaySumsLocked is called, with s.mu held, for the partitions of
// segments whose files are deleted: their summary files go with them (a
// compaction replaces the day's blocks, retention drops the day), and the
// next query with a line filter builds the file again for the blocks the
// day holds then.
func (s *Store) dropDaySumsLocked(days map[int64]bool) []string {
	if len(days) == 0 {
		return nil
	}
	s.sums.mu.Lock()
	paths := make([]string, 0, len(days))
	for day := range days {
		delete(s.sums.tried, day)
		paths = append(paths, filterSumPath(s.dir, day))
	}
	s.sums.mu.Unlock()
	return paths
}

// removeFilterSumGarbage deletes, at a writer's open, the summary files of
// days the manifest does not hold and leftover temporary files.
func (s *Store) removeFilterSumGarbage() {
	live := map[string]bool{}
	for day := range s.m.days {
		live[dayDir(day)+filterSumExt] = true
	}
	removeDerived(filepath.Join(s.dir, filterSumDirName), func(name string) bool {
		return strings.HasSuffix(name, filterSumExt+".tmp") || (strings.HasSuffix(name, filterSumExt) && !live[name])
	})
}

// removeFilterSums deletes every summary file of the store in dir: repair
// may drop blocks and rewrites the manifest.
func removeFilterSums(dir string) {
	d := filepath.Join(dir, filterSumDirName)
	removeDerived(d, func(name string) bool {
		return strings.HasSuffix(name, filterSumExt) || strings.HasSuffix(name, filterSumExt+".tmp")
	})
	_ = os.Remove(d) // once empty
}
