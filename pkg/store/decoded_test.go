package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// decodedTestStore writes streams of several blocks each (every stream
// interleaved in time with the others, as files written at once are) and
// returns the store with, per stream, the largest decoded cost of one of
// its blocks with lines and without.
func decodedTestStore(t *testing.T, streams, linesPerStream int) (s *Store, maxLines, maxTimes int64) {
	t.Helper()
	s = openTest(t, t.TempDir())
	t.Cleanup(func() { s.Close() })
	var data []streamData
	for i := 0; i < streams; i++ {
		es := synthEntries(synthLines(linesPerStream, uint64(i+1)), day0+int64(i))
		data = append(data, streamData{labels.FromStrings("job", "x", "file", fmt.Sprintf("f%02d.log", i)), es})
	}
	appendAll(t, s, data, nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, st := range s.m.streams {
		if len(st.blocks) < 2 {
			t.Fatalf("stream %s has %d blocks; the test needs several per stream", st.lbls, len(st.blocks))
		}
		var ml, mt int64
		for _, b := range st.blocks {
			ml, mt = max(ml, blockCost(b, true)), max(mt, blockCost(b, false))
		}
		maxLines += ml
		maxTimes += mt
	}
	return s, maxLines, maxTimes
}

// mergeAll reads every iterator the way the engine's k-way merge does: it
// always advances the stream whose batch ends first in the direction, so
// every stream holds a decoded block at once. It returns the entries read
// and the select's peak of decoded bytes, by its own accounting; with got
// not nil, it also collects each stream's entries there, by labels.
func mergeAll(t *testing.T, its []StreamIterator, dir Direction, got map[string][]Entry) (n int, peak int64, err error) {
	t.Helper()
	if len(its) == 0 {
		t.Fatal("no streams selected")
	}
	dec := its[0].(*streamIter).dec
	defer func() {
		for _, it := range its {
			it.Close()
		}
		if left := dec.n.Load(); left != 0 {
			t.Errorf("%d decoded bytes still counted after every iterator closed", left)
		}
	}()
	live := make([]StreamIterator, 0, len(its))
	for _, it := range its {
		if it.Next() {
			live = append(live, it)
		} else if it.Err() != nil {
			return n, dec.peak.Load(), it.Err()
		}
	}
	last := func(it StreamIterator) int64 { ts := it.At().Ts; return ts[len(ts)-1] }
	collect := func(it StreamIterator) {
		if got == nil {
			return
		}
		k := it.Labels().String()
		got[k] = appendBatch(got[k], it.At())
	}
	for len(live) > 0 {
		bi := 0
		for i, it := range live {
			if (dir == Forward && last(it) < last(live[bi])) || (dir == Backward && last(it) > last(live[bi])) {
				bi = i
			}
		}
		it := live[bi]
		n += len(it.At().Ts)
		collect(it)
		if !it.Next() {
			if err := it.Err(); err != nil {
				return n, dec.peak.Load(), err
			}
			live = append(live[:bi], live[bi+1:]...)
		}
	}
	return n, dec.peak.Load(), nil
}

// TestDecodedBytesBounded checks that a select merging many streams holds
// one decoded block per stream at most, by the store's own accounting,
// that a bound below that is kept by reading windows of the blocks, and
// that a bound below one block fails the select with ErrDecodedLimit and a
// message naming the numbers, before the block is decoded.
func TestDecodedBytesBounded(t *testing.T) {
	const streams, perStream = 6, 25000
	s, oneBlockEach, timesEach := decodedTestStore(t, streams, perStream)
	sel := []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}
	for _, tc := range []struct {
		name    string
		dir     Direction
		lines   bool
		max     int64
		wantErr string // empty: the whole store is read
	}{
		{name: "forward, bound of one block per stream", dir: Forward, lines: true, max: oneBlockEach},
		{name: "backward, bound of one block per stream", dir: Backward, lines: true, max: oneBlockEach},
		{name: "times only, bound of one block of times per stream", dir: Forward, max: timesEach},
		{name: "no bound", dir: Backward, lines: true, max: -1},
		{name: "default bound", dir: Forward, lines: true},
		{name: "bound of half the streams' blocks: windows", dir: Forward, lines: true, max: oneBlockEach / 2},
		{name: "bound below one block", dir: Backward, lines: true, max: 1 << 10,
			wantErr: fmt.Sprintf("over %d streams, limit: 1 MiB)", streams)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			its, err := s.Select(context.Background(), SelectParams{Matchers: sel, Start: day0, End: day0 + nsPerDay,
				Direction: tc.dir, Lines: tc.lines, MaxDecodedBytes: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			n, peak, err := mergeAll(t, its, tc.dir, nil)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrDecodedLimit) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrDecodedLimit with %q", err, tc.wantErr)
				}
				if peak > tc.max {
					t.Fatalf("peak %d decoded bytes past the bound %d", peak, tc.max)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != streams*perStream {
				t.Fatalf("read %d entries, want %d", n, streams*perStream)
			}
			bound := oneBlockEach
			if !tc.lines {
				bound = timesEach
			}
			if tc.max > 0 {
				bound = min(bound, tc.max)
			}
			if peak <= 0 || peak > bound {
				t.Fatalf("peak %d decoded bytes, want 1..%d (one block per stream)", peak, bound)
			}
		})
	}
}
