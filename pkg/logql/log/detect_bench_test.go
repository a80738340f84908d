package log

import (
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/testshared"
)

// benchLines reads a loggen history into memory: every file's lines.
func benchLines(b *testing.B) ([][]string, int64) { return testshared.LoggenLines(b, "4MiB", "5") }

func BenchmarkDetectLevel(b *testing.B) {
	files, total := benchLines(b)
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			for _, l := range f {
				n += int(DetectLevel(l))
			}
		}
	}
	_ = n
}

func BenchmarkDetectTime(b *testing.B) {
	files, total := benchLines(b)
	ref := time.Now()
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			for _, l := range f {
				if _, ok, _ := DetectTime(l, time.UTC, ref); ok {
					n++
				}
			}
		}
	}
	_ = n
}

// BenchmarkDetectShapes measures level+time detection per line shape, on
// lines that need no generator.
func BenchmarkDetectShapes(b *testing.B) {
	shapes := []struct{ name, line string }{
		{"bracket", "[INFO] 2024-12-17T00:00:42Z Inference finished: mode=instruct text_len=108 audio_len=3.08s rtf=0.343 elapsed=5244ms seq=12"},
		{"uvicorn", `INFO:     127.0.0.1:59044 - "POST /inference_instruct HTTP/1.1" 200 OK seq=6`},
		{"logfmt", `ts=2024-12-17T00:00:09.061Z level=info msg="tts done" request_id=req-873e62a7 speaker=ja_female mode=vc text_len=264 seq=15`},
		{"json", `{"ts":"2024-12-17T00:00:55.734175678Z","level":"error","event":"request_done","msg":"request_done event","latency_ms":4899,"seq":61}`},
		{"python", "2024-12-17 14:30:52,123 - cosyvoice.cli.model - WARNING - inference slow: rtf=1.38"},
		{"loguru", "2024-12-17 14:30:52.123 | INFO     | cosyvoice.cli:inference:42 - done in 5244ms"},
		{"none", "Loading model weights from /root/CosyVoice/pretrained_models/CosyVoice2-0.5B"},
	}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(s.line)))
			b.ReportAllocs()
			n := 0
			for i := 0; i < b.N; i++ {
				n += int(DetectLevel(s.line))
				if _, ok, _ := DetectTime(s.line, time.UTC, time.Time{}); ok {
					n++
				}
			}
			_ = n
		})
	}
}
