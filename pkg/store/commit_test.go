package store

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// TestCommitLeavesOpenReadersAlone checks the write path's shortcuts: the
// head moves to flushing without a copy, is sorted in place of a copy only
// when out of order, and the next head starts at the last one's size. An
// iterator opened before the commit must still read exactly what the head
// held then, and everything must come back once, in order.
func TestCommitLeavesOpenReadersAlone(t *testing.T) {
	ls := labels.FromStrings("job", "x")
	p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}, Start: day0, End: day0 + nsPerDay, Lines: true}
	mk := func(from, n int, reversed bool) []Entry {
		es := make([]Entry, n)
		for i := range es {
			k := from + i
			if reversed {
				k = from + n - 1 - i
			}
			es[i] = Entry{Ts: day0 + int64(k)*1e6, Seq: uint64(k), Line: fmt.Sprintf("line %05d", k)}
		}
		return es
	}
	for _, tc := range []struct {
		name     string
		reversed bool // the first batch arrives newest first
		batches  int  // appended before the first commit
	}{
		{"in order, one batch", false, 1},
		{"in order, three batches", false, 3},
		{"out of order, one batch", true, 1},
		{"out of order, three batches", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, t.TempDir())
			defer s.Close()
			const per = 500
			var all []Entry
			for b := range tc.batches {
				es := mk(b*per, per, tc.reversed && b == 0)
				all = append(all, es...)
				appendAll(t, s, []streamData{{ls, es}}, nil)
			}
			its, err := s.Select(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			before := slices.Clone(all)
			slices.SortFunc(before, compareEntries)
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := s.m.byKey[labelsKey(ls)].headHint; got != len(all) {
				t.Errorf("head hint %d after the cut, want %d", got, len(all))
			}
			// The next head: appended while the old iterator is still open.
			more := mk(tc.batches*per, per, false)
			appendAll(t, s, []streamData{{ls, more}}, nil)
			if st := s.m.byKey[labelsKey(ls)]; cap(st.head) < len(all) {
				t.Errorf("new head has capacity %d, want at least the hint %d", cap(st.head), len(all))
			}
			var got []Entry
			for _, it := range its {
				for it.Next() {
					b := it.At()
					for i := range b.Ts {
						got = append(got, Entry{Ts: b.Ts[i], Seq: b.Seq[i], Line: b.Lines[i]})
					}
				}
				if err := it.Err(); err != nil {
					t.Fatal(err)
				}
				it.Close()
			}
			diff(t, map[string][]Entry{ls.String(): got}, map[string][]Entry{ls.String(): before})
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			all = append(all, more...)
			diff(t, readAll(t, s, p), expected([]streamData{{ls, all}}, p))
		})
	}
}

// TestBuilderPool keeps at most its capacity, hands kept builders out
// again, and lets them all go on drain.
func TestBuilderPool(t *testing.T) {
	for _, tc := range []struct {
		keep, put, wantKept int
	}{
		{keep: 2, put: 1, wantKept: 1},
		{keep: 2, put: 2, wantKept: 2},
		{keep: 2, put: 5, wantKept: 2},
		{keep: 1, put: 0, wantKept: 0},
	} {
		t.Run(fmt.Sprintf("keep %d put %d", tc.keep, tc.put), func(t *testing.T) {
			p := newBuilderPool(tc.keep)
			var put []*filterBuilder
			for range tc.put {
				fb := newFilterBuilder()
				put = append(put, fb)
				p.put(fb)
			}
			if len(p.free) != tc.wantKept {
				t.Fatalf("kept %d builders, want %d", len(p.free), tc.wantKept)
			}
			if tc.wantKept > 0 && !slices.Contains(put, p.get()) {
				t.Fatal("get made a new builder while one was kept")
			}
			p.drain()
			if len(p.free) != 0 {
				t.Fatalf("%d builders kept after drain", len(p.free))
			}
			if p.get() == nil {
				t.Fatal("get on an empty pool returned nil")
			}
		})
	}
}

// TestSmallCommitKeepsNoScratch: a commit smaller than a block lets the
// encoding scratch go; a catch-up sized one keeps it for the next commit.
func TestSmallCommitKeepsNoScratch(t *testing.T) {
	ls := labels.FromStrings("job", "x")
	line := string(make([]byte, 1000))
	for _, tc := range []struct {
		name     string
		lines    int
		wantKept bool
	}{
		{"quiet live tail", 10, false},
		{"catch-up", 3 * blockTargetRaw / len(line), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.TempDir(), Options{HeadFlushBytes: 64 << 20, HeadMemoryBudget: 64 << 20, CompactAfterIdle: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			es := make([]Entry, tc.lines)
			for i := range es {
				es[i] = Entry{Ts: day0 + int64(i), Seq: uint64(i), Line: line}
			}
			appendAll(t, s, []streamData{{ls, es}}, nil)
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if kept := len(s.fbPool.free) > 0; kept != tc.wantKept {
				t.Fatalf("builders kept: %v, want %v", kept, tc.wantKept)
			}
		})
	}
}
