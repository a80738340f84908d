package log

import (
	"encoding/json"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

type pushStream struct {
	Stream map[string]string `json:"stream"`
	Values [][2]string       `json:"values"`
}

type lokiAnswer struct {
	Data struct {
		Result []pushStream `json:"result"`
	} `json:"data"`
}

func loadCorpus(t testing.TB, dir string) []pushStream {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "entries.push.json"))
	if err != nil {
		t.Fatal(err)
	}
	var push struct {
		Streams []pushStream `json:"streams"`
	}
	if err := json.Unmarshal(b, &push); err != nil {
		t.Fatal(err)
	}
	return push.Streams
}

type outEntry struct {
	ts     int64
	labels string
	line   string
}

// TestLokiConformance runs the log stages of Loki's sampled log queries over
// the conformance corpus and checks every entry Loki returned: same labels
// (including __error__, _extracted and empty values), same line. When Loki
// returned fewer entries than the limit, the full result must match too.
func TestLokiConformance(t *testing.T) {
	dir := testshared.Path(t, "loki-conformance")
	corpus := loadCorpus(t, dir)
	m := func(t labels.MatchType, n, v string) *labels.Matcher { return labels.MustNewMatcher(t, n, v) }
	must := func(s Stage, err error) Stage {
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mustF := func(f Filter, err error) Stage {
		if err != nil {
			t.Fatal(err)
		}
		return NewFilterStage(f)
	}
	metrics := m(labels.MatchRegexp, "filename", ".*/metrics.log")
	job := m(labels.MatchEqual, "job", "cosyvoice3")
	run := m(labels.MatchRegexp, "filename", ".*/run.log")
	cases := []struct {
		id       string
		limit    int
		selector []*labels.Matcher
		stages   []Stage
	}{
		{"012", 1000, []*labels.Matcher{job}, []Stage{mustF(NewLineFilter(OpRegexp, "timeout|fail"))}},
		{"015", 300, []*labels.Matcher{job}, []Stage{
			mustF(NewLineFilter(OpNotContains, "INFO")), mustF(NewLineFilter(OpNotContains, "DEBUG")), mustF(NewLineFilter(OpNotContains, "level=info")),
		}},
		{"018", 1000, []*labels.Matcher{job}, []Stage{mustF(NewLineFilter(OpContains, "needle-5ff109ff246a481d"))}},
		{"021", 300, []*labels.Matcher{run}, []Stage{mustF(NewLineFilter(OpNotPattern, "<_>Generating audio<_>"))}},
		{"024", 50, []*labels.Matcher{m(labels.MatchRegexp, "filename", ".*/access.log")}, []Stage{mustF(NewIPLineFilter("127.0.0.1", false))}},
		{"027", 200, []*labels.Matcher{metrics}, []Stage{
			NewLogfmtParser(LogfmtOptions{}),
			NewAndLabelFilter(NewStringLabelFilter(m(labels.MatchEqual, "speaker", "zh_female_1")), NewNumericLabelFilter("text_len", CmpGe, 300)),
		}},
		{"030", 200, []*labels.Matcher{metrics}, []Stage{
			NewLogfmtParser(LogfmtOptions{}),
			NewAndLabelFilter(
				NewOrLabelFilter(NewStringLabelFilter(m(labels.MatchEqual, "speaker", "ja_female")), NewStringLabelFilter(m(labels.MatchEqual, "speaker", "yue_female"))),
				NewDurationLabelFilter("duration", CmpLt, 100*time.Millisecond)),
		}},
		{"033", 50, []*labels.Matcher{metrics}, []Stage{NewLogfmtParser(LogfmtOptions{}), NewNumericLabelFilter("audio_sec", CmpGt, 30)}},
		{"036", 50, []*labels.Matcher{job, run}, []Stage{
			NewLogfmtParser(LogfmtOptions{KeepEmpty: true}), NewStringLabelFilter(m(labels.MatchNotEqual, "seed", "")),
		}},
		{"039", 200, []*labels.Matcher{m(labels.MatchRegexp, "filename", ".*/events.json.log")}, []Stage{
			NewJSONParser(), NewStringLabelFilter(m(labels.MatchEqual, "error", "cuda oom")),
		}},
		{"042", 100, []*labels.Matcher{m(labels.MatchRegexp, "filename", ".*/cosyvoice.log")}, []Stage{
			mustF(NewLineFilter(OpContains, "Inference finished")), NewLogfmtParser(LogfmtOptions{}), NewNumericLabelFilter("rtf", CmpGt, 1.2),
		}},
		{"045", 200, []*labels.Matcher{job, run}, []Stage{
			mustF(NewLineFilter(OpContains, "Generating audio")),
			must(NewRegexpParser(`text_len=(?P<text_len>\d+), seed=(?P<seed>\d+)`)),
			must(NewLineFormatter("{{.text_len}} chars, seed={{.seed}}")),
		}},
		{"048", 100, []*labels.Matcher{metrics}, []Stage{
			NewLogfmtParser(LogfmtOptions{}),
			must(NewLineFormatter(`{{ __line__ | trunc 30 }}|{{ __timestamp__ | date "15:04:05" }}|{{ .request_id | trimPrefix "req-" }}`)),
		}},
		{"051", 100, []*labels.Matcher{metrics}, []Stage{
			NewLogfmtParser(LogfmtOptions{}),
			must(NewLabelsFormatter([]LabelFormat{{Name: "spk", Value: "speaker", Rename: true}, {Name: "dur", Value: "{{.duration}}"}})),
			NewKeepStage([]string{"spk", "dur", "level"}, nil),
		}},
		{"054", 100, []*labels.Matcher{metrics}, []Stage{
			NewLogfmtParser(LogfmtOptions{}),
			must(NewLabelsFormatter([]LabelFormat{{Name: "level", Value: "{{ .level | upper }}"}})),
			NewStringLabelFilter(m(labels.MatchEqual, "level", "ERROR")),
		}},
		{"057", 100, []*labels.Matcher{metrics}, []Stage{
			NewLogfmtParser(LogfmtOptions{}), must(NewLineFormatter("{{.msg}}")), mustF(NewLineFilter(OpContains, "failed")),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, "answers", tc.id+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var ans lokiAnswer
			if err := json.Unmarshal(b, &ans); err != nil {
				t.Fatal(err)
			}
			p := NewPipeline(tc.stages...)
			var all []outEntry
			for _, s := range corpus {
				ls := labels.FromMap(s.Stream)
				if !labels.MatchLabels(ls, tc.selector...) {
					continue
				}
				sp := p.ForStream(ls)
				for _, v := range s.Values {
					ts, _ := strconv.ParseInt(v[0], 10, 64)
					out, res, _, ok := sp.ProcessString(ts, v[1])
					if !ok {
						continue
					}
					e := outEntry{ts: ts, labels: res.String(), line: out}
					all = append(all, e)
				}
			}
			n := 0
			for _, s := range ans.Data.Result {
				want := labels.FromMap(s.Stream)
				for _, v := range s.Values {
					n++
					ts, _ := strconv.ParseInt(v[0], 10, 64)
					found := false
					for i := range all {
						if all[i].ts == ts && all[i].labels == want.String() && all[i].line == v[1] {
							found = true
							break
						}
					}
					if !found {
						// report what we produced for that timestamp
						var near []string
						for _, e := range all {
							if e.ts == ts {
								near = append(near, e.labels+" "+e.line)
							}
						}
						t.Fatalf("Loki returned %s %s at %d; we produced %v", want, v[1], ts, near)
					}
				}
			}
			if n < tc.limit && len(all) != n {
				sort.Slice(all, func(i, j int) bool { return all[i].ts > all[j].ts })
				t.Fatalf("Loki returned all %d matching entries, we matched %d", n, len(all))
			}
			if n == tc.limit && len(all) < n {
				t.Fatalf("Loki hit the limit %d, we matched only %d", n, len(all))
			}
		})
	}
}
