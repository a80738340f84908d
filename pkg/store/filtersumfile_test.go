package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// checkSumFile checks that day's summary file of s covers every block of
// the day and holds, for each, exactly the summary of its filter.
func checkSumFile(t *testing.T, s *Store, day int64) {
	t.Helper()
	raw, err := os.ReadFile(filterSumPath(s.dir, day))
	if err != nil {
		t.Fatalf("day %s: %v", dayDir(day), err)
	}
	ents, err := parseFilterSums(raw, day)
	if err != nil {
		t.Fatalf("day %s: %v", dayDir(day), err)
	}
	s.mu.RLock()
	var blocks []*blockRef
	for _, b := range s.m.blocks {
		if b.seg.day == day {
			blocks = append(blocks, b)
		}
	}
	s.mu.RUnlock()
	if len(ents) != len(blocks) {
		t.Fatalf("day %s: %d entries for %d blocks", dayDir(day), len(ents), len(blocks))
	}
	byKey := map[blockKey]sumEntry{}
	for _, e := range ents {
		byKey[blockKey{e.seg, e.off}] = e
	}
	for _, b := range blocks {
		e, ok := byKey[blockKey{b.seg.id, b.off}]
		if !ok || e.fp != b.fingerprint() {
			t.Fatalf("day %s: block %d@%d missing or with fingerprint %x, want %x", dayDir(day), b.seg.id, b.off, e.fp, b.fingerprint())
		}
		f, err := s.readFilter(b)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := f.summarize()
		if !ok {
			want = f
		}
		if e.log2 != want.log2 || !bytes.Equal(e.bm, want.bm) {
			t.Fatalf("day %s: block %d@%d: file holds 2^%d bits, its filter folds to 2^%d", dayDir(day), b.seg.id, b.off, e.log2, want.log2)
		}
	}
}

// storeDays lists the days s holds.
func storeDays(s *Store) []int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var days []int64
	for day := range s.m.days {
		days = append(days, day)
	}
	return days
}

// writeNeedleStore writes writeNeedleDays' store in dir and recompacts it,
// which leaves a summary file per day, and closes it.
func writeNeedleStore(t *testing.T, dir string) (all []Entry, needles []string) {
	t.Helper()
	s := openTest(t, dir)
	all, needles = writeNeedleDays(t, s)
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	days := storeDays(s)
	if len(days) != 12 {
		t.Fatalf("%d days, want 12", len(days))
	}
	for _, day := range days {
		checkSumFile(t, s, day)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return all, needles
}

// openAs opens dir read-only or as its writer.
func openAs(t *testing.T, dir string, readOnly bool) *Store {
	t.Helper()
	open := Open
	if readOnly {
		open = OpenReadOnly
	}
	s, err := open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSummaryFilesNeverSkipAMatch checks that a store opened again takes
// every block's summary from the files, reading no filter, and that the
// needle queries then answer as a brute-force scan does, in a writer and in
// a read-only store.
func TestSummaryFilesNeverSkipAMatch(t *testing.T) {
	dir := t.TempDir()
	all, needles := writeNeedleStore(t, dir)
	for _, ro := range []bool{false, true} {
		s := openAs(t, dir, ro)
		s.loadFilterSums(math.MinInt64, math.MaxInt64, false)
		s.mu.RLock()
		for _, b := range s.m.blocks {
			if b.filterSum.Load() == nil {
				t.Errorf("read-only %v: block %d@%d has no summary from its file", ro, b.seg.id, b.off)
			}
		}
		s.mu.RUnlock()
		checkNeedles(t, s, all, needles, "summaries from files")
		s.sums.builds.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// reseal recomputes a damaged summary file's checksum, so that only the
// damage under test is wrong.
func reseal(b []byte) []byte {
	body := b[:len(b)-4]
	return binary.LittleEndian.AppendUint32(body[:len(body):len(body)], crc32.Checksum(body, castagnoli))
}

// TestSummaryFileDamage damages one day's file in each way a file can be
// wrong: every kind is a miss (the answers stay right), a writer builds the
// file again, a read-only store leaves it as it is.
func TestSummaryFileDamage(t *testing.T) {
	cases := []struct {
		name   string
		damage func(b, other []byte) []byte // nil: the file is removed
	}{
		{"missing", nil},
		{"empty", func(b, _ []byte) []byte { return nil }},
		{"truncated", func(b, _ []byte) []byte { return b[:len(b)/2] }},
		{"header only", func(b, _ []byte) []byte { return b[:filterSumHdrLen] }},
		{"flipped bit", func(b, _ []byte) []byte { b[len(b)/2] ^= 0x10; return b }},
		{"bad magic", func(b, _ []byte) []byte { b[0] = 'X'; return reseal(b) }},
		{"other version", func(b, _ []byte) []byte { b[4] = filterSumVersion + 1; return reseal(b) }},
		{"other day's file", func(_, other []byte) []byte { return other }},
		{"more entries than it holds", func(b, _ []byte) []byte {
			binary.LittleEndian.PutUint32(b[16:], binary.LittleEndian.Uint32(b[16:])+1)
			return reseal(b)
		}},
		{"bytes after the last entry", func(b, _ []byte) []byte {
			return reseal(append(b[:len(b)-4:len(b)-4], 0, 0, 0, 0, 0))
		}},
		{"summary size out of range", func(b, _ []byte) []byte {
			b[filterSumHdrLen+24] = maxFilterLog2
			return reseal(b)
		}},
		{"entry of another block, ruling everything out", func(b, _ []byte) []byte {
			// Another fingerprint (the store was made again in place)
			// and an empty bitmap: applied, it would hide every match.
			e := b[filterSumHdrLen:]
			binary.LittleEndian.PutUint64(e[16:], binary.LittleEndian.Uint64(e[16:])^1)
			clear(e[filterSumEntryLen : filterSumEntryLen+(1<<e[24])/8])
			return reseal(b)
		}},
	}
	dir := t.TempDir()
	all, needles := writeNeedleStore(t, dir)
	// The day of the first needle's line: damage hides it if trusted.
	var day int64
	for _, e := range all {
		if strings.Contains(e.Line, needles[0]) {
			day = dayOf(e.Ts)
			break
		}
	}
	path := filterSumPath(dir, day)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.ReadFile(filterSumPath(dir, day+1))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		for _, ro := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: ", read-only", false: ", writer"}[ro], func(t *testing.T) {
				var damaged []byte
				if tc.damage == nil {
					if err := os.Remove(path); err != nil {
						t.Fatal(err)
					}
				} else {
					damaged = tc.damage(bytes.Clone(good), other)
					if err := os.WriteFile(path, damaged, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := parseFilterSums(damaged, day); err == nil && tc.name != "entry of another block, ruling everything out" {
					t.Fatal("the damaged file parses")
				}
				s := openAs(t, dir, ro)
				checkNeedles(t, s, all, needles, "damaged file")
				s.sums.builds.Wait()
				if ro {
					got, err := os.ReadFile(path)
					if tc.damage == nil && !errors.Is(err, fs.ErrNotExist) {
						t.Fatalf("a read-only store wrote %s: %v", path, err)
					}
					if tc.damage != nil && !bytes.Equal(got, damaged) {
						t.Fatal("a read-only store rewrote the damaged file")
					}
				} else {
					checkSumFile(t, s, day)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, good, 0o644); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestSummaryFilesGoWithTheirSegments checks that a day's file is deleted
// with the segments it describes: retention drops it with its day,
// recompaction replaces it with one for the new blocks, repair removes them
// all, and a writer's open removes files of days it does not hold.
func TestSummaryFilesGoWithTheirSegments(t *testing.T) {
	t.Run("retention", func(t *testing.T) {
		dir := t.TempDir()
		writeNeedleStore(t, dir)
		// Days 0-5 end before the retention limit, days 6-11 after.
		s, err := Open(dir, Options{Retention: time.Since(time.Unix(0, day0+6*nsPerDay+nsPerDay/2))})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for d := int64(0); d < 12; d++ {
			day := dayOf(day0) + d
			_, err := os.Stat(filterSumPath(dir, day))
			if gone := errors.Is(err, fs.ErrNotExist); gone != (d < 6) {
				t.Errorf("day %d: file gone %v (%v)", d, gone, err)
			}
		}
	})
	t.Run("recompaction", func(t *testing.T) {
		dir := t.TempDir()
		s := openTest(t, dir)
		defer func() { s.Close() }()
		ls := labels.FromStrings("job", "x")
		// Day 0 in small commits that recompaction merges; day 1 holds
		// the stream's live tail, which it leaves.
		var all []Entry
		for c := 0; c < 6; c++ {
			var es []Entry
			for i := 0; i < 200; i++ {
				es = append(es, Entry{Ts: day0 + int64(c*1000+i), Line: "line " + strings.Repeat("x", c+i%7) + " needle-c" + string(rune('0'+c))})
			}
			all = append(all, es...)
			appendAll(t, s, []streamData{{ls, es}}, nil)
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		appendAll(t, s, []streamData{{ls, []Entry{{Ts: day0 + nsPerDay, Line: "tail"}}}}, nil)
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		day := dayOf(day0)
		// A query builds the file of the blocks as ingested.
		p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")},
			Start: day0, End: day0 + 2*nsPerDay, Lines: true, Hint: &LineFilterHint{Groups: [][]string{{"needle-c3"}}}}
		if got := drainMatching(t, s, context.Background(), p, "needle-c3", 0); got != 200 {
			t.Fatalf("%d matches before recompaction, want 200", got)
		}
		s.sums.builds.Wait()
		checkSumFile(t, s, day)
		segs := func() (ids []uint64) {
			s.mu.RLock()
			defer s.mu.RUnlock()
			for id := range s.m.days[day].segs {
				ids = append(ids, id)
			}
			return ids
		}
		before := segs()
		if err := s.Compact(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, id := range segs() {
			if slices.Contains(before, id) {
				t.Fatalf("recompaction kept segment %d of %v", id, before)
			}
		}
		checkSumFile(t, s, day) // for the new blocks only
		if got := drainMatching(t, s, context.Background(), p, "needle-c3", 0); got != 200 {
			t.Fatalf("%d matches after recompaction, want 200", got)
		}
	})
	t.Run("repair", func(t *testing.T) {
		dir := t.TempDir()
		writeNeedleStore(t, dir)
		// A torn manifest record: repair rewrites the manifest.
		man := filepath.Join(dir, manifestName)
		f, err := os.OpenFile(man, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		rep, err := Repair(dir)
		if err != nil || !rep.Changed {
			t.Fatalf("repair: %+v, %v", rep, err)
		}
		if _, err := os.Stat(filepath.Join(dir, filterSumDirName)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("summary files after repair: %v", err)
		}
	})
	t.Run("garbage at open", func(t *testing.T) {
		dir := t.TempDir()
		writeNeedleStore(t, dir)
		stray := []string{
			filterSumPath(dir, dayOf(day0)-400),           // a day the store does not hold
			filterSumPath(dir, dayOf(day0)) + ".tmp",      // a write cut short
			filepath.Join(dir, filterSumDirName, "notes"), // not ours: left alone
		}
		for _, p := range stray {
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r := openReadOnlyTest(t, dir)
		r.Close()
		for _, p := range stray {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("a read-only open removed %s: %v", p, err)
			}
		}
		s := openTest(t, dir)
		defer s.Close()
		for i, p := range stray {
			_, err := os.Stat(p)
			if gone := errors.Is(err, fs.ErrNotExist); gone != (i < 2) {
				t.Errorf("%s: removed %v (%v)", p, gone, err)
			}
		}
		for _, day := range storeDays(s) {
			checkSumFile(t, s, day)
		}
	})
}

// TestParseFilterSumsDamage feeds parseFilterSums every truncation of a
// file and random changes to it, with the checksum made right again so
// that the checks behind it are reached: each is an error or a file of
// well-formed entries, never a panic.
func TestParseFilterSumsDamage(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	ents := []sumEntry{
		{seg: 1, off: 0, fp: 11, log2: minFilterLog2, bm: bytes.Repeat([]byte{0x5a}, (1<<minFilterLog2)/8)},
		{seg: 1, off: 900, fp: 12, log2: filterSumNone},
		{seg: 2, off: 0, fp: 13, log2: 12, bm: bytes.Repeat([]byte{0xa5}, (1<<12)/8)},
	}
	const day = 20000
	good := marshalFilterSums(day, ents)
	got, err := parseFilterSums(good, day)
	if err != nil || len(got) != len(ents) {
		t.Fatalf("the intact file: %d entries, %v", len(got), err)
	}
	for i, e := range got {
		if e.seg != ents[i].seg || e.off != ents[i].off || e.fp != ents[i].fp || e.log2 != ents[i].log2 || !bytes.Equal(e.bm, ents[i].bm) {
			t.Fatalf("entry %d: %+v, want %+v", i, e, ents[i])
		}
	}
	check := func(b []byte, what string) {
		t.Helper()
		got, err := parseFilterSums(b, day)
		if err != nil {
			if !errors.Is(err, errFilterSumFile) {
				t.Fatalf("%s: error %v is not a summary file error", what, err)
			}
			return
		}
		for _, e := range got {
			if e.log2 != filterSumNone && (e.log2 < minFilterLog2 || e.log2 >= maxFilterLog2 || len(e.bm) != (1<<e.log2)/8) {
				t.Fatalf("%s: entry %+v accepted", what, e)
			}
		}
	}
	for n := 0; n < len(good); n++ {
		check(good[:n], fmt.Sprintf("cut to %d bytes", n))
		if n >= 4 {
			check(reseal(bytes.Clone(good[:n])), fmt.Sprintf("cut to %d bytes, checksum made right", n))
		}
	}
	for k := 0; k < 2000; k++ {
		b := bytes.Clone(good)
		for j := 0; j <= rng.IntN(3); j++ {
			b[rng.IntN(len(b)-4)] = byte(rng.Uint32())
		}
		check(b, "changed bytes")
		check(reseal(b), "changed bytes, checksum made right")
	}
}
