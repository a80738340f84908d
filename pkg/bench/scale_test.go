package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParamsWindow(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(7 * 24 * time.Hour)
	cases := []struct {
		name      string
		q         Query
		wantStart time.Time
		instant   bool
	}{
		{"whole store", Query{Kind: "logs", Expr: `{a="b"}`}, start, false},
		{"last hour", Query{Kind: "logs", Window: time.Hour, Expr: `{a="b"}`}, end.Add(-time.Hour), false},
		{"window longer than the store", Query{Kind: "range", Step: time.Minute, Window: 30 * 24 * time.Hour, Expr: `{a="b"}`}, start, false},
		{"instant at the end", Query{Kind: "instant", Window: 24 * time.Hour, Expr: `count_over_time({a="b"}[$__range])`}, end, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Params(c.q, start, end)
			if !p.Start.Equal(c.wantStart) || !p.End.Equal(end) || p.Instant != c.instant {
				t.Errorf("params = %s..%s instant %v, want %s..%s instant %v", p.Start, p.End, p.Instant, c.wantStart, end, c.instant)
			}
		})
	}
	// $__range of a windowed instant query is the window, not the store's span.
	p := Params(Query{Kind: "instant", Window: 24 * time.Hour, Expr: `count_over_time({a="b"}[$__range])`}, start, end)
	if !strings.Contains(p.Query, "[86400s]") {
		t.Errorf("windowed instant query = %s, want its range to be the window (86400s)", p.Query)
	}
}

func scaleRun(bytes int64, spanH float64, f func(r *Results)) *Results {
	r := &Results{Corpus: CorpusInfo{Bytes: bytes, SpanHours: spanH}}
	f(r)
	return r
}

func TestScaleFlags(t *testing.T) {
	q := func(name string, window time.Duration, warm float64) QueryResult {
		return QueryResult{Query: Query{Name: name, Kind: "logs", Window: window}, Warm: Timing{Median: warm}, PeakRSSMB: 20}
	}
	runs := []*Results{
		scaleRun(1<<30, 168, func(r *Results) {
			r.Ingest.WallSeconds, r.Idle.RSSMB, r.Restart.FirstQueryMs = 10, 10, 50
			r.Queries = []QueryResult{q("needle", 0, 8), q("explore-first-page", time.Hour, 20), q("whole", 0, 100)}
			r.Queries = append(r.Queries, QueryResult{Query: Query{Name: "volume-24h", Kind: "range", Window: 24 * time.Hour}, Warm: Timing{Median: 30}})
		}),
		scaleRun(4<<30, 168, func(r *Results) {
			r.Ingest.WallSeconds, r.Idle.RSSMB, r.Restart.FirstQueryMs = 60, 11, 400 // ingest 6× for 4×: flagged; restart 8×: flagged
			r.Queries = []QueryResult{q("needle", 0, 12), q("explore-first-page", time.Hour, 30), q("whole", 0, 390)}
			r.Queries = append(r.Queries, QueryResult{Query: Query{Name: "volume-24h", Kind: "range", Window: 24 * time.Hour}, Warm: Timing{Median: 110}})
		}),
	}
	s := Scale(runs)
	if len(s.DataGrowth) != 2 || s.DataGrowth[1] != 4 || s.DayGrowth[1] != 4 {
		t.Fatalf("growth of the data = %v, per day %v; want [1 4] both", s.DataGrowth, s.DayGrowth)
	}
	want := map[string]struct {
		expect  string
		flagged bool
	}{
		"ingest wall":             {ExpectLinear, true},
		"idle RSS":                {ExpectFlat, false},
		"restart to 1st query":    {ExpectFlat, true},
		"needle warm":             {ExpectFlat, false},
		"explore-first-page warm": {ExpectFlat, false},
		"whole warm":              {ExpectLinear, false},
		"volume-24h warm":         {ExpectDay, false},
		"needle peak RSS":         {ExpectFlat, false},
	}
	got := map[string]ScaleFigure{}
	for _, f := range s.Figures {
		got[f.Name] = f
	}
	for name, w := range want {
		f, ok := got[name]
		if !ok {
			t.Errorf("no figure %q", name)
			continue
		}
		if f.Expect != w.expect || (f.Flag != "") != w.flagged {
			t.Errorf("%s: expect %s, flag %q; want expect %s, flagged %v", name, f.Expect, f.Flag, w.expect, w.flagged)
		}
	}
	named := *s
	named.Names = []string{"1GiB", "4GiB"}
	var nb bytes.Buffer
	WriteScaleTable(&nb, &named)
	if !strings.Contains(nb.String(), "        4GiB") {
		t.Errorf("scale table does not label the sizes with their names:\n%s", nb.String())
	}
	if _, ok := got["volume-24h peak RSS"]; ok {
		t.Error("a query without a measured peak RSS got a peak RSS figure")
	}
	var buf bytes.Buffer
	WriteScaleTable(&buf, s)
	out := buf.String()
	for _, line := range []string{"restart to 1st query (ms)", "⚠ grows 8.0× where it should stay flat", "⚠ grows 6.0× for 4.0× the data", "4.0 GiB"} {
		if !strings.Contains(out, line) {
			t.Errorf("scale table lacks %q:\n%s", line, out)
		}
	}
}

func TestScaleDayGrowthUsesSpan(t *testing.T) {
	// 7 GiB over 7 days holds as much per day as 1 GiB over one.
	s := Scale([]*Results{
		scaleRun(1<<30, 24, func(*Results) {}),
		scaleRun(7<<30, 168, func(*Results) {}),
	})
	if s.DataGrowth[1] != 7 || s.DayGrowth[1] != 1 {
		t.Errorf("growth = %v, per day %v; want 7 and 1", s.DataGrowth, s.DayGrowth)
	}
}
