package log

import (
	"sync"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

func TestNoopPipeline(t *testing.T) {
	base := labels.FromStrings("job", "app", "empty", "")
	p := NewPipeline()
	if !p.IsNoop() {
		t.Fatal("no stages: want noop")
	}
	sp := p.ForStream(base)
	line := "hello"
	out, ls, h, ok := sp.ProcessString(1, line)
	if !ok || out != line || ls.String() != `{job="app"}` || h != ls.Hash() {
		t.Fatalf("noop: %q %s %v", out, ls, ok)
	}
	if allocs := testing.AllocsPerRun(100, func() { sp.ProcessString(1, line) }); allocs != 0 {
		t.Errorf("noop pipeline allocates %v per line", allocs)
	}
}

func TestLabelsBuilder(t *testing.T) {
	b := NewLabelsBuilder(labels.FromStrings("a", "1", "b", "2"))
	if v, ok := b.Get("a"); !ok || v != "1" {
		t.Fatal("base label")
	}
	b.Set("c", "3")
	b.Set("a", "10")
	b.Del("b")
	if got := b.Labels().String(); got != `{a="10", c="3"}` {
		t.Fatalf("labels %s", got)
	}
	first := b.Labels()
	b.Reset()
	b.Set("c", "3")
	b.Set("a", "10")
	b.Del("b")
	second := b.Labels()
	if &first[0] != &second[0] {
		t.Error("equal result sets should share the cached slice")
	}
	b.Reset()
	if got := b.Labels().String(); got != `{a="1", b="2"}` {
		t.Fatalf("after reset %s", got)
	}
	b.enterStage(1)
	b.SetParsed("x", "first")
	b.SetParsed("x", "second")
	if v, _ := b.Get("x"); v != "second" {
		t.Errorf("a parser's last value should win, got %s", v)
	}
	b.enterStage(2)
	b.SetParsed("x", "third")
	if v, _ := b.Get("x"); v != "second" {
		t.Errorf("a later parser must not replace an earlier one's label, got %s", v)
	}
	b.Set("x", "formatted")
	if v, _ := b.Get("x"); v != "formatted" {
		t.Errorf("Set overrides parsed value, got %s", v)
	}
	b.SetErr(ErrJSON, "boom")
	if got := b.Labels().String(); got != `{__error__="JSONParserErr", __error_details__="boom", a="1", b="2", x="formatted"}` {
		t.Errorf("with error %s", got)
	}
	b.Del(ErrorLabel, ErrorDetailsLabel, "x")
	b.Set("b", "")
	if got := b.Labels().String(); got != `{a="1", b=""}` {
		t.Errorf("deleted error %s", got)
	}
	// the cache is bounded
	for i := 0; i < maxCachedLabelSets+10; i++ {
		b.Reset()
		b.Set("n", string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)))
		b.Labels()
	}
	if len(b.cache) > maxCachedLabelSets {
		t.Errorf("cache grew to %d", len(b.cache))
	}
}

func TestSampleExtractors(t *testing.T) {
	base := labels.FromStrings("job", "app")
	logfmt := NewLogfmtParser(LogfmtOptions{})
	lf, _ := NewLineFormatter("{{.msg}}")
	cases := []struct {
		name  string
		ex    *SampleExtractor
		line  string
		v     float64
		ls    string
		ok    bool
		lonly bool
	}{
		{"count", NewLineSampleExtractor(LineCount, NewPipeline()), "x y", 1, `{job="app"}`, true, true},
		{"bytes", NewLineSampleExtractor(LineBytes, NewPipeline()), "héllo", 6, `{job="app"}`, true, true},
		{"bytes after format", NewLineSampleExtractor(LineBytes, NewPipeline(logfmt, lf)), `msg=abc n=1`, 3, `{job="app", msg="abc", n="1"}`, true, false},
		{"count filtered", NewLineSampleExtractor(LineCount, NewPipeline(NewFilterStage(newContains("zzz")))), "x", 0, "", false, false},
		{"unwrap", NewLabelSampleExtractor("latency", ConvNone, NewPipeline(logfmt)), `latency=12.5 path=/`, 12.5, `{job="app", path="/"}`, true, false},
		{"unwrap duration", NewLabelSampleExtractor("audio_sec", ConvDurationSeconds, NewPipeline(logfmt)), `audio_sec=31.77s`, 31.77, `{job="app"}`, true, false},
		{"unwrap duration ms", NewLabelSampleExtractor("d", ConvDuration, NewPipeline(logfmt)), `d=250ms`, 0.25, `{job="app"}`, true, false},
		{"unwrap bytes", NewLabelSampleExtractor("size", ConvBytes, NewPipeline(logfmt)), `size=1976KB`, 1976000, `{job="app"}`, true, false},
		{"unwrap error", NewLabelSampleExtractor("size", ConvNone, NewPipeline(logfmt)), `size=big`, 0,
			`{__error__="SampleExtractionErr", __error_details__="strconv.ParseFloat: parsing \"big\": invalid syntax", job="app", size="big"}`, true, false},
		{"unwrap missing gives no sample", NewLabelSampleExtractor("size", ConvNone, NewPipeline(logfmt)), `other=1`, 0, "", false, false},
		{"unwrap error keeps the label", NewLabelSampleExtractor("size", ConvBytes, NewPipeline(logfmt)), `size=huge`, 0,
			`{__error__="SampleExtractionErr", __error_details__="strconv.ParseFloat: parsing \"\": invalid syntax", job="app", size="huge"}`, true, false},
		{"unwrap by", NewLabelSampleExtractor("n", ConvNone, NewPipeline(logfmt)).WithGrouping([]string{"path", "job"}, false),
			`n=3 path=/a other=x`, 3, `{job="app", path="/a"}`, true, false},
		{"unwrap without", NewLabelSampleExtractor("n", ConvNone, NewPipeline(logfmt)).WithGrouping([]string{"path"}, true),
			`n=3 path=/a other=x`, 3, `{job="app", other="x"}`, true, false},
		{"count by", NewLineSampleExtractor(LineCount, NewPipeline(logfmt)).WithGrouping([]string{"path"}, false),
			`n=3 path=/a`, 1, `{path="/a"}`, true, false},
		{"unwrap error filtered", NewLabelSampleExtractor("size", ConvNone, NewPipeline(logfmt),
			NewStringLabelFilter(labels.MustNewMatcher(labels.MatchEqual, ErrorLabel, ""))), `size=big`, 0, "", false, false},
		{"unwrap post filter", NewLabelSampleExtractor("size", ConvNone, NewPipeline(logfmt),
			NewNumericLabelFilter("size", CmpGt, 10)), `size=5`, 0, "", false, false},
	}
	for _, tc := range cases {
		sx := tc.ex.ForStream(base)
		v, ls, h, ok := sx.ProcessString(1, tc.line)
		if ok != tc.ok {
			t.Errorf("%s: ok=%v", tc.name, ok)
			continue
		}
		if tc.ex.LineOnly() != tc.lonly {
			t.Errorf("%s: LineOnly=%v", tc.name, tc.ex.LineOnly())
		}
		if !ok {
			continue
		}
		if v != tc.v || ls.String() != tc.ls || h != ls.Hash() {
			t.Errorf("%s: %v %s, want %v %s", tc.name, v, ls, tc.v, tc.ls)
		}
	}
}

// TestConcurrentStreams runs one pipeline over many streams at once: the
// race detector checks that per-stream state is never shared.
func TestConcurrentStreams(t *testing.T) {
	lf, _ := NewLineFormatter(`{{.msg | upper}} {{ __line__ | trunc 3 }}`)
	lbf, _ := NewLabelsFormatter([]LabelFormat{{Name: "m", Value: "{{.msg}}"}})
	re, _ := NewRegexpParser(`n=(?P<num>\d+)`)
	pat, _ := NewPatternParser(`<_> n=<n2>`)
	p := NewPipeline(NewLogfmtParser(LogfmtOptions{}), re, pat, NewJSONParser(), lbf, lf,
		NewKeepStage([]string{"msg", "num", "m", "n2"}, nil), NewDecolorizeStage())
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			sp := p.ForStream(labels.FromStrings("g", string(rune('a'+g))))
			for i := 0; i < 200; i++ {
				out, ls, _, ok := sp.ProcessString(int64(i), "msg=hi n=7")
				if !ok || out != "HI msg" || ls.Get("num") != "7" || ls.Get("m") != "hi" || ls.Get("n2") != "7" {
					t.Errorf("stream %d line %d: %q %s", g, i, out, ls)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestRewritesLine(t *testing.T) {
	lf, _ := NewLineFormatter("x")
	f, _ := NewLineFilter(OpContains, "x")
	for _, tc := range []struct {
		s    Stage
		want bool
	}{
		{lf, true}, {NewDecolorizeStage(), true}, {NewUnpackParser(), true},
		{NewJSONParser(), false}, {NewFilterStage(f), false}, {NewLogfmtParser(LogfmtOptions{}), false},
	} {
		if got := RewritesLine(tc.s); got != tc.want {
			t.Errorf("%T: %v", tc.s, got)
		}
	}
}

// TestStructuredMetadata: an entry's structured metadata is labels of its
// line, above the stream labels and below what stages set, as in Loki 3.
func TestStructuredMetadata(t *testing.T) {
	base := labels.FromStrings("job", "app", "level", "stream")
	md := labels.FromStrings("trace_id", "t1", "level", "md", "empty", "")
	logfmt := NewLogfmtParser(LogfmtOptions{})
	lf, _ := NewLineFormatter("{{.trace_id}} {{.level}} {{.job}}")
	cases := []struct {
		name string
		p    *Pipeline
		md   labels.Labels
		line string
		ls   string
		ok   bool
	}{
		{"no stages", NewPipeline(), md, "x", `{job="app", level="stream", level_extracted="md", trace_id="t1"}`, true},
		{"no metadata", NewPipeline(), nil, "x", `{job="app", level="stream"}`, true},
		{"label filter keeps", NewPipeline(NewStringLabelFilter(labels.MustNewMatcher(labels.MatchEqual, "trace_id", "t1"))), md, "x", `{job="app", level="stream", level_extracted="md", trace_id="t1"}`, true},
		{"label filter drops", NewPipeline(NewStringLabelFilter(labels.MustNewMatcher(labels.MatchEqual, "trace_id", "t2"))), md, "x", "", false},
		{"line_format sees it", NewPipeline(lf), md, "x", `{job="app", level="stream", level_extracted="md", trace_id="t1"}`, true},
		{"drop", NewPipeline(NewDropStage([]string{"trace_id"}, nil)), md, "x", `{job="app", level="stream", level_extracted="md"}`, true},
		{"keep", NewPipeline(NewKeepStage([]string{"trace_id"}, nil)), md, "x", `{trace_id="t1"}`, true},
		{"parsed label collides", NewPipeline(logfmt), md, "trace_id=t9 level=p", `{job="app", level="stream", level_extracted="p", trace_id="t1", trace_id_extracted="t9"}`, true},
	}
	for _, tc := range cases {
		sp := tc.p.ForStream(base)
		out, ls, h, ok := sp.ProcessStringMetadata(1, tc.line, tc.md)
		if ok != tc.ok || (ok && (ls.String() != tc.ls || h != ls.Hash())) {
			t.Errorf("%s: %v %s, want %v %s", tc.name, ok, ls, tc.ok, tc.ls)
		}
		if tc.name == "line_format sees it" && out != "t1 stream app" {
			t.Errorf("line_format: %q", out)
		}
		// The next line without metadata sees none of it.
		if _, ls, _, ok := sp.ProcessString(2, "y"); ok && ls.Has("trace_id") {
			t.Errorf("%s: metadata leaked to the next line: %s", tc.name, ls)
		}
	}
	ex := NewLineSampleExtractor(LineCount, NewPipeline()).WithGrouping([]string{"trace_id"}, false)
	if _, ls, _, ok := ex.ForStream(base).ProcessStringMetadata(1, "x", md); !ok || ls.String() != `{trace_id="t1"}` {
		t.Errorf("count by metadata: %v %s", ok, ls)
	}
}
