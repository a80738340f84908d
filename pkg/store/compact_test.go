package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/lokal-logs/lokal/pkg/labels"
)

// The fixture's size: enough commits for many small overlapping blocks,
// small enough for go test -race.
const compactRounds, compactPerRound = 6, 150

// compactFixture fills a store with many fast-level blocks: three streams,
// two days, overlapping out-of-order commits, lines carrying their times.
func compactFixture(t *testing.T, s *Store) []streamData {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	var data []streamData
	for k := 0; k < 3; k++ {
		data = append(data, streamData{lbls: labels.FromStrings("job", "x", "n", fmt.Sprint(k))})
	}
	for round := 0; round < compactRounds; round++ {
		var batch []streamData
		for k := range data {
			var es []Entry
			for i := 0; i < compactPerRound; i++ {
				ts := day0 + rng.Int64N(2*nsPerDay)
				line := fmt.Sprintf("%s level=info msg=\"tts done\" round=%d i=%d duration=%dms rtf=%.3f", time.Unix(0, ts).UTC().Format(time.RFC3339Nano), round, i, rng.IntN(5000), rng.Float64())
				es = append(es, Entry{Ts: ts, Seq: uint64(round*1000 + i), Line: line})
			}
			data[k].entries = append(data[k].entries, es...)
			batch = append(batch, streamData{data[k].lbls, es})
		}
		appendAll(t, s, batch, map[string][]byte{"f": []byte(fmt.Sprint(round))})
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return data
}

func allParams(t *testing.T) SelectParams {
	return SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}, Start: day0 - nsPerDay, End: day0 + 3*nsPerDay, Lines: true}
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CompactAfterIdle: -1})
	if err != nil {
		t.Fatal(err)
	}
	data := compactFixture(t, s)
	p := allParams(t)
	want := expected(data, p)
	diff(t, readAll(t, s, p), want)
	before := s.Info()
	if before.UncompactedBlocks != before.Blocks {
		t.Fatalf("before: %+v", before)
	}
	// An iterator opened before compaction keeps reading the old blocks.
	its, err := s.Select(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	var held int
	for _, it := range its {
		for it.Next() {
			held += len(it.At().Ts)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("iterator across compaction: %v", err)
		}
		it.Close()
	}
	if held != 3*compactRounds*compactPerRound {
		t.Fatalf("iterator across compaction read %d entries, want %d", held, 3*compactRounds*compactPerRound)
	}
	after := s.Info()
	checkCompacted(t, s)
	// Sizes are the benchmarks' business (BenchmarkCorpusCompact): on a
	// fixture this small the manifest record outweighs the gain.
	if after.RawBytes != before.RawBytes || after.Entries != before.Entries || after.Blocks > before.Blocks {
		t.Fatalf("before %+v, after %+v", before, after)
	}
	if string(s.Cursors()["f"]) != fmt.Sprint(compactRounds-1) {
		t.Fatalf("cursor %q", s.Cursors()["f"])
	}
	diff(t, readAll(t, s, p), want)
	files, _ := filepath.Glob(filepath.Join(dir, dataDirName, "*", "*"))
	if len(files) != countSegments(s) {
		t.Fatalf("%d files for %d segments", len(files), countSegments(s))
	}
	// Nothing left: a second pass does nothing.
	var enc *zstd.Encoder
	if did, err := s.compactStep(&enc); did || err != nil || enc != nil {
		t.Fatalf("second pass: did=%v err=%v, encoder made: %v", did, err, enc != nil)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	diff(t, readAll(t, s, p), want)
	checkCompacted(t, s)
}

// checkCompacted: only live tails may be left at the fast level.
func checkCompacted(t *testing.T, s *Store) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	strong := 0
	for _, st := range s.m.streams {
		tail := liveTail(st)
		for _, b := range st.blocks {
			switch {
			case b.h.Codec == codecZstdStrong:
				strong++
			case b != tail:
				t.Errorf("stream %s: a fast block %d@%d is left", st.lbls, b.seg.id, b.off)
			}
		}
	}
	if strong == 0 {
		t.Errorf("no block was recompacted")
	}
}

// TestCompactCrash kills a compaction at each durable step; the reopened
// store holds every entry exactly once and no stray file.
func TestCompactCrash(t *testing.T) {
	for _, stage := range []string{"segment-write", "segment-sync", "manifest-append", "manifest-sync"} {
		t.Run(stage, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{CompactAfterIdle: -1})
			if err != nil {
				t.Fatal(err)
			}
			data := compactFixture(t, s)
			p := allParams(t)
			want := expected(data, p)
			s.setFaults(func(st string) error {
				if st == stage {
					return errSimulatedCrash
				}
				return nil
			})
			if err := s.Compact(context.Background()); !errors.Is(err, errSimulatedCrash) {
				t.Fatalf("compact: %v", err)
			}
			s.abandon()
			s, err = Open(dir, Options{CompactAfterIdle: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			diff(t, readAll(t, s, p), want)
			files, _ := filepath.Glob(filepath.Join(dir, dataDirName, "*", "*"))
			if len(files) != countSegments(s) {
				t.Fatalf("%d files for %d segments", len(files), countSegments(s))
			}
			if err := s.Compact(context.Background()); err != nil {
				t.Fatal(err)
			}
			diff(t, readAll(t, s, p), want)
		})
	}
}

// TestCompactFullDisk: a failing write leaves the old blocks serving.
func TestCompactFullDisk(t *testing.T) {
	s, err := Open(t.TempDir(), Options{CompactAfterIdle: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := compactFixture(t, s)
	p := allParams(t)
	s.setFaults(func(st string) error {
		if st == "manifest-sync" {
			return syscall.ENOSPC
		}
		return nil
	})
	if err := s.Compact(context.Background()); err == nil {
		t.Fatal("compact on a full disk succeeded")
	}
	s.setFaults(nil)
	diff(t, readAll(t, s, p), expected(data, p))
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	diff(t, readAll(t, s, p), expected(data, p))
}

// TestCompactInBackground: once appends stop, the background loop
// recompacts on its own.
func TestCompactInBackground(t *testing.T) {
	s, err := Open(t.TempDir(), Options{CompactAfterIdle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := compactFixture(t, s)
	deadline := time.Now().Add(30 * time.Second)
	for {
		fast := s.Info().UncompactedBlocks
		if fast <= len(data) { // the live tails may stay
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d fast blocks left after 30 s idle", fast)
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkCompacted(t, s)
	p := allParams(t)
	diff(t, readAll(t, s, p), expected(data, p))
}

// TestCompactWaitsForCatchUp: a head filling up marks ingestion busy.
func TestCompactWaitsForCatchUp(t *testing.T) {
	s, err := Open(t.TempDir(), Options{HeadFlushBytes: 1 << 16, HeadMemoryBudget: 1 << 20, CompactAfterIdle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.compactIdle() {
		t.Fatal("idle right after open")
	}
	s.mu.Lock()
	s.lastBusy = time.Now().Add(-2 * time.Hour)
	s.mu.Unlock()
	if !s.compactIdle() {
		t.Fatal("not idle after two quiet hours")
	}
	// A slow append (commits by age) keeps it idle.
	ls := labels.FromStrings("job", "x")
	appendAll(t, s, []streamData{{ls, []Entry{{Ts: day0, Line: "slow"}}}}, nil)
	if s.commitDue() || !s.compactIdle() {
		t.Fatal("a small head made the store busy")
	}
	var es []Entry
	for i := range 100 {
		es = append(es, Entry{Ts: day0 + int64(i), Line: strings.Repeat("x", 1000)})
	}
	appendAll(t, s, []streamData{{ls, es}}, nil)
	s.commitDue() // or the background loop, poked by Append, got there first
	if s.compactIdle() {
		t.Fatal("a full head did not make the store busy")
	}
}

func TestCompactReadOnly(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	s.Close()
	r := openReadOnlyTest(t, dir)
	if err := r.Compact(context.Background()); err == nil {
		t.Fatal("read-only store compacted")
	}
}

// TestReadOnlyAcrossCompaction: a read-only reader (the CLI) whose query
// started before the writer recompacted and deleted the old segment files
// still reads every entry, and so does one started after.
func TestReadOnlyAcrossCompaction(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CompactAfterIdle: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := compactFixture(t, s)
	p := allParams(t)
	want := expected(data, p)
	r := openReadOnlyTest(t, dir)
	its, err := r.Select(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A second select reloads the manifest before the first is read.
	diff(t, readAll(t, r, p), want)
	n := drainCount(t, its)
	if want := 3 * compactRounds * compactPerRound; n != want {
		t.Fatalf("select from before the compaction read %d entries, want %d", n, want)
	}
	if in := r.Info(); in.CorruptBlocks != 0 {
		t.Fatalf("reader saw corrupt blocks: %+v", in)
	}
}
