package engine

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

// guideStore holds run.sh lines in the guide's shape and cosyvoice.log
// lines, one a minute for ten minutes from t=0.
func guideStore(t *testing.T) *memstore.Store {
	t.Helper()
	st := memstore.New()
	add := func(ls labels.Labels, line func(i int) string) {
		es := make([]store.Entry, 10)
		for i := range es {
			es[i] = store.Entry{Ts: int64(time.Duration(i) * time.Minute), Seq: uint64(i), Line: line(i)}
		}
		if err := st.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{Labels: ls, Entries: es}}}); err != nil {
			t.Fatal(err)
		}
	}
	add(labels.FromStrings("job", "cosyvoice3", "instance", "host-1", "filename", "host-1/run.log", "level", "info"), func(i int) string {
		return fmt.Sprintf("2024-12-17 14:3%d:52 INFO Generating audio: text_len=%d, seed=%d seq=%d", i, 10+i, 40+i, i)
	})
	add(labels.FromStrings("job", "cosyvoice3", "instance", "host-1", "filename", "host-1/cosyvoice.log", "level", "error"), func(i int) string {
		return fmt.Sprintf("[ERROR] 2024-12-17T14:3%d:00Z Request timeout after %ds", i, 30+i)
	})
	return st
}

// sameAnswer compares everything a query answers but its warnings and
// timing.
func sameAnswer(a, b Result) bool {
	a.Warnings, b.Warnings = nil, nil
	a.Stats.ExecTime, b.Stats.ExecTime = 0, 0
	return reflect.DeepEqual(a, b)
}

func TestHints(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  []string // hints, exactly
		// a line of the answer to the query a hint suggests (after
		// "e.g. "), when it has one
		suggested string
	}{
		{
			name:  "the guide's line_format without a parser",
			query: `{job="cosyvoice3"} |= "Generating audio" | line_format "{{.text_len}} chars, seed={{.seed}}"`,
			want: []string{"`text_len` and `seed` are not labels here (no stream has them and no stage before line_format extracts them, so they read as empty); " +
				"add `| logfmt` or `| regexp` before line_format, e.g. " +
				`{job="cosyvoice3"} |= "Generating audio" | regexp "text_len=(?P<text_len>[^, ]+)" | regexp "seed=(?P<seed>[^, ]+)" | line_format "{{.text_len}} chars, seed={{.seed}}"`},
			suggested: "19 chars, seed=49",
		},
		{
			name:  "one field",
			query: `{job="cosyvoice3"} | line_format "{{.seed}}"`,
			want: []string{"`seed` is not a label here (no stream has it and no stage before line_format extracts it, so it reads as empty); " +
				"add `| logfmt` or `| regexp` before line_format, e.g. " +
				`{job="cosyvoice3"} | regexp "seed=(?P<seed>[^, ]+)" | line_format "{{.seed}}"`},
			suggested: "49",
		},
		{
			name:  "label filter",
			query: `{job="cosyvoice3"} | text_len > 15`,
			want: []string{"`text_len` is not a label here (no stream has it and no stage before `| text_len > 15` extracts it, so it reads as empty); " +
				"add `| logfmt` or `| regexp` before `| text_len > 15`, e.g. " +
				`{job="cosyvoice3"} | regexp "text_len=(?P<text_len>[^, ]+)" | text_len > 15`},
			suggested: "2024-12-17 14:39:52 INFO Generating audio: text_len=19, seed=49 seq=9",
		},
		{
			name:  "label_format, in a metric query",
			query: `sum by (n) (count_over_time({job="cosyvoice3"} | label_format n=text_len [5m]))`,
			want: []string{"`text_len` is not a label here (no stream has it and no stage before label_format extracts it, so it reads as empty); " +
				"add `| logfmt` or `| regexp` before label_format, e.g. " +
				`sum by (n) (count_over_time({job="cosyvoice3"} | regexp "text_len=(?P<text_len>[^, ]+)" | label_format n=text_len [5m]))`},
		},
		{
			name:  "a selector label with no values",
			query: `{job="cosyvoice3", service="tts"}`,
			want:  []string{"no stream has a `service` label between 1970-01-01T00:00:00Z and 1970-01-01T00:10:00Z, so {job=\"cosyvoice3\", service=\"tts\"} selects nothing; labels there: filename, instance, job, level"},
		},
		{
			name:  "a selector value that is not there",
			query: `count_over_time({job="cosyvoice3", level="warning"}[5m])`,
			want:  []string{"`level` has no value matching {level=\"warning\"} between 1969-12-31T23:55:00Z and 1970-01-01T00:10:00Z, so {job=\"cosyvoice3\", level=\"warning\"} selects nothing; its values there: error, info"},
		},
		{name: "logfmt extracts anything", query: `{job="cosyvoice3"} |= "Generating audio" | logfmt | line_format "{{.text_len}} chars, seed={{.seed}}"`},
		{name: "the clean regexp", query: `{job="cosyvoice3"} |= "Generating audio" | regexp "text_len=(?P<text_len>\\d+), seed=(?P<seed>\\d+)" | line_format "{{.text_len}} chars, seed={{.seed}}"`},
		{name: "pattern", query: `{job="cosyvoice3"} | pattern "<_> text_len=<text_len>, <_>" | line_format "{{.text_len}}"`},
		{name: "logfmt with parameters", query: `{job="cosyvoice3"} | logfmt seed | seed > 45`},
		{name: "json with parameters", query: `{job="cosyvoice3"} | json n="a.b" | n != ""`},
		{name: "stream labels", query: `{job="cosyvoice3"} | level="error" | line_format "{{.instance}} {{ .level | upper }} {{ __line__ }}"`},
		{name: "label_format makes a label", query: `{job="cosyvoice3"} | label_format a="{{.level}}" | line_format "{{.a}}"`},
		{name: "Loki's own labels", query: `{job="cosyvoice3"} | __error__="" | line_format "{{.__error__}}"`},
		{name: "a selector that selects", query: `{job="cosyvoice3", level="info"}`},
		{
			name:  "with and range change the dot",
			query: `{job="cosyvoice3"} | line_format "{{ with .level }}{{ .x }}{{ end }}{{ if .y }}{{ .z }}{{ end }}"`,
			want: []string{"`y` and `z` are not labels here (no stream has them and no stage before line_format extracts them, so they read as empty); " +
				"add `| logfmt` or `| regexp` before line_format, e.g. " +
				`{job="cosyvoice3"} | regexp "y=(?P<y>[^, ]+)" | regexp "z=(?P<z>[^, ]+)" | line_format "{{ with .level }}{{ .x }}{{ end }}{{ if .y }}{{ .z }}{{ end }}"`},
		},
	}
	st := guideStore(t)
	with, without := New(st, Options{}), New(st, Options{})
	without.noHints = true
	ctx := context.Background()
	params := func(q string) Params {
		return Params{Query: q, Start: at(0), End: at(10 * time.Minute), Step: time.Minute, Limit: 100, Direction: store.Backward}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := with.Query(ctx, params(tt.query))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Warnings, tt.want) {
				t.Errorf("hints:\n%q\nwant:\n%q", res.Warnings, tt.want)
			}
			plain, err := without.Query(ctx, params(tt.query))
			if err != nil {
				t.Fatal(err)
			}
			if len(plain.Warnings) != 0 {
				t.Errorf("hints with noHints: %q", plain.Warnings)
			}
			if !sameAnswer(res, plain) {
				t.Errorf("the answer changed with hints:\n%+v\nwithout:\n%+v", res, plain)
			}
			if tt.suggested == "" {
				return
			}
			_, q, ok := strings.Cut(tt.want[0], ", e.g. ")
			if !ok {
				t.Fatalf("no suggestion in %q", tt.want[0])
			}
			sres, err := without.Query(ctx, params(q))
			if err != nil {
				t.Fatalf("the suggestion %s: %v", q, err)
			}
			var lines []string
			for _, s := range sres.Streams {
				for _, e := range s.Entries {
					lines = append(lines, e.Line)
				}
			}
			if !slices.Contains(lines, tt.suggested) {
				t.Errorf("the suggestion's answer %q lacks %q", lines, tt.suggested)
			}
		})
	}
}

func TestTemplateFields(t *testing.T) {
	tests := []struct {
		tmpl string
		want []string
	}{
		{"{{.text_len}} chars, seed={{.seed}}", []string{"text_len", "seed"}},
		{"{{ .a.b }} {{ $.c }} {{ printf \"%s\" .d }} {{ (.e) }}", []string{"a", "c", "d", "e"}},
		{"{{ range .r }}{{ .inner }}{{ else }}{{ .other }}{{ end }}", []string{"r", "other"}},
		{"{{ __line__ }} {{ __timestamp__ | date \"15:04\" }}", nil},
		{"{{ .unclosed", nil},
		{"no template", nil},
	}
	for _, tt := range tests {
		if got := templateFields(tt.tmpl); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("templateFields(%q) = %q, want %q", tt.tmpl, got, tt.want)
		}
	}
}

func TestLookBack(t *testing.T) {
	tests := []struct {
		query string
		want  time.Duration
	}{
		{`{job="a"} |= "x"`, 0},
		{`count_over_time({job="a"}[5m])`, 5 * time.Minute},
		{`count_over_time({job="a"}[5m] offset 1h)`, time.Hour + 5*time.Minute},
		// A negative offset reads later; it does not shorten the reach back.
		{`count_over_time({job="a"}[5m] offset -1m)`, 5 * time.Minute},
		{`sum(rate({job="a"}[1m])) / sum(rate({job="b"}[10m] offset 5m))`, 15 * time.Minute},
	}
	for _, tt := range tests {
		expr, err := syntax.ParseExpr(tt.query)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if got := LookBack(expr); got != tt.want {
			t.Errorf("LookBack(%s) = %s, want %s", tt.query, got, tt.want)
		}
	}
}
