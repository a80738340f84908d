package engine

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// volumeFixture: job a's info stream has ten 4-byte lines 10 s apart, its
// error stream six 8-byte lines 30 s apart, job b three 2-byte lines a
// minute apart; all from base.
func volumeFixture(base time.Time) []store.StreamEntries {
	return []store.StreamEntries{
		{Labels: labels.FromStrings("job", "a", "level", "info", "pod", "p1"), Entries: every(base, 10, 10*time.Second, "aaaa")},
		{Labels: labels.FromStrings("job", "a", "level", "error", "pod", "p2"), Entries: every(base, 6, 30*time.Second, "eeeeeeee")},
		{Labels: labels.FromStrings("job", "b", "level", "info"), Entries: every(base, 3, time.Minute, "bb")},
	}
}

// every makes n entries of line, gap apart from base.
func every(base time.Time, n int, gap time.Duration, line string) []store.Entry {
	es := make([]store.Entry, n)
	for i := range es {
		es[i] = store.Entry{Ts: base.Add(time.Duration(i) * gap).UnixNano(), Seq: uint64(i), Line: line}
	}
	return es
}

func TestVolume(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	_, eng := memStore(t, volumeFixture(base))
	start, end := base.UnixNano(), base.Add(time.Hour).UnixNano()
	endMs := end / int64(time.Millisecond)
	at := func(d time.Duration) int64 { return base.Add(d).UnixNano() / int64(time.Millisecond) }
	ls := labels.FromStrings
	vec := func(ss ...Sample) Result { return Result{Type: ValueVector, Vector: ss} }
	tests := []struct {
		name string
		p    VolumeParams
		want Result
	}{
		{"by the selector's labels", VolumeParams{Query: `{job=~".+"}`, Start: start, End: end},
			vec(Sample{ls("job", "a"), endMs, 40 + 48}, Sample{ls("job", "b"), endMs, 6})},
		{"target labels", VolumeParams{Query: `{job=~".+"}`, Start: start, End: end, TargetLabels: []string{"level"}},
			vec(Sample{ls("level", "error"), endMs, 48}, Sample{ls("level", "info"), endMs, 46})},
		{"two target labels", VolumeParams{Query: `{job="a"}`, Start: start, End: end, TargetLabels: []string{"job", "pod"}, AggregateBy: VolumeBySeries},
			vec(Sample{ls("job", "a", "pod", "p2"), endMs, 48}, Sample{ls("job", "a", "pod", "p1"), endMs, 40})},
		{"streams without the target label are left out", VolumeParams{Query: `{level="info"}`, Start: start, End: end, TargetLabels: []string{"pod"}},
			vec(Sample{ls("pod", "p1"), endMs, 40})},
		{"by labels", VolumeParams{Query: `{job=~".+"}`, Start: start, End: end, TargetLabels: []string{"job", "level", "pod"}, AggregateBy: VolumeByLabels},
			vec(Sample{ls("job", ""), endMs, 94}, Sample{ls("level", ""), endMs, 94}, Sample{ls("pod", ""), endMs, 88})},
		{"limit keeps the largest", VolumeParams{Query: `{job=~".+"}`, Start: start, End: end, Limit: 1},
			vec(Sample{ls("job", "a"), endMs, 88})},
		{"only the range counts", VolumeParams{Query: `{job="a"}`, Start: start, End: base.Add(time.Minute).UnixNano()},
			vec(Sample{ls("job", "a"), base.Add(time.Minute).UnixNano() / int64(time.Millisecond), 6*4 + 2*8})},
		{"nothing matches", VolumeParams{Query: `{job="nope"}`, Start: start, End: end}, vec()},
		{"range", VolumeParams{Query: `{job=~".+"}`, Start: start, End: base.Add(3 * time.Minute).UnixNano(), Step: int64(time.Minute)},
			Result{Type: ValueMatrix, Matrix: []Series{
				{ls("job", "a"), []Point{{at(0), 6*4 + 2*8}, {at(time.Minute), 4*4 + 2*8}, {at(2 * time.Minute), 2 * 8}}},
				{ls("job", "b"), []Point{{at(0), 2}, {at(time.Minute), 2}, {at(2 * time.Minute), 2}}},
			}}},
		{"range leaves empty steps out", VolumeParams{Query: `{pod="p1"}`, Start: start, End: base.Add(5 * time.Minute).UnixNano(), Step: int64(time.Minute)},
			Result{Type: ValueMatrix, Matrix: []Series{{ls("pod", "p1"), []Point{{at(0), 6 * 4}, {at(time.Minute), 4 * 4}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eng.Volume(context.Background(), tt.p)
			if err != nil {
				t.Fatal(err)
			}
			got.Stats = Stats{}
			if got.Vector == nil && tt.want.Type == ValueVector {
				got.Vector = nil
			}
			if tt.want.Vector == nil && got.Type == ValueVector && len(got.Vector) == 0 {
				got.Vector = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDefaultVolumeStep(t *testing.T) {
	tests := []struct {
		span time.Duration
		want time.Duration
	}{
		{time.Minute, time.Second},
		{time.Hour, 14 * time.Second},
		{24 * time.Hour, 345 * time.Second},
	}
	for _, tt := range tests {
		if got := DefaultVolumeStep(0, int64(tt.span)); got != int64(tt.want) {
			t.Errorf("DefaultVolumeStep over %v = %v, want %v", tt.span, time.Duration(got), tt.want)
		}
	}
}

func TestVolumeErrors(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	_, eng := memStore(t, volumeFixture(base))
	start, end := base.UnixNano(), base.Add(time.Hour).UnixNano()
	tests := []struct {
		name string
		p    VolumeParams
		want string
	}{
		{"empty query", VolumeParams{Start: start, End: end}, "needs a query"},
		{"a pipeline", VolumeParams{Query: `{job="a"} |= "x"`, Start: start, End: end}, "stream selector"},
		{"a metric query", VolumeParams{Query: `rate({job="a"}[1m])`, Start: start, End: end}, "stream selector"},
		{"parse error", VolumeParams{Query: `{job=`, Start: start, End: end}, "parse error"},
		{"end before start", VolumeParams{Query: `{job="a"}`, Start: end, End: start}, "end timestamp"},
		{"aggregateBy", VolumeParams{Query: `{job="a"}`, Start: start, End: end, AggregateBy: "pods"}, "invalid aggregation"},
		{"negative step", VolumeParams{Query: `{job="a"}`, Start: start, End: end, Step: -1}, "step"},
		{"too many points", VolumeParams{Query: `{job="a"}`, Start: start, End: end, Step: int64(time.Millisecond)}, "11,000 points"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := eng.Volume(context.Background(), tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
	small := New(eng.r, Options{MemoryBudget: 8 * 100})
	_, err := small.Volume(context.Background(), VolumeParams{Query: `{job=~".+"}`, Start: start, End: end, Step: int64(time.Minute), TargetLabels: []string{"pod", "level"}})
	if !errors.Is(err, ErrMemoryBudget) {
		t.Errorf("volume over the memory budget: err = %v, want ErrMemoryBudget", err)
	}
}

func TestDetectedLabels(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	line := func(int) string { return "x" }
	_, eng := memStore(t, []store.StreamEntries{
		{Labels: labels.FromStrings("app", "x", "cluster", "c1", "pod", "p1", "trace", "0f8fad5b-d9cb-469f-a165-70867728950e", "port", "8080", "env", "prod"), Entries: linesAt(base, 1, line)},
		{Labels: labels.FromStrings("app", "x", "cluster", "c1", "pod", "p2", "trace", "7C9E6679-7425-40DE-944B-E07FC1F90AE7", "port", "8081", "env", "dev"), Entries: linesAt(base, 1, line)},
		{Labels: labels.FromStrings("app", "y", "pod", "p3", "trace", "t-1", "port", "1.5"), Entries: linesAt(base, 1, line)},
	})
	start, end := base.Add(-time.Hour).UnixNano(), base.Add(time.Hour).UnixNano()
	tests := []struct {
		name, query string
		want        []DetectedLabel
	}{
		{"every stream", "", []DetectedLabel{{"app", 2}, {"cluster", 1}, {"env", 2}, {"pod", 3}, {"trace", 3}}},
		{"one app: ids and single values drop out", `{app="x"}`, []DetectedLabel{{"cluster", 1}, {"env", 2}, {"pod", 2}}},
		{"nothing matches", `{app="z"}`, []DetectedLabel{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eng.DetectedLabels(context.Background(), tt.query, start, end)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{`{app=`, `{app="x"} |= "a"`, `count_over_time({app="x"}[1m])`} {
		if _, err := eng.DetectedLabels(context.Background(), bad, start, end); err == nil {
			t.Errorf("DetectedLabels(%q): no error", bad)
		}
	}
}

func TestDetectedFieldValues(t *testing.T) {
	base := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	_, eng := memStore(t, fieldMix(base))
	start, end := base.Add(-time.Hour).UnixNano(), base.Add(3*time.Hour).UnixNano()
	tests := []struct {
		name, query, field string
		lineLimit, limit   int
		want               []string
	}{
		{"logfmt field", `{job="cosy"}`, "status", DefaultFieldLines, 100, []string{"200", "201"}},
		{"limit", `{job="cosy"}`, "status", DefaultFieldLines, 1, []string{"200"}},
		{"json field", `{job="cosy"}`, "user", DefaultFieldLines, 100, []string{"u0", "u1", "u2"}},
		{"the sample bounds what is seen", `{filename="short.log"}`, "gpu", 1, 100, []string{"1"}},
		{"the query's filter applies", `{job="cosy"} |= "gpu=0"`, "gpu", DefaultFieldLines, 100, []string{"0"}},
		{"stream labels are not fields", `{job="cosy"}`, "filename", DefaultFieldLines, 100, []string{}},
		{"unknown field", `{job="cosy"}`, "nope", DefaultFieldLines, 100, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eng.DetectedFieldValues(context.Background(), tt.query, tt.field, start, end, tt.lineLimit, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	for _, bad := range []struct{ query, field string }{{`{job="cosy"}`, ""}, {`rate({job="cosy"}[1m])`, "status"}, {`{job=`, "status"}} {
		if _, err := eng.DetectedFieldValues(context.Background(), bad.query, bad.field, start, end, 10, 10); err == nil {
			t.Errorf("DetectedFieldValues(%q, %q): no error", bad.query, bad.field)
		}
	}
}

func TestSearchWords(t *testing.T) {
	eng := New(nil, Options{})
	tests := []struct {
		query string
		want  []string
	}{
		{`{job="a"}`, nil},
		{`{job="a"} |= "error" |~ "time(out)?" != "debug" !~ "x" |= "" |= "error"`, []string{"error", "time(out)?"}},
		{`{job="a"} |= "a" or "b" | logfmt |= "c"`, []string{"a", "b", "c"}},
		{`{job="a"} |= ip("10.0.0.0/8") |= "d"`, []string{"d"}},
		{`count_over_time({job="a"} |= "error"[1m])`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got, err := eng.SearchWords(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := eng.SearchWords(`{job=`); err == nil {
		t.Error("SearchWords of a bad query: no error")
	}
}
