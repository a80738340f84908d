package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// timesStore has one stream, {job="t"}, in three flushed blocks without
// structured metadata; half of the lines open with their own timestamp (the
// store elides it, so sizes must put it back).
func timesStore(t *testing.T, dir string) (*Store, []*labels.Matcher) {
	t.Helper()
	s := openTest(t, dir)
	ls := labels.FromStrings("job", "t")
	seq := uint64(0)
	for round := 0; round < 3; round++ {
		var es []Entry
		for i := 0; i < 7000; i++ {
			seq++
			ts := day0 + int64(round)*int64(time.Hour) + int64(i)*int64(time.Second) + int64(seq%7)*1_000_003
			line := fmt.Sprintf("level=info n=%d %s", seq, strings.Repeat("x", 80+int(seq%40)))
			if i%2 == 0 {
				line = time.Unix(0, ts).UTC().Format(time.RFC3339Nano) + " " + line
			}
			es = append(es, Entry{Ts: ts, Seq: seq, Line: line})
		}
		appendAll(t, s, []streamData{{ls, es}}, nil)
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return s, []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "t")}
}

// blockTimes is what a block's iterator hands out without lines, and the
// stats of reading it.
func blockTimes(t *testing.T, b BlockInfo) ([]int64, []uint32) {
	t.Helper()
	var ts []int64
	var sizes []uint32
	for b.Iter.Next() {
		ts = append(ts, b.Iter.At().Ts...)
		sizes = append(sizes, b.Iter.At().Sizes...)
	}
	if err := b.Iter.Err(); err != nil {
		t.Fatal(err)
	}
	b.Iter.Close()
	return ts, sizes
}

func selectTimes(t *testing.T, s *Store, m []*labels.Matcher, lines bool) ([]BlockInfo, *StatsCollector) {
	t.Helper()
	var c StatsCollector
	bss, err := s.SelectBlocks(WithStats(context.Background(), &c), SelectParams{Matchers: m, Start: day0, End: day0 + 24*int64(time.Hour), Lines: lines})
	if err != nil {
		t.Fatal(err)
	}
	if len(bss) != 1 {
		t.Fatalf("%d streams, want 1", len(bss))
	}
	return bss[0].Blocks, &c
}

// ScanTimes hands out what the block's iterator would (times, and sizes
// when asked), with the same stats, on the first read of a block (which
// verifies it whole) and on later ones (the time columns only).
func TestScanTimes(t *testing.T) {
	s, m := timesStore(t, t.TempDir())
	defer s.Close()
	for _, tc := range []struct {
		name  string
		sizes bool
	}{{"first read", false}, {"sizes", true}, {"times", false}, {"times again", false}} {
		t.Run(tc.name, func(t *testing.T) {
			want, wantStats := selectTimes(t, s, m, false)
			got, gotStats := selectTimes(t, s, m, false)
			if len(got) < 3 {
				t.Fatalf("%d blocks, the test needs 3", len(got))
			}
			for i := range got {
				// Scan first: the first round's scans see unverified blocks.
				var ts []int64
				var sizes []uint32
				ok, err := got[i].ScanTimes(tc.sizes, func(bt *BlockTimes) error {
					ts, sizes = slices.Clone(bt.Ts), slices.Clone(bt.Sizes)
					return nil
				})
				if err != nil || !ok || ts == nil {
					t.Fatalf("block %s: ScanTimes = %v, %v (times handed out: %d)", got[i].ID, ok, err, len(ts))
				}
				wantTs, wantSizes := blockTimes(t, want[i])
				if !slices.Equal(ts, wantTs) {
					t.Errorf("block %s: times differ from the iterator's", got[i].ID)
				}
				if tc.sizes && !slices.Equal(sizes, wantSizes) {
					t.Errorf("block %s: sizes differ from the iterator's", got[i].ID)
				}
				if !tc.sizes && sizes != nil {
					t.Errorf("block %s: sizes handed out unasked", got[i].ID)
				}
				got[i].Iter.Close()
			}
			if g, w := gotStats.Snapshot(), wantStats.Snapshot(); g != w {
				t.Errorf("stats %+v, the iterators' %+v", g, w)
			}
		})
	}
}

// ScanTimes declines (calling nothing) whatever it cannot read as the
// iterator would: a select with lines, a started iterator, a block with
// structured metadata.
func TestScanTimesDeclines(t *testing.T) {
	s, m := timesStore(t, t.TempDir())
	defer s.Close()
	md, _, mdm := overlappingStore(t)
	for _, tc := range []struct {
		name   string
		blocks func() []BlockInfo
	}{
		{"select with lines", func() []BlockInfo { bs, _ := selectTimes(t, s, m, true); return bs }},
		{"started iterator", func() []BlockInfo {
			bs, _ := selectTimes(t, s, m, false)
			for _, b := range bs {
				b.Iter.Next()
			}
			return bs
		}},
		{"structured metadata", func() []BlockInfo { bs, _ := selectTimes(t, md, mdm, false); return bs }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, b := range tc.blocks() {
				ok, err := b.ScanTimes(false, func(*BlockTimes) error {
					t.Errorf("block %s: fn called", b.ID)
					return nil
				})
				if ok || err != nil {
					t.Errorf("block %s: ScanTimes = %v, %v; want false, nil", b.ID, ok, err)
				}
				b.Iter.Close()
			}
		})
	}
}

// A block whose lines section is damaged is found corrupt by its first
// read, even one that wants only its times, and skipped (and counted) by
// every later one, as a log query would find it.
func TestScanTimesCorruptBlock(t *testing.T) {
	dir := t.TempDir()
	s, m := timesStore(t, dir)
	s.Close()
	s = openTest(t, dir)
	defer s.Close()
	s.mu.RLock()
	var victim *blockRef
	for _, bl := range s.m.blocks {
		if victim == nil || bl.h.MinTs < victim.h.MinTs {
			victim = bl
		}
	}
	path, off := segPath(dir, victim.seg), victim.off+victim.h.linesOff()+10
	s.mu.RUnlock()
	flipByte(t, path, off)
	for round := 0; round < 2; round++ {
		bs, c := selectTimes(t, s, m, false)
		read := 0
		for _, b := range bs {
			ok, err := b.ScanTimes(false, func(bt *BlockTimes) error {
				if b.ID == (BlockID{Seg: victim.seg.id, Off: victim.off}) {
					t.Errorf("round %d: the corrupt block was handed out", round)
				}
				read++
				return nil
			})
			if !ok || err != nil {
				t.Fatalf("round %d: ScanTimes = %v, %v", round, ok, err)
			}
			b.Iter.Close()
		}
		if st := c.Snapshot(); read != len(bs)-1 || st.BlocksCorrupt != 1 || st.BlocksRead != len(bs)-1 {
			t.Errorf("round %d: %d of %d blocks read, stats %+v", round, read, len(bs), st)
		}
	}
	if in := s.Info(); in.CorruptBlocks != 1 {
		t.Errorf("info %+v", in)
	}
}
