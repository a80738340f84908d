package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

// testStore has n streams of perStream entries one second apart from t=0.
func testStore(t testing.TB, n, perStream int) *memstore.Store {
	t.Helper()
	st := memstore.New()
	for s := 0; s < n; s++ {
		ls := labels.FromStrings("app", "a", "pod", fmt.Sprintf("p%d", s))
		es := make([]store.Entry, perStream)
		for i := range es {
			es[i] = store.Entry{Ts: int64(time.Duration(i) * time.Second), Seq: uint64(i), Line: fmt.Sprintf("pod=p%d n=%d msg=hello", s, i)}
		}
		if err := st.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{Labels: ls, Entries: es}}}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func at(d time.Duration) time.Time { return time.Unix(0, int64(d)).UTC() }

func TestSelectParams(t *testing.T) {
	tests := []struct {
		query     string
		wantLines bool
		wantHint  string
	}{
		{`count_over_time({app="a"}[1m])`, false, "[]"},
		{`sum by (pod) (rate({app="a"}[1m]))`, false, "[]"},
		{`bytes_over_time({app="a"}[1m])`, false, "[]"},
		{`absent_over_time({app="a"}[1m])`, false, "[]"},
		{`count_over_time({app="a"} |= "hello" [1m])`, true, "[[hello]]"},
		{`count_over_time({app="a"} |~ "timeout|fail" [1m])`, true, "[[timeout fail]]"},
		{`count_over_time({app="a"} |= "x" or "y" |= "z" [1m])`, true, "[[x y] [z]]"},
		{`count_over_time({app="a"} != "x" [1m])`, true, "[]"},
		{`count_over_time({app="a"} | line_format "{{.pod}}" |= "p1" [1m])`, true, "[]"},
		{`count_over_time({app="a"} |= "hello" | logfmt | line_format "x" |= "p1" [1m])`, true, "[[hello]]"},
		{`count_over_time({app="a"} | logfmt [1m])`, true, "[]"},
		{`count_over_time({app="a"} | unpack |= "p1" | __error__="" [1m])`, true, "[]"},
		{`count_over_time({app="a"} |= "n=" | unpack |= "p1" | __error__="" [1m])`, true, "[[n=]]"},
		{`count_over_time({app="a"} | decolorize |= "p1" [1m])`, true, "[]"},
		{`sum_over_time({app="a"} | logfmt | unwrap n [1m])`, true, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			st := testStore(t, 2, 10)
			eng := New(st, Options{})
			_, err := eng.Query(context.Background(), Params{Query: tt.query, Start: at(time.Minute), Instant: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(st.SelectCalls) != 1 {
				t.Fatalf("%d selects, want 1", len(st.SelectCalls))
			}
			p := st.SelectCalls[0]
			if p.Lines != tt.wantLines {
				t.Errorf("Lines = %v, want %v", p.Lines, tt.wantLines)
			}
			var hint [][]string
			if p.Hint != nil {
				hint = p.Hint.Groups
			}
			if got := fmt.Sprint(hint); got != tt.wantHint {
				t.Errorf("hint %s, want %s", got, tt.wantHint)
			}
			// The window (t-1m, t] is asked as [t-1m+1ns, t+1ns).
			if p.Start != int64(time.Nanosecond) || p.End != int64(time.Minute+time.Nanosecond) {
				t.Errorf("select range [%d, %d)", p.Start, p.End)
			}
		})
	}
}

func TestBackwardLimitReadsOnlyNewest(t *testing.T) {
	st := testStore(t, 1, 10000) // memstore blocks hold 64 entries
	eng := New(st, Options{})
	var c store.StatsCollector
	ctx := store.WithStats(context.Background(), &c)
	res, err := eng.Query(ctx, Params{Query: `{app="a"}`, Start: at(0), End: at(3 * time.Hour), Limit: 10, Direction: store.Backward})
	if err != nil {
		t.Fatal(err)
	}
	if !res.LimitReached || len(res.Streams) != 1 || len(res.Streams[0].Entries) != 10 {
		t.Fatalf("got %+v", res)
	}
	if got := res.Streams[0].Entries[0].Ts; got != int64(9999*time.Second) {
		t.Errorf("newest entry at %d", got)
	}
	if res.Stats.Store.BlocksRead > 1 {
		t.Errorf("read %d blocks for 10 entries", res.Stats.Store.BlocksRead)
	}
}

func TestErrors(t *testing.T) {
	st := testStore(t, 5, 10)
	tests := []struct {
		opts  Options
		p     Params
		is    error
		inMsg string
	}{
		{Options{MaxSeries: 3}, Params{Query: `count_over_time({app="a"}[1m])`, Start: at(time.Minute), Instant: true}, ErrTooManySeries, "maximum number of series (3) reached for a single query; consider reducing query cardinality"},
		{Options{MaxEntriesLimit: 10}, Params{Query: `{app="a"}`, Start: at(0), End: at(time.Minute), Limit: 11}, ErrLimit, "(11 > 10)"},
		{Options{}, Params{Query: `{app="a"}`, Start: at(0), Instant: true}, ErrBadQuery, "instant query"},
		{Options{}, Params{Query: `count_over_time({app="a"}[1m])`, Start: at(0), End: at(time.Hour * 24 * 365), Step: time.Second}, ErrBadQuery, "exceeded maximum resolution of 11,000 points"},
		{Options{}, Params{Query: `count_over_time({app="a"}[1m])`, Start: at(time.Hour), End: at(0), Step: time.Second}, ErrBadQuery, "end timestamp must not be before or equal to start time"},
		{Options{}, Params{Query: `{app="a"}`, Start: at(time.Hour), End: at(0)}, ErrBadQuery, "end timestamp must not be before or equal to start time"},
		{Options{}, Params{Query: `sum(count_over_time({app="a"} | logfmt | line_format "{{ .n | div 0 }}" [1m]))`, Start: at(time.Minute), Instant: true}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.p.Query, func(t *testing.T) {
			_, err := New(st, tt.opts).Query(context.Background(), tt.p)
			if tt.is == nil {
				// Template failures are per line (__error__), never a crash.
				if err != nil && !errors.Is(err, ErrPipeline) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("error %q does not contain %q", err, tt.inMsg)
			}
		})
	}
}

func TestParseErrorPassesThrough(t *testing.T) {
	_, err := New(memstore.New(), Options{}).Query(context.Background(), Params{Query: `{app="a"`, Start: at(0), End: at(time.Minute)})
	if err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Fatalf("got %v", err)
	}
}

func TestCancellation(t *testing.T) {
	st := testStore(t, 4, 5000)
	for _, q := range []string{`{app="a"}`, `count_over_time({app="a"} |= "hello" [1m])`, `max_over_time({app="a"} | logfmt | unwrap n [1m])`} {
		t.Run(q, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := New(st, Options{}).Query(ctx, Params{Query: q, Start: at(0), End: at(2 * time.Hour), Step: time.Minute, Limit: 5000})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled", err)
			}
		})
	}
}

// querySequentialAndParallel answers p on one goroutine and on parallelism.
func querySequentialAndParallel(t *testing.T, st store.Reader, p Params, parallelism int) (one, many Result) {
	t.Helper()
	one, err := New(st, Options{Parallelism: 1}).Query(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	many, err = New(st, Options{Parallelism: parallelism}).Query(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return one, many
}

// TestParallelMatchesSequential checks that folding streams on many
// goroutines gives the same answer as one goroutine.
func TestParallelMatchesSequential(t *testing.T) {
	st := testStore(t, 9, 500)
	q := Params{Query: `sum by (pod) (count_over_time({app="a"}[30s])) + on (pod) sum by (pod) (bytes_over_time({app="a"}[30s]))`,
		Start: at(0), End: at(10 * time.Minute), Step: 10 * time.Second}
	one, many := querySequentialAndParallel(t, st, q, 8)
	if fmt.Sprint(one.Matrix) != fmt.Sprint(many.Matrix) {
		t.Errorf("parallel result differs")
	}
	if len(one.Matrix) != 9 {
		t.Errorf("%d series, want 9", len(one.Matrix))
	}
}

func TestDefaultStepAndAlignment(t *testing.T) {
	st := testStore(t, 1, 600)
	res, err := New(st, Options{}).Query(context.Background(), Params{Query: `count_over_time({app="a"}[1m])`, Start: at(0), End: at(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	// 10m/250 rounds down to 2s.
	pts := res.Matrix[0].Points
	if pts[1].T-pts[0].T != 2000 {
		t.Errorf("step %dms, want 2000", pts[1].T-pts[0].T)
	}
	if last := pts[len(pts)-1]; last.T != 600000 || last.V != 59 {
		t.Errorf("last point %+v, want 59 (entries 541s..599s) at 600000", last)
	}
}

func TestInterval(t *testing.T) {
	st := testStore(t, 1, 10)
	res, err := New(st, Options{}).Query(context.Background(), Params{Query: `{app="a"}`, Start: at(0), End: at(time.Minute), Interval: 3 * time.Second, Direction: store.Forward})
	if err != nil {
		t.Fatal(err)
	}
	var ts []int64
	for _, e := range res.Streams[0].Entries {
		ts = append(ts, e.Ts/int64(time.Second))
	}
	if fmt.Sprint(ts) != "[0 3 6 9]" {
		t.Errorf("entries at %v, want [0 3 6 9]", ts)
	}
}

// TestLogQueryFeedsMatchSequential covers long scans, where streams are
// read ahead on their own goroutines: the answer must not change.
func TestLogQueryFeedsMatchSequential(t *testing.T) {
	st := testStore(t, 6, 3000) // ~47 memstore blocks per stream
	for _, dir := range []store.Direction{store.Forward, store.Backward} {
		for _, q := range []string{`{app="a"} |~ "n=[0-9]*7 "`, `{app="a"} | logfmt | n > 2990`, `{app="a"} |= "n=29"`} {
			p := Params{Query: q, Start: at(0), End: at(3 * time.Hour), Limit: 1500, Direction: dir}
			one, many := querySequentialAndParallel(t, st, p, 4)
			if fmt.Sprint(one.Streams) != fmt.Sprint(many.Streams) || one.LimitReached != many.LimitReached {
				t.Errorf("%s %v: read-ahead changes the answer", q, dir)
			}
			if one.Stats.EntriesReturned == 0 {
				t.Errorf("%s: no entries", q)
			}
		}
	}
}

// TestSlidingWindows checks the window buffer of quantile_over_time and
// rate_counter against values worked out by hand: stream pN has n=i at i
// seconds, so the window (t-30s, t] holds n = t-29 … t.
func TestSlidingWindows(t *testing.T) {
	st := testStore(t, 2, 200)
	eng := New(st, Options{})
	for _, tt := range []struct {
		query string
		want  func(t float64) float64
	}{
		{`quantile_over_time(0.5, {app="a"} | logfmt n | unwrap n [30s])`, func(t float64) float64 { return t - 14.5 }},
		{`quantile_over_time(0, {app="a"} | logfmt n | unwrap n [30s])`, func(t float64) float64 { return t - 29 }},
		{`rate_counter({app="a"} | logfmt n | unwrap n [30s])`, func(float64) float64 { return 1 }},
	} {
		res, err := eng.Query(context.Background(), Params{Query: tt.query, Start: at(40 * time.Second), End: at(190 * time.Second), Step: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Matrix) != 2 {
			t.Fatalf("%s: %d series", tt.query, len(res.Matrix))
		}
		for _, s := range res.Matrix {
			if len(s.Points) != 16 {
				t.Errorf("%s: %d points, want 16", tt.query, len(s.Points))
			}
			for _, p := range s.Points {
				// rate_counter's extrapolation rounds: 29 * (30/29) / 30.
				if want := tt.want(float64(p.T) / 1000); math.Abs(p.V-want) > 1e-12 {
					t.Errorf("%s at %dms: %v, want %v", tt.query, p.T, p.V, want)
				}
			}
		}
	}
}

// TestStreamedAggregationMatches checks that streaming a range aggregation
// into the vector aggregation above it gives exactly what materialising
// every inner series gives.
func TestStreamedAggregationMatches(t *testing.T) {
	st := testStore(t, 5, 400)
	var qs []string
	for _, vec := range []string{"sum", "avg", "min", "max", "count", "stddev", "stdvar"} {
		for _, rng := range []string{
			`sum_over_time({app="a"} | logfmt | unwrap n [45s])`,
			`avg_over_time({app="a"} | logfmt | unwrap n [20s])`,
			`max_over_time({app="a"} | logfmt | unwrap n [20s]) by (pod)`,
			`min_over_time({app="a"} | logfmt | unwrap n [1m] offset 10s)`,
			`first_over_time({app="a"} | logfmt | unwrap n [30s])`,
			`last_over_time({app="a"} | logfmt | unwrap n [30s])`,
			`stddev_over_time({app="a"} | logfmt | unwrap n [30s])`,
			`stdvar_over_time({app="a"} | logfmt | unwrap n [30s])`,
			`quantile_over_time(0.3, {app="a"} | logfmt | unwrap n [30s])`,
			`rate_counter({app="a"} | logfmt pod, n | unwrap n [30s])`,
			`rate({app="a"} | logfmt | unwrap n [30s])`,
			`count_over_time({app="a"} | logfmt [20s])`,
			`rate({app="a"} | logfmt | n > 100 [20s])`,
			`bytes_over_time({app="a"} | logfmt [30s])`,
			`bytes_rate({app="a"} | logfmt | line_format "{{.n}}" [30s])`,
		} {
			qs = append(qs, vec+" by (pod) ("+rng+")", vec+"("+rng+")")
		}
	}
	for _, q := range qs {
		for _, p := range []Params{
			{Query: q, Start: at(0), End: at(7 * time.Minute), Step: 10 * time.Second},
			{Query: q, Start: at(3 * time.Minute), Instant: true},
		} {
			fused, err := New(st, Options{}).Query(context.Background(), p)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			plain := New(st, Options{})
			plain.noFuse = true
			want, err := plain.Query(context.Background(), p)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			// Series reach the aggregation in a different order (Loki's
			// own order is a map's), so stddev and stdvar may differ in the
			// last bits; everything else is exact.
			if !closeResults(fused, want) {
				t.Errorf("%s (instant %v): streamed result differs\n got %v %v\nwant %v %v", q, p.Instant, fused.Matrix, fused.Vector, want.Matrix, want.Vector)
			}
			if len(want.Matrix)+len(want.Vector) == 0 {
				t.Errorf("%s: empty result", q)
			}
		}
	}
}

func closeResults(a, b Result) bool {
	near := func(x, y float64) bool {
		return x == y || math.Abs(x-y) <= 1e-9*math.Max(math.Abs(x), math.Abs(y))
	}
	if len(a.Matrix) != len(b.Matrix) || len(a.Vector) != len(b.Vector) {
		return false
	}
	for i := range a.Matrix {
		sa, sb := a.Matrix[i], b.Matrix[i]
		if !labels.Equal(sa.Metric, sb.Metric) || len(sa.Points) != len(sb.Points) {
			return false
		}
		for j := range sa.Points {
			if sa.Points[j].T != sb.Points[j].T || !near(sa.Points[j].V, sb.Points[j].V) {
				return false
			}
		}
	}
	for i := range a.Vector {
		if !labels.Equal(a.Vector[i].Metric, b.Vector[i].Metric) || !near(a.Vector[i].V, b.Vector[i].V) {
			return false
		}
	}
	return true
}

// TestStreamOrder: streams come sorted by label text as Loki sorts them, so
// a set that extends another sorts first.
func TestStreamOrder(t *testing.T) {
	st := memstore.New()
	for _, ls := range []labels.Labels{labels.FromStrings("app", "x"), labels.FromStrings("app", "x", "b", "y"), labels.FromStrings("app", "w")} {
		if err := st.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{Labels: ls, Entries: []store.Entry{{Ts: int64(time.Second), Line: "l"}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := New(st, Options{}).Query(context.Background(), Params{Query: `{app=~"x|w"}`, Start: at(0), End: at(time.Minute), Direction: store.Backward})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range res.Streams {
		got = append(got, s.Labels.String())
	}
	want := `[{app="w"} {app="x", b="y"} {app="x"}]`
	if fmt.Sprint(got) != want {
		t.Errorf("order %v, want %s", got, want)
	}
}

// A query stops at the engine's timeout with an error a caller recognises as
// a deadline, whatever its own context says.
func TestTimeout(t *testing.T) {
	st := testStore(t, 2, 100)
	e := New(st, Options{Timeout: time.Nanosecond})
	for _, q := range []string{`{app="a"}`, `sum(count_over_time({app="a"} | logfmt [1m]))`} {
		_, err := e.Query(context.Background(), Params{Query: q, Start: at(0), End: at(100 * time.Second), Step: time.Second})
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "query timed out after") {
			t.Errorf("%s: %v, want a timeout", q, err)
		}
	}
	if New(st, Options{}).opts.Timeout != DefaultTimeout {
		t.Error("no default timeout")
	}
	if _, err := New(st, Options{Timeout: -1}).Query(context.Background(), Params{Query: `{app="a"}`, Start: at(0), End: at(time.Minute)}); err != nil {
		t.Errorf("no timeout: %v", err)
	}
}

// What a query accumulates is bounded by the memory budget: lines of a log
// result, series of an aggregation, samples of sliding windows.
func TestMemoryBudget(t *testing.T) {
	st := testStore(t, 20, 100)
	tests := []struct {
		query  string
		budget int64
		limit  int
	}{
		{`{app="a"}`, 1 << 10, 1000},
		{`{app="a"} | line_format "{{ repeat 10000 \"x\" }}"`, 4 << 20, 1000},
		{`sum by (n) (count_over_time({app="a"} | logfmt [1m]))`, 1 << 10, 0},
		{`count by (n) (count_over_time({app="a"} | logfmt [1m]))`, 1 << 10, 0},
		{`sum by (n) (rate({app="a"} | logfmt [1m]))`, 1 << 10, 0},
		{`max(quantile_over_time(0.5, {app="a"} | logfmt | unwrap n [1h]))`, 1 << 10, 0},
	}
	for _, tt := range tests {
		for _, noFuse := range []bool{false, true} {
			e := New(st, Options{MemoryBudget: tt.budget, MaxSeries: 5, MaxEntriesLimit: 5000})
			e.noFuse = noFuse
			_, err := e.Query(context.Background(), Params{Query: tt.query, Start: at(0), End: at(100 * time.Second), Step: 10 * time.Second, Limit: tt.limit})
			if !errors.Is(err, ErrMemoryBudget) || !strings.Contains(err.Error(), "MiB") {
				t.Errorf("%s (noFuse %v): %v, want ErrMemoryBudget", tt.query, noFuse, err)
			}
			// and with the default budget the same query is answered or
			// fails only on Loki's own series limit
			_, err = New(st, Options{MaxSeries: 5, MaxEntriesLimit: 5000}).Query(context.Background(), Params{Query: tt.query, Start: at(0), End: at(100 * time.Second), Step: 10 * time.Second, Limit: tt.limit})
			if err != nil && !errors.Is(err, ErrTooManySeries) {
				t.Errorf("%s with the default budget: %v", tt.query, err)
			}
		}
	}
}
