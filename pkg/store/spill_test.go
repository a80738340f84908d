package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// spillTestStore writes streams of one block each, interleaved in time,
// some entries with structured metadata, and leaves a head of unflushed
// entries in every third stream. It returns the store, its directory and
// the sums of the streams' block costs with lines and without (what the
// fast path would hold).
func spillTestStore(t *testing.T, streams, perStream int) (s *Store, dir string, fast, fastTimes int64) {
	t.Helper()
	dir = t.TempDir()
	s = openTest(t, dir)
	t.Cleanup(func() { s.Close() })
	lbls := func(i int) labels.Labels {
		return labels.FromStrings("job", "x", "file", fmt.Sprintf("f%03d.log", i))
	}
	var data []streamData
	for i := 0; i < streams; i++ {
		es := synthEntries(synthLines(perStream, uint64(i+1)), day0+int64(i))
		for j := range es {
			if (i+j)%7 == 0 {
				es[j].Metadata = labels.FromStrings("trace_id", fmt.Sprintf("t%d", j%5))
			}
		}
		data = append(data, streamData{lbls(i), es})
	}
	appendAll(t, s, data, nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var head []streamData
	for i := 0; i < streams; i += 3 {
		es := synthEntries(synthLines(50, uint64(1000+i)), day0+int64(perStream+10)*1e6+int64(i))
		head = append(head, streamData{lbls(i), es})
	}
	appendAll(t, s, head, nil)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, st := range s.m.streams {
		for _, b := range st.blocks {
			fast += blockCostMD(b, true)
			fastTimes += blockCostMD(b, false)
		}
	}
	return s, dir, fast, fastTimes
}

// TestSelectSpills checks that a select whose streams' blocks do not fit
// under MaxDecodedBytes at once reads windows of them instead of failing:
// every direction returns exactly what it returns with no bound, the
// select's own accounting never passes the bound, and a bound that cannot
// even hold a window per stream is still refused with the numbers.
func TestSelectSpills(t *testing.T) {
	const streams, perStream = 200, 1500
	s, _, fast, fastTimes := spillTestStore(t, streams, perStream)
	sel := []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}
	for _, tc := range []struct {
		name       string
		dir        Direction
		lines      bool
		max        int64
		concurrent bool   // each stream read to its end on a goroutine of its own
		wantErr    string // empty: the same entries as with no bound
	}{
		{name: "forward, a fifth of the blocks", dir: Forward, lines: true, max: fast / 5},
		{name: "backward, a fifth of the blocks", dir: Backward, lines: true, max: fast / 5},
		{name: "forward, times only", dir: Forward, max: fastTimes * 2 / 3},
		{name: "backward, times only", dir: Backward, max: fastTimes * 2 / 3},
		{name: "forward, read at once by many goroutines", dir: Forward, lines: true, max: fast / 5, concurrent: true},
		{name: "backward, read at once by many goroutines", dir: Backward, lines: true, max: fast / 5, concurrent: true},
		{name: "windows of all streams do not fit", dir: Forward, lines: true, max: streams * windowMin / 2,
			wantErr: fmt.Sprintf("over %d streams, limit: %d MiB); narrow the stream selector", streams, mibUp(streams*windowMin/2))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := SelectParams{Matchers: sel, Start: day0, End: day0 + nsPerDay, Direction: tc.dir, Lines: tc.lines, MaxDecodedBytes: -1}
			want := map[string][]Entry{}
			if _, _, err := mergeAll(t, selectOrFail(t, s, p), tc.dir, want); err != nil {
				t.Fatal(err)
			}
			p.MaxDecodedBytes = tc.max
			var c StatsCollector
			its, err := s.Select(WithStats(context.Background(), &c), p)
			if err != nil {
				t.Fatal(err)
			}
			dec := its[0].(*streamIter).dec
			if !dec.spilling() {
				t.Fatalf("a bound of %d for blocks costing %d (%d without lines) in all does not spill", tc.max, fast, fastTimes)
			}
			got := map[string][]Entry{}
			if tc.concurrent {
				err = readConcurrently(its, got)
			} else {
				_, _, err = mergeAll(t, its, tc.dir, got)
			}
			if peak := dec.peak.Load(); peak > tc.max {
				t.Fatalf("peak %d decoded bytes past the bound %d", peak, tc.max)
			}
			if tc.wantErr != "" {
				if !errors.Is(err, ErrDecodedLimit) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrDecodedLimit with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Snapshot().BlocksRedecoded == 0 {
				t.Fatal("no block was decoded again: the windows were not exercised")
			}
			sameEntries(t, got, want)
		})
	}
}

func selectOrFail(t *testing.T, s *Store, p SelectParams) []StreamIterator {
	t.Helper()
	its, err := s.Select(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return its
}

// readConcurrently reads every iterator to its end on a goroutine of its
// own, all at once, collecting entries as mergeAll does, and closes them.
func readConcurrently(its []StreamIterator, got map[string][]Entry) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(its))
	for i, it := range its {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer it.Close()
			var es []Entry
			for it.Next() {
				es = appendBatch(es, it.At())
			}
			errs[i] = it.Err()
			mu.Lock()
			got[it.Labels().String()] = es
			mu.Unlock()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// appendBatch appends a batch's entries to es; without lines, an entry's
// line is its size in angle brackets.
func appendBatch(es []Entry, b *Batch) []Entry {
	for i := range b.Ts {
		e := Entry{Ts: b.Ts[i], Seq: b.Seq[i], Line: fmt.Sprintf("<%d>", b.Sizes[i])}
		if b.Lines != nil {
			e.Line = b.Lines[i]
		}
		if b.Metadata != nil {
			e.Metadata = b.Metadata[i]
		}
		es = append(es, e)
	}
	return es
}

func sameEntries(t *testing.T, got, want map[string][]Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d streams, want %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if len(g) != len(w) {
			t.Fatalf("stream %s: %d entries, want %d", k, len(g), len(w))
		}
		for i := range w {
			if !reflect.DeepEqual(g[i], w[i]) {
				t.Fatalf("stream %s entry %d: %+v, want %+v", k, i, g[i], w[i])
			}
		}
	}
}

// TestSelectSpillsCorrupt checks that a spilling select handles corrupt
// blocks as the fast path does: a block corrupt at its first read is
// skipped and counted, and a block whose bytes go bad between two of its
// windows is skipped from there on and counted, the iteration going on.
func TestSelectSpillsCorrupt(t *testing.T) {
	const streams, perStream = 40, 1500
	sel := []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}
	for _, tc := range []struct {
		name  string
		dir   Direction
		later bool // damage the block after its first window is read
	}{
		{name: "corrupt at first read, forward", dir: Forward},
		{name: "corrupt at first read, backward", dir: Backward},
		{name: "corrupt between windows, forward", dir: Forward, later: true},
		{name: "corrupt between windows, backward", dir: Backward, later: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir, fast, _ := spillTestStore(t, streams, perStream)
			p := SelectParams{Matchers: sel, Start: day0, End: day0 + nsPerDay, Direction: tc.dir, Lines: true, MaxDecodedBytes: -1}
			want := map[string][]Entry{}
			if _, _, err := mergeAll(t, selectOrFail(t, s, p), tc.dir, want); err != nil {
				t.Fatal(err)
			}
			s.mu.RLock()
			victimLabels := labels.FromStrings("job", "x", "file", "f007.log")
			var victim *blockRef
			for _, st := range s.m.streams {
				if labels.Compare(st.lbls, victimLabels) == 0 {
					victim = st.blocks[0]
				}
			}
			s.mu.RUnlock()
			damage := func() {
				flipByte(t, segPath(dir, victim.seg), victim.off+victim.h.linesOff()+10)
			}
			var c StatsCollector
			ctx := WithStats(context.Background(), &c)
			p.MaxDecodedBytes = fast / 5
			if !tc.later {
				damage()
			}
			its, err := s.Select(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			var first []Entry // the victim's first batch, read before the damage
			if tc.later {
				for _, it := range its {
					if labels.Compare(it.Labels(), victimLabels) == 0 {
						if !it.Next() {
							t.Fatalf("victim stream read nothing: %v", it.Err())
						}
						first = appendBatch(nil, it.At())
						if len(it.(*streamIter).stalled) == 0 && len(it.(*streamIter).srcs) == 0 {
							t.Fatal("victim stream read its whole block at once")
						}
					}
				}
				damage()
			}
			got := map[string][]Entry{}
			if err := readConcurrently(its, got); err != nil {
				t.Fatal(err)
			}
			if st := c.Snapshot(); st.BlocksCorrupt != 1 {
				t.Fatalf("%d corrupt blocks counted, want 1", st.BlocksCorrupt)
			}
			k := victimLabels.String()
			wantVictim := want[k]
			if tc.later {
				// The first window, handed out before the damage; the rest
				// of the block is skipped.
				got[k] = append(first, got[k]...)
				if len(got[k]) == 0 || len(got[k]) >= len(wantVictim) {
					t.Fatalf("victim stream: %d entries of %d", len(got[k]), len(wantVictim))
				}
				wantVictim = wantVictim[:len(got[k])]
			} else {
				wantVictim = nil
			}
			want[k] = wantVictim
			sameEntries(t, got, want)
			if _, err := os.Stat(segPath(dir, victim.seg)); err != nil {
				t.Fatalf("the segment of a corrupt block is gone: %v", err)
			}
		})
	}
}
