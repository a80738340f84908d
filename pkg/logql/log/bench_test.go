package log

import (
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"regexp"
	"strings"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
)

var (
	benchASCII   = []byte(`[INFO] 2024-12-17T05:37:46Z Inference finished: mode=cross_lingual text_len=103 audio_len=0.74s rtf=1.336 elapsed=17679ms seq=20504 request handled by worker 3 on gpu 0`)
	benchUnicode = []byte(`[INFO] 2024-12-17T05:37:46Z 推理完成: 模式=跨语言 文本长度=103 音频=0.74秒 说话人=中文女 rtf=1.336 elapsed=17679ms seq=20504 请求由工作进程 3 处理`)
	benchLogfmt  = []byte(`ts=2024-12-17T02:46:15.301Z level=info msg="tts done" request_id=req-5358c72b speaker=zh_female_1 mode=instruct text_len=330 audio_sec=0.72s duration=10040ms rtf=1.248 gpu_mem=19.8GiB bytes=1976KB seq=10096`)
	benchJSON    = []byte(`{"ts":"2024-12-17T04:27:21.422433971Z","level":"error","event":"gpu_stats","msg":"gpu_stats event","latency_ms":1321,"queue":{"depth":30,"name":"tts"},"gpu":{"util":45,"mem_gib":12.3},"error":"cuda oom","seq":16231}`)
)

func BenchmarkLineFilter(b *testing.B) {
	type fc struct {
		name  string
		op    LineFilterOp
		value string
	}
	filters := []fc{
		{"contains", OpContains, "elapsed="},
		{"contains-miss", OpContains, "CUDA out of memory"},
		{"regexp-alternation", OpRegexp, "timeout|fail|finished"},
		{"regexp-alternation-miss", OpRegexp, "timeout|fail|oom"},
		{"regexp-fold", OpRegexp, "(?i)ELAPSED"},
		{"regexp-fold-miss", OpRegexp, "(?i)cuda out"},
		{"regexp-fold-alternation-miss", OpRegexp, "(?i)(timeout|oom)"},
		{"regexp-general", OpRegexp, `rtf=\d+\.\d+`},
		{"regexp-general-miss", OpRegexp, `oom=\d+\.\d+`},
		{"pattern", OpPattern, "<_> Inference finished<_>"},
	}
	for _, lc := range []struct {
		name string
		line []byte
	}{{"ascii", benchASCII}, {"unicode", benchUnicode}} {
		for _, f := range filters {
			fl, err := NewLineFilter(f.op, f.value)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(lc.name+"/"+f.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(lc.line)))
				for i := 0; i < b.N; i++ {
					fl.Match(lc.line)
				}
			})
		}
		ipf, _ := NewIPLineFilter("10.0.0.0/8", false)
		b.Run(lc.name+"/ip", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(lc.line)))
			for i := 0; i < b.N; i++ {
				ipf.Match(lc.line)
			}
		})
	}
}

// BenchmarkRegexpBaseline is what the optimised filters replace.
func BenchmarkRegexpBaseline(b *testing.B) {
	for _, expr := range []string{"timeout|fail|oom", "(?i)cuda out"} {
		f := regexpFilter{re: regexp.MustCompile(expr)}
		b.Run(expr, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(benchASCII)))
			for i := 0; i < b.N; i++ {
				f.Match(benchASCII)
			}
		})
	}
}

func BenchmarkPipeline(b *testing.B) {
	base := labels.FromStrings("job", "cosyvoice3", "filename", "host-1/metrics.log", "level", "info")
	lf, _ := NewLineFormatter("{{.msg}} {{.speaker}}")
	contains, _ := NewLineFilter(OpContains, "tts done")
	cases := []struct {
		name   string
		line   []byte
		stages []Stage
	}{
		{"noop", benchLogfmt, nil},
		{"filter", benchLogfmt, []Stage{NewFilterStage(contains)}},
		{"logfmt", benchLogfmt, []Stage{NewLogfmtParser(LogfmtOptions{})}},
		{"logfmt+filter", benchLogfmt, []Stage{NewLogfmtParser(LogfmtOptions{}), NewNumericLabelFilter("text_len", CmpGe, 300)}},
		{"json", benchJSON, []Stage{NewJSONParser()}},
		{"logfmt+line_format", benchLogfmt, []Stage{NewLogfmtParser(LogfmtOptions{}), lf}},
	}
	for _, tc := range cases {
		sp := NewPipeline(tc.stages...).ForStream(base)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.line)))
			for i := 0; i < b.N; i++ {
				sp.Process(int64(i), tc.line)
			}
		})
	}
}

func BenchmarkSanitize(b *testing.B) {
	key := []byte(strings.Repeat("request.headers.User-Agent", 2))
	var dst []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst = appendSanitized(dst[:0], key, true)
	}
}

// BenchmarkCorpus runs typical pipelines over the Loki conformance corpus
// (21,659 CosyVoice3 entries); one op is one pass over the whole corpus.
func BenchmarkCorpus(b *testing.B) {
	dir := testshared.Path(b, "loki-conformance")
	streams := loadCorpus(b, dir)
	type entry struct {
		ls   labels.Labels
		line []byte
	}
	var all []entry
	var total int64
	for _, s := range streams {
		ls := labels.FromMap(s.Stream)
		for _, v := range s.Values {
			all = append(all, entry{ls, []byte(v[1])})
			total += int64(len(v[1]))
		}
	}
	mustF := func(op LineFilterOp, v string) Stage {
		f, err := NewLineFilter(op, v)
		if err != nil {
			b.Fatal(err)
		}
		return NewFilterStage(f)
	}
	lf, _ := NewLineFormatter("{{.msg}} {{.speaker}}")
	cases := []struct {
		name   string
		stages []Stage
	}{
		{"noop", nil},
		{"needle", []Stage{mustF(OpContains, "needle-5ff109ff246a481d")}},
		{"alternation", []Stage{mustF(OpRegexp, "timeout|fail")}},
		{"fold", []Stage{mustF(OpRegexp, "(?i)cuda out of memory")}},
		{"logfmt+filter", []Stage{NewLogfmtParser(LogfmtOptions{}), NewNumericLabelFilter("text_len", CmpGe, 300)}},
		{"json", []Stage{NewJSONParser()}},
		{"logfmt+line_format", []Stage{NewLogfmtParser(LogfmtOptions{}), lf}},
		{"decolorize", []Stage{NewDecolorizeStage()}},
	}
	for _, tc := range cases {
		p := NewPipeline(tc.stages...)
		b.Run(tc.name, func(b *testing.B) {
			sps := map[*labels.Label]*StreamPipeline{}
			b.ReportAllocs()
			b.SetBytes(total)
			for i := 0; i < b.N; i++ {
				for _, e := range all {
					sp := sps[&e.ls[0]]
					if sp == nil {
						sp = p.ForStream(e.ls)
						sps[&e.ls[0]] = sp
					}
					sp.Process(0, e.line)
				}
			}
		})
	}
}

// BenchmarkScanLogfmt scans a metrics.log line in both dialects: Loki's
// (`| logfmt`) and Promtail's (the ingest logfmt stage).
func BenchmarkScanLogfmt(b *testing.B) {
	const line = `ts=2024-12-17T02:46:15.301Z level=info msg="tts done" request_id=req-5358c72b speaker=zh_female_1 mode=instruct text_len=330 audio_sec=0.72s duration=10040ms rtf=1.248 gpu_mem=19.8GiB bytes=1976KB seq=10096`
	for _, d := range []struct {
		name    string
		dialect LogfmtDialect
	}{{"loki", LogfmtLoki}, {"promtail", LogfmtPromtail}} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			pairs := 0
			for b.Loop() {
				ScanLogfmt(line, d.dialect, func(_, _ string) { pairs++ })
			}
			if pairs == 0 {
				b.Fatal("no pairs")
			}
		})
	}
}
