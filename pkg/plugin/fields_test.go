package plugin

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/store"
)

// memStore opens a store in a temporary directory holding streams, flushed
// to blocks so that block counts are real.
func memStore(t *testing.T, streams []store.StreamEntries) (*store.Store, *engine.Engine) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx := context.Background()
	if err := st.Append(ctx, store.AppendBatch{Streams: streams}); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return st, engine.New(st, engine.Options{})
}

// linesAt makes n entries one second apart from base, with line i from
// format(i).
func linesAt(base time.Time, n int, format func(i int) string) []store.Entry {
	es := make([]store.Entry, n)
	for i := range es {
		es[i] = store.Entry{Ts: base.Add(time.Duration(i) * time.Second).UnixNano(), Seq: uint64(i), Line: format(i)}
	}
	return es
}

func TestIndexStatsUnionOfSelectors(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	streams := []store.StreamEntries{
		{Labels: labels.FromStrings("job", "a", "level", "info"), Entries: linesAt(base, 30, func(i int) string { return fmt.Sprintf("info line %d", i) })},
		{Labels: labels.FromStrings("job", "a", "level", "error"), Entries: linesAt(base, 7, func(i int) string { return fmt.Sprintf("an error %d", i) })},
		{Labels: labels.FromStrings("job", "b", "level", "info"), Entries: linesAt(base, 11, func(i int) string { return fmt.Sprintf("b says %d", i) })},
	}
	st, _ := memStore(t, streams)
	start, end := base.Add(-time.Hour).UnixNano(), base.Add(time.Hour).UnixNano()
	ctx := context.Background()

	// What one stream selector must answer, from the fixture itself.
	truth := func(ms ...*labels.Matcher) indexStats {
		var want indexStats
		for _, s := range streams {
			if !labels.MatchLabels(s.Labels, ms...) {
				continue
			}
			want.Streams++
			want.Entries += int64(len(s.Entries))
			for _, e := range s.Entries {
				want.Bytes += int64(len(e.Line))
			}
		}
		return want
	}
	eq := func(n, v string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchEqual, n, v) }
	re := func(n, v string) *labels.Matcher { return labels.MustNewMatcher(labels.MatchRegexp, n, v) }

	tests := []struct {
		name  string
		query string
		// blocksOf are disjoint selectors covering the same streams: the
		// query's blocks are the sum of theirs, as the store counts them.
		blocksOf []string
		want     indexStats
	}{
		{"log selector", `{job="a"}`, []string{`{job="a"}`}, truth(eq("job", "a"))},
		{"log query with stages", `{job="a"} |= "error" | logfmt`, []string{`{job="a"}`}, truth(eq("job", "a"))},
		{"metric query", `sum by (level) (rate({job="a"}[5m]))`, []string{`{job="a"}`}, truth(eq("job", "a"))},
		{"binary query counts a stream once", `sum(rate({job="a"}[5m])) / sum(rate({job="a", level="error"}[5m]))`, []string{`{job="a"}`}, truth(eq("job", "a"))},
		{"binary query over two jobs", `count_over_time({job="a", level="error"}[1m]) + on() count_over_time({job="b"} |= "says"[1m])`, []string{`{job="a", level="error"}`, `{job="b"}`},
			indexStats{Streams: 2, Entries: 7 + 11, Bytes: truth(eq("job", "a"), eq("level", "error")).Bytes + truth(eq("job", "b")).Bytes}},
		{"three selectors, all streams", `sum(count_over_time({level="info"}[1m])) + sum(count_over_time({job="a"}[1m])) - sum(count_over_time({job=~".+"}[1m]))`, []string{`{job=~".+"}`}, truth(re("job", ".+"))},
		{"no selector", `vector(1) + 2`, nil, indexStats{}},
		{"nothing matches", `rate({job="nope"}[1m])`, nil, indexStats{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := statsFor(ctx, st, tt.query, start, end)
			if err != nil {
				t.Fatal(err)
			}
			if got.Streams != tt.want.Streams || got.Entries != tt.want.Entries || got.Bytes != tt.want.Bytes {
				t.Errorf("stats = %+v, want %+v", got, tt.want)
			}
			var col store.StatsCollector
			for _, sel := range tt.blocksOf {
				ms, err := selectorParam(sel, false)
				if err != nil {
					t.Fatal(err)
				}
				its, err := st.Select(store.WithStats(ctx, &col), store.SelectParams{Matchers: ms, Start: start, End: end})
				if err != nil {
					t.Fatal(err)
				}
				closeIters(its)
			}
			if want := col.Snapshot().BlocksTotal; got.Chunks != want || (want == 0) != (len(tt.blocksOf) == 0) {
				t.Errorf("chunks = %d, want %d (the blocks of %v)", got.Chunks, want, tt.blocksOf)
			}
		})
	}

	for _, bad := range []string{"", "   ", `{job=`, `sum(rate({job="a"}[5m])`} {
		if _, err := statsFor(ctx, st, bad, start, end); err == nil {
			t.Errorf("statsFor(%q): no error", bad)
		}
	}
}
