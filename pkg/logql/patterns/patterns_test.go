package patterns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/golden"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/sample"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

// t0 is the start of every test corpus.
var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

// loadSample writes a CosyVoice3 history of about size bytes with pkg/sample
// and stores every physical line of it as an entry of its file's stream,
// one per second per stream from t0. It returns the store and the end of the
// stored range.
func loadSample(tb testing.TB, size int64) (*memstore.Store, int64) {
	tb.Helper()
	dir := tb.TempDir()
	m, err := sample.Write(dir, sample.Options{Seed: 7, Size: size, Start: t0, Span: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	s := memstore.New()
	var end int64
	for _, f := range m.Files {
		fh, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			tb.Fatal(err)
		}
		var es []store.Entry
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			ts := t0.UnixNano() + int64(len(es))*int64(time.Second)
			es = append(es, store.Entry{Ts: ts, Seq: uint64(len(es)), Line: sc.Text()})
			end = max(end, ts+1)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
		if len(es) == 0 {
			continue
		}
		if err := s.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{Labels: labels.FromMap(f.Labels), Entries: es}}}); err != nil {
			tb.Fatal(err)
		}
	}
	return s, end
}

// storeOf stores lines in one stream with the given labels, a second apart
// from t0.
func storeOf(t *testing.T, ls labels.Labels, lines ...string) *memstore.Store {
	t.Helper()
	s := memstore.New()
	es := make([]store.Entry, len(lines))
	for i, l := range lines {
		es[i] = store.Entry{Ts: t0.UnixNano() + int64(i)*int64(time.Second), Seq: uint64(i), Line: l}
	}
	if err := s.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{Labels: ls, Entries: es}}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMine(t *testing.T) {
	job := labels.FromStrings("job", "x")
	tests := []struct {
		name  string
		ls    labels.Labels
		lines []string
		want  []string // "level|pattern total", most frequent first
	}{
		{
			name: "varying numbers and key=value values",
			ls:   job,
			lines: []string{
				"2024-12-17 14:30:52 INFO Generating audio: text_len=12, seed=42 seq=1",
				"2024-12-17 14:30:53 INFO Generating audio: text_len=310, seed=7 seq=2",
				"2024-12-17 14:30:54 INFO Generating audio: text_len=9, seed=99871 seq=3",
			},
			want: []string{"info|2024-12-17 <_> INFO Generating audio: text_len=<_>, seed=<_> seq=<_> 3"},
		},
		{
			name: "levels never share a pattern",
			ls:   job,
			lines: []string{
				"level=info msg=done took=3ms",
				"level=info msg=done took=5ms",
				"level=error msg=done took=9ms",
			},
			want: []string{"info|level=info msg=done took=<_> 2", "error|level=error msg=done took=9ms 1"},
		},
		{
			name: "the stream's level label wins over the line",
			ls:   labels.FromStrings("job", "x", "detected_level", "warn"),
			lines: []string{
				"ERROR: disk is full on sda, 3 retries left",
				"ERROR: disk is full on sdb, 2 retries left",
			},
			want: []string{"warn|ERROR: disk is full on <_>, <_> retries left 2"},
		},
		{
			name: "unknown level is left out; leading words choose the branch",
			ls:   job,
			lines: []string{
				"GET /health 200 1ms",
				"GET /health 200 3ms",
				"GET /ready 200 2ms",
				"connection reset by peer on socket 4",
				"connection reset by peer on socket 5",
			},
			want: []string{"|GET /health 200 <_> 2", "|connection reset by peer on socket <_> 2", "|GET /ready 200 2ms 1"},
		},
		{
			name: "dissimilar lines of one length do not merge",
			ls:   job,
			lines: []string{
				"alpha beta gamma delta",
				"one two three four",
			},
			want: []string{"|alpha beta gamma delta 1", "|one two three four 1"},
		},
		{
			name: "runs of placeholders fold",
			ls:   job,
			lines: []string{
				"user 17 ok 10.0.0.1 5 logged in",
				"user 18 ok 10.0.0.2 6 logged in",
			},
			want: []string{"|user <_> ok <_> logged in 2"},
		},
		{
			name: "JSON is cut at commas and braces; key:value keeps its key",
			ls:   job,
			lines: []string{
				`{"ts":"2026-01-02T03:00:00Z","level":"info","event":"gpu_stats","queue":{"depth":3,"name":"tts"},"seq":1}`,
				`{"ts":"2026-01-02T03:00:01Z","level":"info","event":"gpu_stats","queue":{"depth":12,"name":"tts"},"seq":2}`,
			},
			want: []string{`info|{"ts":<_>,"level":"info","event":"gpu_stats","queue":{"depth":<_>,"name":"tts"},"seq":<_> 2`},
		},
		{
			name: "host:port keeps the host",
			ls:   job,
			lines: []string{
				"INFO: 127.0.0.1:41234 - GET /",
				"INFO: 127.0.0.1:50111 - GET /",
			},
			want: []string{"info|INFO: 127.0.0.1:<_> - GET / 2"},
		},
		{
			name:  "blank lines are skipped",
			ls:    job,
			lines: []string{"", "   ", "ok"},
			want:  []string{"|ok 1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := storeOf(t, tc.ls, tc.lines...)
			ps, err := Detect(context.Background(), s, `{job="x"}`, t0.UnixNano(), t0.Add(time.Hour).UnixNano(), int64(time.Minute), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := summary(ps)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func summary(ps []Pattern) []string {
	var out []string
	for _, p := range ps {
		var n int64
		for _, s := range p.Samples {
			n += s.Count
		}
		out = append(out, fmt.Sprintf("%s|%s %d", p.Level, p.Pattern, n))
	}
	return out
}

func TestSamplesPerStep(t *testing.T) {
	lines := make([]string, 150) // one a second: 60, 60 and 30 per minute
	for i := range lines {
		lines[i] = fmt.Sprintf("tick %d", i)
	}
	s := storeOf(t, labels.FromStrings("job", "x"), lines...)
	ps, err := Detect(context.Background(), s, `{job="x"}`, t0.UnixNano(), t0.Add(time.Hour).UnixNano(), int64(time.Minute), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Pattern != "tick <_>" {
		t.Fatalf("patterns %v", summary(ps))
	}
	want := []Sample{{t0.Unix(), 60}, {t0.Unix() + 60, 60}, {t0.Unix() + 120, 30}}
	if fmt.Sprint(ps[0].Samples) != fmt.Sprint(want) {
		t.Errorf("samples %v, want %v", ps[0].Samples, want)
	}
}

func TestLineFilters(t *testing.T) {
	s := storeOf(t, labels.FromStrings("job", "x"), "disk full on sda", "disk full on sdb", "cpu hot 91", "cpu hot 92")
	ps, err := Detect(context.Background(), s, `{job="x"} |= "cpu" != "93"`, t0.UnixNano(), t0.Add(time.Hour).UnixNano(), int64(time.Minute), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(summary(ps), ";"); got != "|cpu hot <_> 2" {
		t.Errorf("got %s", got)
	}
}

// TestBudgetCarriesOver: lines only at the end of the range still get the
// whole MaxLines, not the last window's share.
func TestBudgetCarriesOver(t *testing.T) {
	lines := make([]string, 300)
	for i := range lines {
		lines[i] = fmt.Sprintf("tick %d", i)
	}
	s := storeOf(t, labels.FromStrings("job", "x"), lines...) // 5 minutes from t0
	start := t0.Add(-time.Hour).UnixNano()
	ps, err := Detect(context.Background(), s, `{job="x"}`, start, t0.Add(10*time.Minute).UnixNano(), int64(time.Minute), Options{MaxLines: 200})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(ps); len(got) != 1 || got[0] != "|tick <_> 200" {
		t.Errorf("got %v, want the 200 lines of the budget", got)
	}
}

func TestErrors(t *testing.T) {
	s := storeOf(t, labels.FromStrings("job", "x"), "a")
	start, end := t0.UnixNano(), t0.Add(time.Hour).UnixNano()
	tests := []struct {
		name             string
		query            string
		start, end, step int64
		parse            bool
		want             string
	}{
		{"syntax", `{job="x"`, start, end, 0, true, "parse error"},
		{"empty selector", `{job=""}`, start, end, 0, true, "queries require at least one regexp or equality matcher"},
		{"parser stage", `{job="x"} | logfmt`, start, end, 0, false, "patterns take a stream selector with optional line filters, not | logfmt"},
		{"bad regexp", `{job="x"} |~ "("`, start, end, 0, true, "invalid regular expression"},
		{"end before start", `{job="x"}`, end, start, 0, false, "must be after start"},
		{"negative step", `{job="x"}`, start, end, -1, false, "zero or negative query resolution step"},
		{"too many points", `{job="x"}`, start, end, int64(time.Millisecond), false, "exceeded maximum resolution of 11,000 points"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Detect(context.Background(), s, tc.query, tc.start, tc.end, tc.step, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to contain %q", err, tc.want)
			}
			if got := errors.Is(err, syntax.ErrParse); got != tc.parse {
				t.Errorf("errors.Is(err, syntax.ErrParse) = %v", got)
			}
			if !tc.parse && !errors.Is(err, ErrBadRequest) {
				t.Errorf("errors.Is(err, ErrBadRequest) is false for %v", err)
			}
		})
	}
}

func TestCancelled(t *testing.T) {
	s := storeOf(t, labels.FromStrings("job", "x"), "a", "b")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Detect(ctx, s, `{job="x"}`, t0.UnixNano(), t0.Add(time.Hour).UnixNano(), 0, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestBounds(t *testing.T) {
	s, end := loadSample(t, 256<<10)
	q := `{job="cosyvoice3"}`
	t.Run("MaxLines reads that many lines at most, from every stream", func(t *testing.T) {
		ps, err := Detect(context.Background(), s, q, t0.UnixNano(), end, int64(time.Minute), Options{MaxLines: 800})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		kinds := map[string]bool{}
		for _, p := range ps {
			for _, x := range p.Samples {
				n += x.Count
			}
			switch {
			case strings.Contains(p.Pattern, "HTTP/1.1"):
				kinds["access"] = true
			case strings.HasPrefix(p.Pattern, "ts=<_> level="):
				kinds["metrics"] = true
			case strings.HasPrefix(p.Pattern, `{"ts":`):
				kinds["events"] = true
			}
		}
		if n == 0 || n > 800 {
			t.Errorf("%d lines counted, want 1..800", n)
		}
		if len(kinds) != 3 {
			t.Errorf("streams sampled: %v, want access, metrics and events", kinds)
		}
	})
	t.Run("MaxClusters caps the patterns", func(t *testing.T) {
		ps, err := Detect(context.Background(), s, q, t0.UnixNano(), end, int64(time.Minute), Options{MaxClusters: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 || len(ps) > 5 {
			t.Errorf("%d patterns, want 1..5", len(ps))
		}
	})
	t.Run("Limit keeps the most frequent", func(t *testing.T) {
		all, err := Detect(context.Background(), s, q, t0.UnixNano(), end, int64(time.Minute), Options{})
		if err != nil {
			t.Fatal(err)
		}
		top, err := Detect(context.Background(), s, q, t0.UnixNano(), end, int64(time.Minute), Options{Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) <= 3 || fmt.Sprint(summary(top)) != fmt.Sprint(summary(all[:3])) {
			t.Errorf("top 3 %v, all %v", summary(top), summary(all))
		}
	})
}

// TestGolden mines a small CosyVoice3 history and compares Loki's response
// body with testdata/cosyvoice.golden.json (go test -update rewrites it).
func TestGolden(t *testing.T) {
	s, end := loadSample(t, 64<<10)
	ps, err := Detect(context.Background(), s, `{job="cosyvoice3", filename=~".*/(access|run|metrics).log"}`, t0.UnixNano(), end, int64(5*time.Minute), Options{})
	if err != nil {
		t.Fatal(err)
	}
	golden.JSON(t, filepath.Join("testdata", "cosyvoice.golden.json"), MarshalResponse(ps), " ")
}

func TestMarshalResponse(t *testing.T) {
	tests := []struct {
		in   []Pattern
		want string
	}{
		{nil, `{"status":"success","data":[]}`},
		{[]Pattern{{Pattern: `<_> msg="a&b" <_>`, Level: "info", Samples: []Sample{{1711839260, 1}, {1711839270, 2}}}, {Pattern: "x", Samples: []Sample{}}},
			`{"status":"success","data":[{"pattern":"<_> msg=\"a&b\" <_>","level":"info","samples":[[1711839260,1],[1711839270,2]]},{"pattern":"x","samples":[]}]}`},
	}
	for _, tc := range tests {
		if got := string(MarshalResponse(tc.in)); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

// BenchmarkDetect mines about 100k CosyVoice3 lines.
func BenchmarkDetect(b *testing.B) {
	s, end := loadSample(b, 11<<20)
	var lines int64
	ps, err := Detect(context.Background(), s, `{job="cosyvoice3"}`, t0.UnixNano(), end, int64(time.Minute), Options{MaxLines: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range ps {
		for _, x := range p.Samples {
			lines += x.Count
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Detect(context.Background(), s, `{job="cosyvoice3"}`, t0.UnixNano(), end, int64(time.Minute), Options{MaxLines: 1 << 30}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(lines), "lines/op")
	b.ReportMetric(float64(len(ps)), "patterns/op")
}

func TestPatternRender(t *testing.T) {
	tests := []struct {
		toks []string
		want string
		ok   bool
	}{
		{[]string{"a", Placeholder, Placeholder, "b"}, "a <_> b", true},
		{[]string{"{", glue + `"a":1,`, glue + Placeholder, Placeholder}, `{"a":1,<_>`, true},
		{[]string{Placeholder, glue + Placeholder}, "<_>", false},
		{[]string{"k=" + Placeholder}, "k=<_>", true},
	}
	for _, tc := range tests {
		got, ok := pattern(tc.toks)
		if got != tc.want || ok != tc.ok {
			t.Errorf("pattern(%q) = %q, %v; want %q, %v", tc.toks, got, ok, tc.want, tc.ok)
		}
	}
}
