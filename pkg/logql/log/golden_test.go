package log

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lokal-logs/lokal/pkg/internal/golden"
	"github.com/lokal-logs/lokal/pkg/labels"
)

// TestGoldenNastyLines runs every parser and formatter over testdata/nasty.log
// (tracebacks, ANSI colours, CRLF, invalid UTF-8, broken JSON and logfmt,
// empty and long lines; entries are separated by NUL+newline) and compares
// the labels and lines with testdata/golden. Run with -update to rewrite
// them after an intended change, then review the diff.
func TestGoldenNastyLines(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "nasty.log"))
	if err != nil {
		t.Fatal(err)
	}
	entries := bytes.Split(bytes.TrimSuffix(raw, []byte("\x00\n")), []byte("\x00\n"))
	mk := func(s Stage, err error) Stage {
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	filter := func(op LineFilterOp, v string) Stage {
		f, err := NewLineFilter(op, v)
		if err != nil {
			t.Fatal(err)
		}
		return NewFilterStage(f)
	}
	pipelines := []struct {
		name   string
		stages []Stage
	}{
		{"json", []Stage{NewJSONParser()}},
		{"json_params", []Stage{mk(NewJSONExpressionParser([]LabelExtraction{{Label: "depth", Expr: "queue.depth"}, {Label: "tag", Expr: "tags[1]"}, {Label: "level"}}))}},
		{"logfmt", []Stage{NewLogfmtParser(LogfmtOptions{})}},
		{"logfmt_strict_keep_empty", []Stage{NewLogfmtParser(LogfmtOptions{Strict: true, KeepEmpty: true})}},
		{"logfmt_params", []Stage{mk(NewLogfmtExpressionParser(LogfmtOptions{}, []LabelExtraction{{Label: "msg"}, {Label: "k"}, {Label: "rid", Expr: "request_id"}}))}},
		{"regexp", []Stage{mk(NewRegexpParser(`(?P<first>\S+)\s+(?P<second>\S+)`))}},
		{"pattern", []Stage{mk(NewPatternParser(`<_> "<method> <path> <_>" <status> <_>`))}},
		{"unpack", []Stage{NewUnpackParser()}},
		{"decolorize_filter", []Stage{NewDecolorizeStage(), filter(OpRegexp, `^\[ERROR\]`)}},
		{"line_format", []Stage{NewLogfmtParser(LogfmtOptions{}), mk(NewLineFormatter(`{{ __line__ | trunc 20 }}|{{ .msg | default "-" }}|{{ __timestamp__ | date "15:04:05" }}`))}},
		{"label_format_keep", []Stage{NewJSONParser(), mk(NewLabelsFormatter([]LabelFormat{{Name: "lvl", Value: "level", Rename: true}, {Name: "q", Value: "{{ .queue_name | upper }}"}})), NewKeepStage([]string{"lvl", "q"}, nil)}},
		{"numeric_filter", []Stage{NewLogfmtParser(LogfmtOptions{}), NewDurationLabelFilter("duration", CmpGt, 1)}},
	}
	base := labels.FromStrings("job", "app", "level", "info")
	for _, p := range pipelines {
		t.Run(p.name, func(t *testing.T) {
			sp := NewPipeline(p.stages...).ForStream(base)
			var out strings.Builder
			for i, e := range entries {
				line, ls, _, ok := sp.Process(1734414342123456789, e)
				out.WriteString(strconv.Itoa(i))
				if !ok {
					out.WriteString(" dropped\n")
					continue
				}
				out.WriteString(" " + ls.String() + "\n  " + strconv.Quote(string(line)) + "\n")
			}
			path := filepath.Join("testdata", "golden", p.name+".txt")
			golden.Check(t, path, []byte(out.String()))
		})
	}
}
