package log

import (
	"testing"

	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"github.com/lokal-logs/lokal/pkg/labels"
)

// BenchmarkProjectionCorpus runs pipelines over the Loki conformance
// corpus (one op is one pass over it) as log queries (prefiltered, logs/…)
// and as samples of a range aggregation grouped by level (by-level/…),
// with projection (proj) and without (full).
func BenchmarkProjectionCorpus(b *testing.B) {
	streams := loadCorpus(b, testshared.Path(b, "loki-conformance"))
	type entry struct {
		ls   labels.Labels
		line string
	}
	var all []entry
	var total int64
	for _, s := range streams {
		ls := labels.FromMap(s.Stream)
		for _, v := range s.Values {
			all = append(all, entry{ls, v[1]})
			total += int64(len(v[1]))
		}
	}
	re, err := NewRegexpParser(`text_len=(?P<text_len>\d+)`)
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name   string
		stages []Stage
	}{
		{"logfmt+duration>10s", []Stage{NewLogfmtParser(LogfmtOptions{}), NewDurationLabelFilter("duration", CmpGt, 10e9)}},
		{"json+gpu_mem_gib>20", []Stage{NewJSONParser(), NewNumericLabelFilter("gpu_mem_gib", CmpGt, 20)}},
		{"logfmt", []Stage{NewLogfmtParser(LogfmtOptions{})}},
		{"regexp", []Stage{re}},
	}
	for _, tc := range cases {
		for _, kind := range []string{"logs", "by-level"} {
			for _, mode := range []string{"full", "proj"} {
				p := NewPipeline(tc.stages...)
				var forStream func(labels.Labels) func(string) bool
				switch kind {
				case "logs":
					if mode == "proj" {
						p = p.Prefiltered()
					}
					forStream = func(ls labels.Labels) func(string) bool {
						sp := p.ForStream(ls)
						return func(line string) bool { _, _, _, ok := sp.ProcessString(0, line); return ok }
					}
				default:
					ex := NewLineSampleExtractor(LineCount, p)
					if mode == "proj" {
						ex = ex.ProjectLabels([]string{"level"})
					}
					forStream = func(ls labels.Labels) func(string) bool {
						sx := ex.ForStream(ls)
						return func(line string) bool { _, _, _, ok := sx.ProcessString(0, line); return ok }
					}
				}
				b.Run(kind+"/"+tc.name+"/"+mode, func(b *testing.B) {
					procs := map[*labels.Label]func(string) bool{}
					b.ReportAllocs()
					b.SetBytes(total)
					kept := 0
					for b.Loop() {
						for _, e := range all {
							f := procs[&e.ls[0]]
							if f == nil {
								f = forStream(e.ls)
								procs[&e.ls[0]] = f
							}
							if f(e.line) {
								kept++
							}
						}
					}
					if kept == 0 {
						b.Fatal("no line kept")
					}
				})
			}
		}
	}
}
