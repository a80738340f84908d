package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/conformance"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// memStore opens a store in a temporary directory holding streams, flushed
// to blocks so that block counts are real.
func memStore(t testing.TB, streams []store.StreamEntries) (*store.Store, *Engine) {
	t.Helper()
	st := conformance.FlushedStore(t, func(app store.Appender) {
		if err := app.Append(context.Background(), store.AppendBatch{Streams: streams}); err != nil {
			t.Fatal(err)
		}
	})
	return st, New(st, Options{})
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
	st, eng := memStore(t, streams)
	start, end := base.Add(-time.Hour).UnixNano(), base.Add(time.Hour).UnixNano()
	ctx := context.Background()

	// What one stream selector must answer, from the fixture itself.
	truth := func(ms ...*labels.Matcher) IndexStats {
		var want IndexStats
		for _, s := range streams {
			if !labels.MatchLabels(s.Labels, ms...) {
				continue
			}
			want.Streams++
			want.Entries += uint64(len(s.Entries))
			for _, e := range s.Entries {
				want.Bytes += uint64(len(e.Line))
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
		want     IndexStats
	}{
		{"log selector", `{job="a"}`, []string{`{job="a"}`}, truth(eq("job", "a"))},
		{"log query with stages", `{job="a"} |= "error" | logfmt`, []string{`{job="a"}`}, truth(eq("job", "a"))},
		{"metric query", `sum by (level) (rate({job="a"}[5m]))`, []string{`{job="a"}`}, truth(eq("job", "a"))},
		{"binary query counts a stream once", `sum(rate({job="a"}[5m])) / sum(rate({job="a", level="error"}[5m]))`, []string{`{job="a"}`}, truth(eq("job", "a"))},
		{"binary query over two jobs", `count_over_time({job="a", level="error"}[1m]) + on() count_over_time({job="b"} |= "says"[1m])`, []string{`{job="a", level="error"}`, `{job="b"}`},
			IndexStats{Streams: 2, Entries: 7 + 11, Bytes: truth(eq("job", "a"), eq("level", "error")).Bytes + truth(eq("job", "b")).Bytes}},
		{"three selectors, all streams", `sum(count_over_time({level="info"}[1m])) + sum(count_over_time({job="a"}[1m])) - sum(count_over_time({job=~".+"}[1m]))`, []string{`{job=~".+"}`}, truth(re("job", ".+"))},
		{"no selector", `vector(1) + 2`, nil, IndexStats{}},
		{"nothing matches", `rate({job="nope"}[1m])`, nil, IndexStats{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eng.IndexStats(ctx, tt.query, start, end)
			if err != nil {
				t.Fatal(err)
			}
			if got.Streams != tt.want.Streams || got.Entries != tt.want.Entries || got.Bytes != tt.want.Bytes {
				t.Errorf("stats = %+v, want %+v", got, tt.want)
			}
			var col store.StatsCollector
			for _, sel := range tt.blocksOf {
				ms, err := streamSelector("blocks", sel, false)
				if err != nil {
					t.Fatal(err)
				}
				its, err := st.Select(store.WithStats(ctx, &col), store.SelectParams{Matchers: ms, Start: start, End: end})
				if err != nil {
					t.Fatal(err)
				}
				closeAll(its)
			}
			if want := col.Snapshot().BlocksTotal; got.Chunks != uint64(want) || (want == 0) != (len(tt.blocksOf) == 0) {
				t.Errorf("chunks = %d, want %d (the blocks of %v)", got.Chunks, want, tt.blocksOf)
			}
		})
	}

	for _, bad := range []string{"", "   ", `{job=`, `sum(rate({job="a"}[5m])`} {
		if _, err := eng.IndexStats(ctx, bad, start, end); err == nil {
			t.Errorf("IndexStats(%q): no error", bad)
		}
	}
}

// fieldMix is a job whose newest lines are all plain access lines (stamped
// at ingest time, after every structured line) beside a JSON stream, a
// logfmt stream and a short one.
func fieldMix(base time.Time) []store.StreamEntries {
	return []store.StreamEntries{
		{Labels: labels.FromStrings("job", "cosy", "filename", "access.log"), Entries: linesAt(base.Add(time.Hour), 3000, func(i int) string {
			return fmt.Sprintf(`INFO:     127.0.0.1:5%04d - "POST /inference_sft HTTP/1.1" 200 OK`, i)
		})},
		{Labels: labels.FromStrings("job", "cosy", "filename", "app.json"), Entries: linesAt(base, 60, func(i int) string {
			return fmt.Sprintf(`{"level":"info","latency":%d.5,"user":"u%d"}`, i, i%3)
		})},
		{Labels: labels.FromStrings("job", "cosy", "filename", "worker.log"), Entries: linesAt(base, 60, func(i int) string {
			return fmt.Sprintf(`level=info msg="synthesised" rtf=0.%d status=%d`, i%9+1, 200+i%2)
		})},
		{Labels: labels.FromStrings("job", "cosy", "filename", "short.log", "extra", "x"), Entries: linesAt(base, 2, func(i int) string {
			return fmt.Sprintf(`gpu=%d ok=true`, i)
		})},
	}
}

func TestDetectedFieldsSampleEveryStream(t *testing.T) {
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	_, eng := memStore(t, fieldMix(base))
	start, end := base.Add(-time.Hour).UnixNano(), base.Add(3*time.Hour).UnixNano()
	tests := []struct {
		name      string
		query     string
		lineLimit int
		want      map[string]string // field: type
		absent    []string
	}{
		{"default limit sees every structured stream", `{job="cosy"}`, DefaultFieldLines,
			map[string]string{"latency": "float", "user": "string", "rtf": "float", "status": "int", "msg": "string", "gpu": "int", "ok": "boolean"}, nil},
		{"one line per stream", `{job="cosy"}`, 4,
			map[string]string{"latency": "float", "user": "string", "rtf": "float", "gpu": "int"}, nil},
		{"the query's filter applies before sampling", `{job="cosy"} |= "rtf="`, 10,
			map[string]string{"rtf": "float", "status": "int"}, []string{"latency", "gpu"}},
		{"one stream", `{job="cosy", filename="app.json"}`, DefaultFieldLines,
			map[string]string{"latency": "float", "user": "string", "level": "string"}, []string{"rtf", "gpu"}},
		{"a stream whose labels are a subset of another's", `{job="cosy", filename="short.log"}`, 1,
			map[string]string{"gpu": "int", "ok": "boolean"}, []string{"latency", "rtf"}},
		{"nothing matches", `{job="none"}`, DefaultFieldLines, map[string]string{}, []string{"latency"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			df, err := eng.DetectedFields(context.Background(), tt.query, start, end, tt.lineLimit, 1000)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, f := range df {
				got[f.Label] = f.Type
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("field %s: type %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			for _, k := range tt.absent {
				if _, ok := got[k]; ok {
					t.Errorf("field %s detected; its stream is not in the query (all: %v)", k, got)
				}
			}
		})
	}
}

// sampleStreams shares the line budget out, newest lines first, and gives
// what a short stream leaves unused to the others.
func TestSampleStreamsShares(t *testing.T) {
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	streams := fieldMix(base)
	_, eng := memStore(t, streams)
	start, end := base.Add(-time.Hour).UnixNano(), base.Add(3*time.Hour).UnixNano()
	sel, err := syntax.ParseExpr(`{job="cosy"}`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		limit int
		want  map[string]int // lines per filename
	}{
		{4, map[string]int{"access.log": 1, "app.json": 1, "worker.log": 1, "short.log": 1}},
		// Round-robin in label order: short.log's {extra="x", ...} first.
		{5, map[string]int{"access.log": 1, "app.json": 1, "worker.log": 1, "short.log": 2}},
		// Quotas of 25: short.log leaves 23, split 8 each among the rest.
		{100, map[string]int{"access.log": 33, "app.json": 33, "worker.log": 32, "short.log": 2}},
		{1000, map[string]int{"access.log": 878, "app.json": 60, "worker.log": 60, "short.log": 2}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			got, err := eng.sampleStreams(context.Background(), sel.(syntax.LogSelectorExpr), start, end, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			per := map[string][]int64{}
			for _, e := range got {
				f := e.labels.Get("filename")
				per[f] = append(per[f], e.Ts)
			}
			for f, n := range tt.want {
				if len(per[f]) != n {
					t.Errorf("%s: %d lines, want %d", f, len(per[f]), n)
				}
			}
			// Newest first within each stream: the stream's own newest lines.
			for _, s := range streams {
				f, es := s.Labels.Get("filename"), s.Entries
				for k, ts := range per[f] {
					if want := es[len(es)-1-k].Ts; ts != want {
						t.Fatalf("%s line %d: ts %d, want %d (newest first)", f, k, ts, want)
					}
				}
			}
		})
	}
}

// BenchmarkDetectFields samples a job of 40 streams (one query each).
func BenchmarkDetectFields(b *testing.B) {
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	var streams []store.StreamEntries
	for s := 0; s < 40; s++ {
		streams = append(streams, store.StreamEntries{
			Labels: labels.FromStrings("job", "cosy", "filename", fmt.Sprintf("f%02d.log", s)),
			Entries: linesAt(base, 2000, func(i int) string {
				return fmt.Sprintf(`level=info msg="request %d" rtf=0.%d status=%d stream=%d`, i, i%9+1, 200+i%2, s)
			}),
		})
	}
	_, eng := memStore(b, streams)
	start, end := base.UnixNano(), base.Add(time.Hour).UnixNano()
	b.ResetTimer()
	for b.Loop() {
		if _, err := eng.DetectedFields(context.Background(), `{job="cosy"}`, start, end, DefaultFieldLines, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
