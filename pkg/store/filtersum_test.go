package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// randomLines makes log-like lines with hex ids, numbers and words, so the
// filters built from them have realistic and varied fill.
func randomLines(rng *rand.Rand, n int) []string {
	words := []string{"GET", "/api/v1/tts", "level=info", "msg=\"synthesis done\"", "CUDA", "latency_ms=", "trace_id=", "ERROR", "user", "retry"}
	var out []string
	for i := 0; i < n; i++ {
		var sb strings.Builder
		for j := 0; j < 3+rng.IntN(6); j++ {
			switch rng.IntN(3) {
			case 0:
				fmt.Fprintf(&sb, "%016x ", rng.Uint64())
			case 1:
				fmt.Fprintf(&sb, "%d ", rng.IntN(100000))
			default:
				sb.WriteString(words[rng.IntN(len(words))] + " ")
			}
		}
		out = append(out, sb.String())
	}
	return out
}

// TestSummaryIsTheSmallerFilter checks that a summary is exactly the filter
// the block's trigrams would have built at the summary's size (so it rules
// out nothing the trigrams do not), that it honours the fill bound when it
// folded past the first fold, and that it never rules out a substring of a
// line of the block.
func TestSummaryIsTheSmallerFilter(t *testing.T) {
	cases := []struct {
		name  string
		lines int
		log2  int // > 0: a filter of 2^log2 bits built from the lines' trigrams, sparser than the builder makes
	}{
		{"tiny filter kept as is", 3, 0},
		{"small", 60, 0},
		{"medium", 600, 0},
		{"large", 6000, 0},
		{"very large", 40000, 0},
		{"sparse, folds further", 30, 18},
		{"sparse at the smallest summary", 2, 13},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			lines := randomLines(rng, tc.lines)
			es := make([]Entry, len(lines))
			trigrams := map[uint32]bool{}
			for i, l := range lines {
				es[i] = Entry{Line: l}
				for j := 0; j+trigramLen <= len(l); j++ {
					trigrams[uint32(lowerASCII[l[j]])<<16|uint32(lowerASCII[l[j+1]])<<8|uint32(lowerASCII[l[j+2]])] = true
				}
			}
			f, err := parseFilter(newFilterBuilder().build(nil, es))
			if err != nil {
				t.Fatal(err)
			}
			if tc.log2 > 0 {
				f = tokenFilter{log2: tc.log2, bm: make([]byte, (1<<tc.log2)/8)}
				for tg := range trigrams {
					h := trigramSlot(tg, tc.log2)
					f.bm[h>>3] |= 1 << (h & 7)
				}
			}
			sum, ok := f.summarize()
			if !ok {
				if f.log2-summaryFirstFold >= minFilterLog2 && f.log2 < maxFilterLog2 {
					t.Fatalf("filter of 2^%d bits not summarized", f.log2)
				}
				sum = f
			}
			want := make([]byte, len(sum.bm))
			for tg := range trigrams {
				h := trigramSlot(tg, sum.log2)
				want[h>>3] |= 1 << (h & 7)
			}
			if string(want) != string(sum.bm) {
				t.Fatalf("summary of 2^%d bits (from 2^%d) differs from the filter its trigrams build", sum.log2, f.log2)
			}
			if sum.log2 < f.log2-summaryFirstFold && sum.fill() > maxSummaryFill {
				t.Fatalf("folded to 2^%d bits with fill %.2f", sum.log2, sum.fill())
			}
			for k := 0; k < 2000; k++ {
				l := lines[rng.IntN(len(lines))]
				a := rng.IntN(len(l))
				lit := l[a : a+rng.IntN(len(l)-a+1)]
				if !sum.mayContain(lit) || !sum.mayContain(strings.ToUpper(lit)) {
					t.Fatalf("summary rules out %q, a substring of %q", lit, l)
				}
			}
			t.Logf("filter 2^%d bits fill %.2f -> summary 2^%d bits fill %.2f", f.log2, f.fill(), sum.log2, sum.fill())
		})
	}
}

// writeNeedleDays writes 12 days of random lines to stream {job="x"} of s,
// one commit a day, some with a needle, and returns what it wrote and the
// literals to look for: the needles, absent needles and pieces of lines.
func writeNeedleDays(t *testing.T, s *Store) (all []Entry, needles []string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 9))
	ls := labels.FromStrings("job", "x")
	for day := 0; day < 12; day++ {
		var es []Entry
		for i, l := range randomLines(rng, 200+rng.IntN(1000)) {
			if rng.IntN(200) == 0 {
				nd := fmt.Sprintf("needle-%016x", rng.Uint64())
				needles = append(needles, nd)
				l += nd
			}
			es = append(es, Entry{Ts: day0 + int64(day)*nsPerDay + int64(i), Seq: uint64(len(all) + i), Line: l})
		}
		all = append(all, es...)
		appendAll(t, s, []streamData{{ls, es}}, nil)
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Absent needles, and literals of every kind of line.
	for i := 0; i < 8; i++ {
		needles = append(needles, fmt.Sprintf("needle-%016x", rng.Uint64()))
	}
	for i := 0; i < 12; i++ {
		l := all[rng.IntN(len(all))].Line
		a := rng.IntN(len(l) - 3)
		needles = append(needles, l[a:a+3+rng.IntN(min(12, len(l)-a-3)+1)])
	}
	return all, needles
}

// checkNeedles queries each literal of needles over the days
// writeNeedleDays wrote and checks the lines found against a brute-force
// scan of all.
func checkNeedles(t *testing.T, r Reader, all []Entry, needles []string, what string) {
	t.Helper()
	for _, nd := range needles {
		want := 0
		for _, e := range all {
			if strings.Contains(e.Line, nd) {
				want++
			}
		}
		p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")},
			Start: day0, End: day0 + 13*nsPerDay, Lines: true, Direction: Backward,
			Hint: &LineFilterHint{Groups: [][]string{{nd}}}}
		var c StatsCollector
		if got := drainMatching(t, r, WithStats(context.Background(), &c), p, nd, 0); got != want {
			t.Fatalf("%s: %q found %d times, written %d times", what, nd, got, want)
		}
		if st := c.Snapshot(); st.BlocksTotal < 12 || st.BlocksCorrupt != 0 {
			t.Fatalf("%s: stats %+v", what, st)
		}
	}
}

// TestSummariesNeverSkipAMatch runs needle queries over a store of many
// blocks twice (the first builds the summaries, the second relies on them)
// and with no summary budget, and checks every answer against a brute-force
// scan of what was written.
func TestSummariesNeverSkipAMatch(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	defer func() { s.Close() }()
	all, needles := writeNeedleDays(t, s)
	defer summaryBytes.budget.Store(defaultSummaryBudget)
	defer func(n int) { minFilterAhead = n }(minFilterAhead)
	variants := []struct {
		name   string
		budget int64
		ahead  int // minFilterAhead: 1 has a second goroutine read filters ahead
	}{
		{"summaries", defaultSummaryBudget, 1 << 30},
		{"summaries read ahead", defaultSummaryBudget, 1},
		{"no summaries", 0, 1},
	}
	for _, v := range variants {
		// A fresh store: blocks without summaries.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openTest(t, dir)
		summaryBytes.budget.Store(v.budget)
		minFilterAhead = v.ahead
		budget := v.name
		for round := 0; round < 2; round++ {
			checkNeedles(t, s, all, needles, fmt.Sprintf("%s, round %d", budget, round))
		}
		s.mu.RLock()
		for _, b := range s.m.blocks {
			if has := b.filterSum.Load() != nil; has != (v.budget > 0) {
				t.Errorf("%s: block at %d of segment %d has a summary: %v", v.name, b.off, b.seg.id, has)
			}
		}
		s.mu.RUnlock()
	}
	// Iterators closed before reading anything stop the reader ahead.
	minFilterAhead = 1
	summaryBytes.budget.Store(defaultSummaryBudget)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	removeFilterSums(dir) // blocks without summaries
	s = openTest(t, dir)
	its, err := s.Select(context.Background(), SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")},
		Start: day0, End: day0 + 13*nsPerDay, Lines: true, Hint: &LineFilterHint{Groups: [][]string{{"needle-x"}}}})
	if err != nil || len(its) != 1 {
		t.Fatalf("select: %d iterators, %v", len(its), err)
	}
	fa := its[0].(*streamIter).ahead
	if fa == nil {
		t.Fatal("no reader ahead for a select of 12 blocks with minFilterAhead 1")
	}
	its[0].Close()
	its[0].Close()
	if n := fa.open.Load(); n != 0 {
		t.Fatalf("reader ahead counts %d open iterators after Close", n)
	}
}

// TestSummaryBudget checks that summaries stop at the budget and that a
// block without one is still answered from its filter.
func TestSummaryBudget(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var es []Entry
	for _, l := range randomLines(rng, 2000) {
		es = append(es, Entry{Line: l})
	}
	f, err := parseFilter(newFilterBuilder().build(nil, es))
	if err != nil {
		t.Fatal(err)
	}
	sum, ok := f.summarize()
	if !ok {
		t.Fatalf("filter of 2^%d bits not summarized", f.log2)
	}
	size := int64(len(sum.bm)) + summaryOverhead
	defer summaryBytes.budget.Store(defaultSummaryBudget)
	cases := []struct {
		name string
		room int64 // budget left before the first keepSummary
		kept int
	}{
		{"no room", 0, 0},
		{"room for one", size, 1},
		{"room for all", 3 * size, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			summaryBytes.budget.Store(summaryBytes.used.Load() + tc.room)
			blocks := []*blockRef{{}, {}, {}}
			kept := 0
			for _, b := range blocks {
				keepSummary(b, f)
				keepSummary(b, f) // a second summary of the same block is not counted
				if b.filterSum.Load() != nil {
					kept++
				}
			}
			if kept != tc.kept {
				t.Fatalf("kept %d summaries, want %d", kept, tc.kept)
			}
			if used := summaryBytes.used.Load(); used > summaryBytes.budget.Load() {
				t.Fatalf("summaries hold %d bytes, budget %d", used, summaryBytes.budget.Load())
			}
		})
	}
}

// TestCorruptFilterGetsNoSummary checks that a block whose filter fails its
// checksum is reported and skipped as before, on every query, and that no
// summary is made of it.
func TestCorruptFilterGetsNoSummary(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ls := labels.FromStrings("job", "x")
	rng := rand.New(rand.NewPCG(1, 2))
	for day := 0; day < 2; day++ {
		var es []Entry
		for i, l := range randomLines(rng, 500) {
			es = append(es, Entry{Ts: day0 + int64(day)*nsPerDay + int64(i), Seq: uint64(day*1000 + i), Line: l + " needle-1"})
		}
		appendAll(t, s, []streamData{{ls, es}}, nil)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	s.mu.RLock()
	var victim *blockRef
	for _, b := range s.m.blocks {
		if b.h.MinTs < day0+nsPerDay {
			victim = b
		}
	}
	path, off := segPath(dir, victim.seg), victim.off+victim.h.filterOff()+5
	s.mu.RUnlock()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0x10
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		var c StatsCollector
		p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")},
			Start: day0, End: day0 + 2*nsPerDay, Lines: true, Hint: &LineFilterHint{Groups: [][]string{{"needle-1"}}}}
		if got := drainMatching(t, s, WithStats(context.Background(), &c), p, "needle-1", 0); got != 500 {
			t.Fatalf("round %d: %d lines of the intact block, want 500", round, got)
		}
		if st := c.Snapshot(); st.BlocksCorrupt != 1 || st.BlocksRead != 1 {
			t.Fatalf("round %d: stats %+v", round, st)
		}
	}
	if victim.filterSum.Load() != nil {
		t.Fatal("a corrupt filter was summarized")
	}
	if in := s.Info(); in.CorruptBlocks != 1 || !strings.Contains(in.LastError, "filter") {
		t.Fatalf("info %+v", in)
	}
	// The day's summary file, built after the first query, covers the
	// block without a summary: a process that loads it reads the filter
	// and reports it too.
	s.sums.builds.Wait()
	raw, err := os.ReadFile(filterSumPath(dir, victim.seg.day))
	if err != nil {
		t.Fatal(err)
	}
	ents, err := parseFilterSums(raw, victim.seg.day)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ents, func(e sumEntry) bool { return e.seg == victim.seg.id && e.off == victim.off })
	if i < 0 || ents[i].log2 != filterSumNone {
		t.Fatalf("the damaged block's entry: %d of %+v", i, ents)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir)
	defer s2.Close()
	var c StatsCollector
	p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")},
		Start: day0, End: day0 + 2*nsPerDay, Lines: true, Hint: &LineFilterHint{Groups: [][]string{{"needle-1"}}}}
	if got := drainMatching(t, s2, WithStats(context.Background(), &c), p, "needle-1", 0); got != 500 {
		t.Fatalf("with the summary files: %d lines of the intact block, want 500", got)
	}
	if st := c.Snapshot(); st.BlocksCorrupt != 1 || st.BlocksRead != 1 {
		t.Fatalf("with the summary files: stats %+v", st)
	}
}

// TestFiltersPrunedBeforeSpilling checks that a select whose blocks would
// not fit its decoded bound checks its line filter first, on blocks without
// summaries, and plans for the blocks left: a needle query then holds whole
// blocks instead of decoding windows of them again and again.
func TestFiltersPrunedBeforeSpilling(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	defer func() { s.Close() }()
	rng := rand.New(rand.NewPCG(8, 8))
	var data []streamData
	for j := 0; j < 4; j++ {
		sd := streamData{lbls: labels.FromStrings("job", "x", "n", fmt.Sprint(j))}
		for i, l := range randomLines(rng, 3000) {
			if j == 2 && i == 1700 {
				l += " needle-abcdef0123"
			}
			sd.entries = append(sd.entries, Entry{Ts: day0 + int64(i)*int64(nsPerDay/3000), Seq: uint64(i), Line: l})
		}
		data = append(data, sd)
	}
	appendAll(t, s, data, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "x")},
		Start: day0, End: day0 + nsPerDay, Lines: true, Direction: Backward}
	s = openTest(t, dir)
	its, err := s.Select(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	perStream, _, _ := selectCosts(its, true)
	for _, it := range its {
		it.Close()
	}
	p.MaxDecodedBytes = perStream - 1 // all streams' largest blocks do not fit
	cases := []struct {
		name  string
		lit   string
		found int
		spill bool
	}{
		{"needle, filters read at select", "needle-abcdef0123", 1, false},
		{"needle, summaries", "needle-abcdef0123", 1, false},
		{"common literal still spills", "level=info", -1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.Hint = &LineFilterHint{Groups: [][]string{{tc.lit}}}
			var c StatsCollector
			ctx := WithStats(context.Background(), &c)
			its, err := s.Select(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(its) > 0 && its[0].(*streamIter).dec.spilling() != tc.spill {
				t.Fatalf("spilling %v, want %v", !tc.spill, tc.spill)
			}
			for _, it := range its {
				it.Close()
			}
			want := tc.found
			if want < 0 {
				want = 0
				for _, sd := range data {
					for _, e := range sd.entries {
						if strings.Contains(e.Line, tc.lit) {
							want++
						}
					}
				}
			}
			if got := drainMatching(t, s, ctx, p, tc.lit, 0); got != want {
				t.Fatalf("found %d, want %d", got, want)
			}
			if st := c.Snapshot(); !tc.spill && (st.BlocksRedecoded != 0 || st.BlocksRead != 1) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}
