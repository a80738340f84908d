package engine

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

func TestLineScanEach(t *testing.T) {
	for _, tc := range []struct {
		name    string
		filters []string // the literals of `|=` filters
		lines   []string
	}{
		{"one literal", []string{"oom"}, []string{"a oom", "b", "oomoom", "", "c oo", "m d", "oom"}},
		{"hit across a line boundary", []string{"ab"}, []string{"xa", "by", "a", "b", "ab"}},
		{"several literals, longest searched", []string{"a", "bcd"}, []string{"bcd", "a bcd", "bcd a", "abc", "bcda"}},
		{"empty literal keeps every line", []string{""}, []string{"x", "", "y"}},
		{"no lines", []string{"x"}, nil},
		{"empty lines only", []string{"x"}, []string{"", "", ""}},
		{"the literal is a whole line", []string{"xy"}, []string{"xy", "xy", "x", "y", "xy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newLineScan(tc.filters, false)
			var text []byte
			var sizes []uint32
			for _, l := range tc.lines {
				text = append(text, l...)
				sizes = append(sizes, uint32(len(l)))
			}
			var want, got []int
			for i, l := range tc.lines {
				keep := true
				for _, f := range tc.filters {
					keep = keep && strings.Contains(l, f)
				}
				if keep {
					want = append(want, i)
				}
			}
			s.each(text, sizes, nil, func(i, start, end int) {
				if !bytes.Equal(text[start:end], []byte(tc.lines[i])) {
					t.Errorf("line %d given as %q, is %q", i, text[start:end], tc.lines[i])
				}
				got = append(got, i)
			})
			if !slices.Equal(got, want) {
				t.Errorf("lines %v, want %v", got, want)
			}
		})
	}
}

func TestLineScanFor(t *testing.T) {
	for _, tc := range []struct {
		query string
		scans bool
	}{
		{`count_over_time({a="b"} |= "x" [5m])`, true},
		{`bytes_over_time({a="b"} |= "x" |= "yz" [5m])`, true},
		{`rate({a="b"} |= "" [5m])`, true},
		{`count_over_time({a="b"} [5m])`, false}, // no lines read at all
		{`count_over_time({a="b"} != "x" [5m])`, false},
		{`count_over_time({a="b"} |~ "x" [5m])`, false},
		{`count_over_time({a="b"} |= "x" or "y" [5m])`, false},
		{`count_over_time({a="b"} |= ip("1.2.3.4") [5m])`, false},
		{`count_over_time({a="b"} |= "x" | logfmt [5m])`, false},
		{`count_over_time({a="b"} |= "x" | level="error" [5m])`, false},
	} {
		t.Run(tc.query, func(t *testing.T) {
			e, err := syntax.ParseExpr(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			x := e.(*syntax.RangeAggregationExpr)
			sel, err := New(nil, Options{}).compileSelector(x.Left.Left)
			if err != nil {
				t.Fatal(err)
			}
			ex, err := sampleExtractor(x, sel.pipeline)
			if err != nil {
				t.Fatal(err)
			}
			if got := lineScanFor(x, ex) != nil; got != tc.scans {
				t.Errorf("scans %v, want %v", got, tc.scans)
			}
		})
	}
}

// Counts over a bare selector fold each block from its time column alone
// (timesPart: each bucket a run of the block's ascending times) and must
// answer as the streamed evaluation does, for lines and bytes, on any step,
// range and offset, with buckets and windows that cut blocks anywhere.
func TestTimesPartSameAnswers(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{CompactAfterIdle: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	seq := uint64(0)
	for flush := 0; flush < 5; flush++ {
		var b store.AppendBatch
		for si, level := range []string{"info", "error"} {
			var es []store.Entry
			for i := 0; i < 300; i++ {
				n := int64(flush*300 + i)
				// Runs of equal times, whole minutes (window edges) and
				// gaps: 2 s apart, every 9th on the one before it.
				ts := n*2*int64(time.Second) + int64(si)
				if n%9 == 0 {
					ts -= 2 * int64(time.Second)
				}
				if n%50 == 0 {
					ts = n / 30 * int64(time.Minute)
				}
				seq++
				line := fmt.Sprintf("level=%s n=%d %s", level, n, strings.Repeat("y", int(n%17)))
				if n%2 == 0 { // elided from the stored line: sizes must put it back
					line = time.Unix(0, ts).UTC().Format(time.RFC3339Nano) + " " + line
				}
				es = append(es, store.Entry{Ts: ts, Seq: seq, Line: line})
			}
			slices.SortFunc(es, func(a, b store.Entry) int { return cmp.Compare(a.Ts, b.Ts) })
			b.Streams = append(b.Streams, store.StreamEntries{Labels: labels.New(labels.Label{Name: "app", Value: "a"}, labels.Label{Name: "level", Value: level}), Entries: es})
		}
		if err := st.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := st.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	min := func(n int) time.Time { return time.Unix(0, 0).Add(time.Duration(n) * time.Minute).UTC() }
	for _, q := range []struct {
		q          string
		start, end time.Time
		step       time.Duration
	}{
		{`count_over_time({app="a"}[5m])`, min(0), min(55), time.Minute},
		{`sum by (level) (rate({app="a"}[3m]))`, min(1), min(52), 2 * time.Minute},
		{`rate({app="a"}[1m])`, min(0), min(50), 13 * time.Second},
		{`sum(bytes_rate({app="a"}[3m] offset 30s))`, min(1), min(50), 50 * time.Second},
		{`bytes_over_time({app="a"}[7m])`, min(3), min(55), 3 * time.Minute},
		{`sum(count_over_time({app="a"}[1h]))`, min(60), min(60), 0},
		{`sum(bytes_over_time({app="a"}[17m]))`, min(33), min(33), 0},
	} {
		t.Run(q.q, func(t *testing.T) {
			p := Params{Query: q.q, Start: q.start, End: q.end, Step: q.step, Instant: q.step == 0}
			want := mustQuery(t, New(st, Options{BlockCacheBytes: -1}), p)
			got := mustQuery(t, New(st, Options{}), p)
			if len(render(want)) == 0 {
				t.Fatal("no answer: the comparison is vacuous")
			}
			if g, w := render(got), render(want); fmt.Sprint(g) != fmt.Sprint(w) {
				t.Fatalf("folded from the time columns:\n got %v\nwant %v", g, w)
			}
			if got.Stats.Cache.Misses == 0 {
				t.Errorf("cache %+v: the blocks were not folded", got.Stats.Cache)
			}
		})
	}
}

// scanBlocks runs s over every block of st's one stream, through the
// rebuilt lines (ScanLines) or the stored text (ScanStored), and returns
// the lines each counts, as block:line.
func scanBlocks(t *testing.T, st *store.Store, s *lineScan, stored bool) []string {
	t.Helper()
	bss, err := st.SelectBlocks(context.Background(), store.SelectParams{Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "app", "r")},
		Start: 0, End: 1 << 62, Lines: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, bs := range bss {
		if bs.Head != nil {
			bs.Head.Close()
		}
		for k := range bs.Blocks {
			b := &bs.Blocks[k]
			var ok bool
			if stored {
				ok, err = b.ScanStored(func(sl *store.StoredLines) error {
					s.each(sl.Text, sl.Sizes, sl.Cuts, func(i, _, _ int) { got = append(got, fmt.Sprintf("%d:%d", k, i)) })
					return nil
				})
			} else {
				ok, err = b.ScanLines(func(bl *store.BlockLines) error {
					s.each(bl.Text, bl.Sizes, nil, func(i, _, _ int) { got = append(got, fmt.Sprintf("%d:%d", k, i)) })
					return nil
				})
			}
			b.Iter.Close()
			if err != nil || !ok {
				t.Fatalf("block %d: scanned %v, %v", k, ok, err)
			}
		}
	}
	return got
}

// A scan whose literals store.StoredMatchExact accepts counts the same
// lines in the stored text (digits and timestamps left out) as in the
// rebuilt lines: random lines with their timestamps and digits anywhere,
// random literals and pairs of them.
func TestLineScanStoredSameLines(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{CompactAfterIdle: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	words := []string{"error", "err", "or", "Z", "T", "-", ":", ".", " ", "x", "level=", "12", "7", "2026", "CUDA out of memory", "\x00", "Terror"}
	layouts := []string{time.RFC3339Nano, "2006-01-02 15:04:05.000", "2006-01-02T15:04:05.000000Z", "2006-01-02 15:04:05,000", "2006-01-02T15:04:05"}
	var lines []string
	for flush := range 4 {
		var es []store.Entry
		for i := range 700 {
			ts := int64(flush*700+i)*int64(time.Second)*3 + r.Int64N(1e9)
			var sb strings.Builder
			for range r.IntN(10) {
				sb.WriteString(words[r.IntN(len(words))])
			}
			line := sb.String()
			if r.IntN(4) != 0 {
				at := r.IntN(len(line) + 1)
				line = line[:at] + time.Unix(0, ts).UTC().Format(layouts[r.IntN(len(layouts))]) + line[at:]
			}
			lines = append(lines, line)
			es = append(es, store.Entry{Ts: ts, Seq: uint64(len(lines)), Line: line})
		}
		if err := st.Append(ctx, store.AppendBatch{Streams: []store.StreamEntries{{Labels: labels.FromStrings("app", "r"), Entries: es}}}); err != nil {
			t.Fatal(err)
		}
		if err := st.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	filters := [][]string{{"error"}, {"or"}, {"r e"}, {"err", "x"}, {"Terror", "or"}, {":x"}, {"x-"}, {" T"}, {"CUDA out of memory"}, {"error", ""}}
	for range 60 {
		l := lines[r.IntN(len(lines))]
		a := r.IntN(len(l) + 1)
		filters = append(filters, []string{l[a:min(len(l), a+1+r.IntN(6))]})
	}
	stored := 0
	for _, f := range filters {
		s := newLineScan(f, false)
		if !s.stored {
			continue
		}
		stored++
		want := scanBlocks(t, st, s, false)
		if got := scanBlocks(t, st, s, true); !slices.Equal(got, want) {
			t.Fatalf("filters %q: stored text counts %d lines, rebuilt lines %d", f, len(got), len(want))
		}
	}
	if stored < 20 {
		t.Fatalf("only %d of the filters search the stored text: the test checks too little", stored)
	}
}
