package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// overlappingStore has one stream, {job="x"}, in three overlapping blocks
// (coarse times, so equal Ts with different Seq are common) and a head; a
// few lines of the second block say "needle"; every third entry carries
// structured metadata.
func overlappingStore(t *testing.T) (*Store, []Entry, []*labels.Matcher) {
	t.Helper()
	s := openTest(t, t.TempDir())
	t.Cleanup(func() { s.Close() })
	rng := rand.New(rand.NewPCG(3, 3))
	ls := labels.FromStrings("job", "x")
	var all []Entry
	seq := uint64(0)
	for round := 0; round < 4; round++ {
		n := 7000
		if round == 3 {
			n = 300 // stays in the head
		}
		var es []Entry
		for i := 0; i < n; i++ {
			seq++
			word := "plain"
			if round == 1 && i%1000 == 0 {
				word = "needle"
			}
			es = append(es, Entry{Ts: day0 + rng.Int64N(2000)*int64(time.Second), Seq: seq, Line: fmt.Sprintf("%05d %s %s", seq, word, strings.Repeat("o", 90+rng.IntN(20)))})
		}
		es = withMetadata(streamData{ls, es}).entries
		all = append(all, es...)
		appendAll(t, s, []streamData{{ls, es}}, nil)
		if round < 3 {
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if in := s.Info(); in.Blocks < 3 {
		t.Fatalf("only %d blocks; the test needs several", in.Blocks)
	}
	return s, all, []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")}
}

// drainBlock reads an iterator to its end and closes it.
func drainBlock(t *testing.T, it StreamIterator) []Entry {
	t.Helper()
	var out []Entry
	for it.Next() {
		b := it.At()
		for i := range b.Ts {
			e := Entry{Ts: b.Ts[i], Seq: b.Seq[i], Line: b.Lines[i]}
			if b.Metadata != nil {
				e.Metadata = b.Metadata[i]
			}
			out = append(out, e)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSelectBlocks(t *testing.T) {
	s, all, m := overlappingStore(t)
	sec := int64(time.Second)
	for _, p := range []SelectParams{
		{Matchers: m, Start: day0, End: day0 + 3000*sec, Lines: true},
		{Matchers: m, Start: day0 + 500*sec, End: day0 + 1500*sec, Lines: true, Direction: Backward},
		{Matchers: m, Start: day0 + 100*sec, End: day0 + 101*sec, Lines: true},
	} {
		bss, err := s.SelectBlocks(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if len(bss) != 1 {
			t.Fatalf("%d streams, want 1", len(bss))
		}
		var got []Entry
		seen := map[BlockID]bool{}
		for _, b := range bss[0].Blocks {
			if seen[b.ID] {
				t.Errorf("block %s handed out twice", b.ID)
			}
			seen[b.ID] = true
			if !s.BlockLive(b.ID) {
				t.Errorf("block %s not live", b.ID)
			}
			es := drainBlock(t, b.Iter)
			if len(es) != b.Entries {
				t.Errorf("block %s: read %d entries, its header says %d (a block's iterator reads all of it)", b.ID, len(es), b.Entries)
			}
			for _, e := range es {
				if e.Ts < b.MinTs || e.Ts > b.MaxTs {
					t.Errorf("block %s: entry at %d outside [%d, %d]", b.ID, e.Ts, b.MinTs, b.MaxTs)
				}
				if e.Ts >= p.Start && e.Ts < p.End {
					got = append(got, e)
				}
			}
		}
		if bss[0].Head != nil {
			got = append(got, drainBlock(t, bss[0].Head)...)
		}
		slices.SortStableFunc(got, compareEntries)
		want := expected([]streamData{{labels.FromStrings("job", "x"), all}}, p)[`{job="x"}`]
		slices.SortStableFunc(want, compareEntries)
		if len(got) != len(want) {
			t.Fatalf("blocks and head hold %d entries in range, want %d", len(got), len(want))
		}
		for i := range want {
			if !entryEqual(got[i], want[i]) {
				t.Fatalf("entry %d: got %+v, want %+v", i, got[i], want[i])
			}
		}
	}
}

// Compaction replaces every block: the old ids stop being live and the
// epoch moves.
func TestBlockLiveAfterCompaction(t *testing.T) {
	s, _, m := overlappingStore(t)
	p := SelectParams{Matchers: m, Start: day0, End: day0 + 3000*int64(time.Second), Lines: true}
	bss, err := s.SelectBlocks(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	var old []BlockID
	for _, b := range bss[0].Blocks {
		old = append(old, b.ID)
		b.Iter.Close()
	}
	if bss[0].Head != nil {
		bss[0].Head.Close()
	}
	epoch := s.BlocksEpoch()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.BlocksEpoch() == epoch {
		t.Error("the epoch did not move when compaction replaced the blocks")
	}
	for _, id := range old {
		if s.BlockLive(id) {
			t.Errorf("block %s still live after compaction rewrote the stream", id)
		}
	}
}

// memoFilter wants lines containing want and skips the blocks in skip.
type memoFilter struct {
	mu     sync.Mutex
	want   string
	skip   map[BlockID]bool
	asked  map[BlockID]bool
	wanted map[BlockID]bool
}

func (f *memoFilter) Skip(id BlockID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.skip[id]
}

func (f *memoFilter) AnyWanted(id BlockID, lines []string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked[id] = true
	for _, l := range lines {
		if strings.Contains(l, f.want) {
			f.wanted[id] = true
			return true
		}
	}
	return false
}

func TestBlockFilter(t *testing.T) {
	s, all, m := overlappingStore(t)
	p := SelectParams{Matchers: m, Start: day0, End: day0 + 3000*int64(time.Second), Lines: true}
	f := &memoFilter{want: "needle", skip: map[BlockID]bool{}, asked: map[BlockID]bool{}, wanted: map[BlockID]bool{}}
	ctx := WithBlockFilter(context.Background(), f)
	count := func() (needles, total int) {
		its, err := s.Select(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range its {
			for _, e := range drainBlock(t, it) {
				total++
				if strings.Contains(e.Line, "needle") {
					needles++
				}
			}
		}
		return needles, total
	}
	wantNeedles := 0
	for _, e := range all {
		if strings.Contains(e.Line, "needle") {
			wantNeedles++
		}
	}
	needles, total := count()
	if needles != wantNeedles {
		t.Fatalf("%d needles, want %d", needles, wantNeedles)
	}
	if len(f.asked) < 3 || len(f.wanted) == 0 || len(f.wanted) == len(f.asked) {
		t.Fatalf("filter asked about %d blocks, wanted %d: the test needs blocks with and without needles", len(f.asked), len(f.wanted))
	}
	if total >= len(all) {
		t.Errorf("read %d entries of %d: the blocks without a needle were not dropped", total, len(all))
	}
	// Skipping the blocks without a needle keeps every needle and reads
	// none of them again.
	for id := range f.asked {
		if !f.wanted[id] {
			f.skip[id] = true
		}
	}
	f.asked = map[BlockID]bool{}
	if n, _ := count(); n != wantNeedles {
		t.Fatalf("with skips: %d needles, want %d", n, wantNeedles)
	}
	for id := range f.asked {
		if f.skip[id] {
			t.Errorf("skipped block %s was read", id)
		}
	}
}
