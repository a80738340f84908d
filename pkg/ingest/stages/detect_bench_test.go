package stages

import (
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
)

// benchLines reads a loggen history into memory: every file's lines.
func benchLines(b *testing.B) ([][]string, int64) { return testshared.LoggenLines(b, "4MiB", "5") }

// BenchmarkDetectPipeline is the whole zero-stage path per line: level,
// time, traceback joining, label set choice. Lines/s = lines / (ns/op).
func BenchmarkDetectPipeline(b *testing.B) {
	benchPipeline(b, nil)
}

// BenchmarkStages is a typical Promtail pipeline (regex, labels, timestamp,
// drop) over the same corpus, for comparison with the zero-stage path.
func BenchmarkStages(b *testing.B) {
	benchPipeline(b, parseStages(b, `[{regex: {expression: '^\[(?P<lvl>\w+)\] (?P<ts>\S+)'}}, {labels: {lvl: }}, {timestamp: {source: ts, format: RFC3339}}, {drop: {source: lvl, value: DEBUG}}]`))
}

// benchPipeline runs every line of the loggen corpus through a pipeline of
// cfg (one per file, as ingest has) and reports lines/s.
func benchPipeline(b *testing.B, cfg []config.Stage) {
	files, total := benchLines(b)
	ps := make([]*Pipeline, len(files))
	for i := range ps {
		p, err := New(cfg, Options{Location: time.UTC})
		if err != nil {
			b.Fatal(err)
		}
		ps[i] = p
	}
	lines := 0
	for _, f := range files {
		lines += len(f)
	}
	now := time.Now()
	emit := func(Entry) {}
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, f := range files {
			for off, l := range f {
				ps[k].Process(Entry{Line: l, Ts: now, Offset: int64(off)}, emit)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
