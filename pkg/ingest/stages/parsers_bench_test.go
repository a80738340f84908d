package stages

import (
	"testing"
	"time"
)

// BenchmarkParserStages runs the logfmt and json stages (with labels) over
// one line each, the stages that share their scanners with `| logfmt` and
// `| json` in logql/log.
func BenchmarkParserStages(b *testing.B) {
	cases := []struct{ name, stages, line string }{
		{"logfmt", `[{logfmt: {}}]`, `ts=2024-12-17T02:46:15.301Z level=info msg="tts done" request_id=req-5358c72b speaker=zh_female_1 mode=instruct text_len=330 audio_sec=0.72s duration=10040ms rtf=1.248 gpu_mem=19.8GiB bytes=1976KB seq=10096`},
		{"logfmt_mapping", `[{logfmt: {mapping: {lvl: level, m: msg}}}, {labels: {lvl: }}]`, `ts=2024-12-17T02:46:15.301Z level=info msg="tts \"done\"" request_id=req-5358c72b speaker=zh_female_1 mode=instruct text_len=330 seq=10096`},
		{"json", `[{json: {expressions: {lvl: level, d: queue.depth, n: "gpu.mem_gib", e: error}}}, {labels: {lvl: }}]`, `{"ts":"2024-12-17T04:27:21.422433971Z","level":"error","event":"gpu_stats","msg":"gpu_stats event","latency_ms":1321,"queue":{"depth":30,"name":"tts"},"gpu":{"util":45,"mem_gib":12.3},"error":"cuda oom","seq":16231}`},
	}
	// A match stage's selector, with line filters, on every line.
	cases = append(cases, struct{ name, stages, line string }{"match_filters",
		`[{match: {selector: '{filename=~".+"} |= "tts" !~ "fail(ed)?" != "oom"', action: drop}}]`, cases[0].line})
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p, err := New(parseStages(b, c.stages), Options{Location: time.UTC})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			emit := func(Entry) {}
			b.SetBytes(int64(len(c.line)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.Process(Entry{Line: c.line, Ts: now, Offset: int64(i)}, emit)
			}
		})
	}
}
