package log

import (
	"strings"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

var projectLines = []string{
	`level=info duration=15ms level=warn pod=x msg="a b" 9k=v k-2=w`,
	`level=error duration=bad n=7`,
	`level=debug n=3 broken="unterminated`,
	`=odd level=info x==y duration=1ms`,
	`{"level":"warn","n":5,"nested":{"a":"x"},"arr":[1,{"b":2}],"level":"dup"}`,
	`{"level":"warn","n":5,`,
	`text_len=120 seed=7 Generating audio`,
	`level=info __error__=oops n=9`,
	``,
}

func mustStage(s Stage, err error) Stage {
	if err != nil {
		panic(err)
	}
	return s
}

// projectPipelines are pipelines projection applies to, or must leave alone.
var projectPipelines = map[string][]Stage{
	"logfmt|duration>10ms": {NewLogfmtParser(LogfmtOptions{}), NewDurationLabelFilter("duration", CmpGt, 10e6)},
	"logfmt --strict|level=info": {NewLogfmtParser(LogfmtOptions{Strict: true}),
		NewStringLabelFilter(labels.MustNewMatcher(labels.MatchEqual, "level", "info"))},
	"logfmt --keep-empty|broken=\"\"": {NewLogfmtParser(LogfmtOptions{KeepEmpty: true}),
		NewStringLabelFilter(labels.MustNewMatcher(labels.MatchEqual, "broken", ""))},
	"json|nested_a=x or n>4": {NewJSONParser(), NewOrLabelFilter(
		NewStringLabelFilter(labels.MustNewMatcher(labels.MatchEqual, "nested_a", "x")), NewNumericLabelFilter("n", CmpGt, 4))},
	"regexp|text_len>100": {mustStage(NewRegexpParser(`text_len=(?P<text_len>\d+) seed=(?P<seed>\d+)`)), NewNumericLabelFilter("text_len", CmpGt, 100)},
	"pattern|n>2":         {mustStage(NewPatternParser(`<_> n=<n> <_>`)), NewNumericLabelFilter("n", CmpGt, 2)},
	"logfmt|label_format|line_format|m=~": {NewLogfmtParser(LogfmtOptions{}),
		mustStage(NewLabelsFormatter([]LabelFormat{{Name: "m", Value: "level", Rename: true}})),
		mustStage(NewLineFormatter(`{{.duration}}`)),
		NewStringLabelFilter(labels.MustNewMatcher(labels.MatchRegexp, "m", "info|warn"))},
	"logfmt|line_format all|level!=x": {NewLogfmtParser(LogfmtOptions{}), mustStage(NewLineFormatter(`{{ range $k, $v := . }}{{$k}}{{end}}`)),
		NewStringLabelFilter(labels.MustNewMatcher(labels.MatchNotEqual, "level", "x"))},
	"logfmt|drop|keep|n>1": {NewLogfmtParser(LogfmtOptions{}), NewDropStage([]string{"pod"}, nil),
		NewKeepStage([]string{"n"}, []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "level", "info")}), NewNumericLabelFilter("n", CmpGt, 1)},
	"logfmt|json|level=warn": {NewLogfmtParser(LogfmtOptions{}), NewJSONParser(),
		NewStringLabelFilter(labels.MustNewMatcher(labels.MatchEqual, "level", "warn"))},
	"logfmt (no filter)": {NewLogfmtParser(LogfmtOptions{})},
}

// TestPrefilteredMatchesFull checks that a prefiltered pipeline gives the
// full pipeline's lines and labels, line by line, over many lines (past
// the probe that may switch a stream to full processing).
func TestPrefilteredMatchesFull(t *testing.T) {
	base := labels.FromStrings("job", "a", "pod", "p")
	for name, stages := range projectPipelines {
		full := NewPipeline(stages...)
		pre := full.Prefiltered()
		// without a filter, or past a template that reads all labels,
		// there is nothing to prefilter
		want := name != "logfmt (no filter)" && name != "logfmt|line_format all|level!=x"
		if got := pre != full; got != want {
			t.Errorf("%s: prefiltered %v, want %v", name, got, want)
		}
		fs, ps := full.ForStream(base), pre.ForStream(base)
		for i := 0; i < 3*prefilterProbe; i++ {
			line := projectLines[i%len(projectLines)]
			wo, wl, wh, wok := fs.ProcessString(int64(i), line)
			go_, gl, gh, gok := ps.ProcessString(int64(i), line)
			if wo != go_ || wok != gok || wh != gh || !labels.Equal(wl, gl) {
				t.Fatalf("%s: line %q\n got %q %s %v\nwant %q %s %v", name, line, go_, gl, gok, wo, wl, wok)
			}
		}
	}
}

// TestProjectLabels checks that a projected extractor's samples carry the
// full extractor's labels cut to the kept ones, and every label on a sample
// with an error.
func TestProjectLabels(t *testing.T) {
	base := labels.FromStrings("job", "a", "level", "stream")
	for name, stages := range projectPipelines {
		for _, keep := range [][]string{nil, {"level"}, {"level_extracted", "n"}, {"nested_a", "text_len"}, {"audio", "job"}} {
			for _, unwrap := range []string{"", "n", "duration"} {
				p := NewPipeline(stages...)
				full := NewLineSampleExtractor(LineBytes, p)
				if unwrap != "" {
					full = NewLabelSampleExtractor(unwrap, ConvDuration, p)
				}
				proj := full.ProjectLabels(keep)
				fs, ps := full.ForStream(base), proj.ForStream(base)
				for _, line := range projectLines {
					wv, wl, _, wok := fs.ProcessString(0, line)
					gv, gl, _, gok := ps.ProcessString(0, line)
					if wok != gok || wv != gv {
						t.Fatalf("%s keep %v unwrap %q: line %q: got %v %v, want %v %v", name, keep, unwrap, line, gv, gok, wv, wok)
					}
					if wl.Has(ErrorLabel) {
						if !labels.Equal(wl, gl) {
							t.Fatalf("%s keep %v: failed line %q\n got %s\nwant %s", name, keep, line, gl, wl)
						}
						continue
					}
					if !labels.Equal(wl.Keep(keep...), gl) {
						t.Fatalf("%s keep %v unwrap %q: line %q\n got %s\nwant %s", name, keep, unwrap, line, gl, wl)
					}
				}
			}
		}
	}
}

// TestProjectionExtractsLess checks that projection does what it is for:
// a projected parser leaves unneeded keys out.
func TestProjectionExtractsLess(t *testing.T) {
	line := `level=info duration=15ms pod=x msg="a b" n=3`
	for _, s := range []Stage{NewLogfmtParser(LogfmtOptions{}), NewJSONParser(), mustStage(NewRegexpParser(`level=(?P<level>\w+) duration=(?P<duration>\w+)`))} {
		in := line
		if _, ok := s.(*jsonStage); ok {
			in = `{"level":"info","duration":"15ms","pod":"x","n":3}`
		}
		ex := NewLineSampleExtractor(LineCount, NewPipeline(s)).ProjectLabels([]string{"level"})
		// the projected pipeline's own result: stream and parsed labels
		_, ls, _, _ := ex.pipeline.ForStream(labels.FromStrings("job", "a")).ProcessString(0, in)
		if got := ls.String(); got != `{job="a", level="info"}` {
			t.Errorf("%T: projected labels %s", s, got)
		}
	}
}

func FuzzLogfmtProjection(f *testing.F) {
	for _, s := range projectLines {
		f.Add(s, "level duration", false, false)
		f.Add(s, "n broken", true, true)
	}
	f.Fuzz(func(t *testing.T, line, keys string, strict, keepEmpty bool) {
		opts := LogfmtOptions{Strict: strict, KeepEmpty: keepEmpty}
		keep := strings.Fields(keys)
		full := NewLineSampleExtractor(LineCount, NewPipeline(NewLogfmtParser(opts)))
		proj := full.ProjectLabels(keep)
		_, wl, _, _ := full.ForStream(fuzzBase).ProcessString(0, line)
		_, gl, _, _ := proj.ForStream(fuzzBase).ProcessString(0, line)
		if wl.Has(ErrorLabel) {
			if !labels.Equal(wl, gl) {
				t.Fatalf("failed line: got %s, want %s", gl, wl)
			}
			return
		}
		if !labels.Equal(wl.Keep(keep...), gl) {
			t.Fatalf("keep %v: got %s, want %s", keep, gl, wl)
		}
	})
}
