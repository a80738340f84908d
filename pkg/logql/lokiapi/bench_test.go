package lokiapi

import (
	"fmt"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
)

// BenchmarkMarshal encodes the largest bodies Loki's API answers by
// default: 5,000 log lines over 10 streams, and 20 series of 1,000 points.
func BenchmarkMarshal(b *testing.B) {
	var streams []engine.Stream
	for s := 0; s < 10; s++ {
		st := engine.Stream{Labels: labels.FromStrings("job", "cosyvoice3", "instance", fmt.Sprint("host-", s))}
		for i := 0; i < 500; i++ {
			st.Entries = append(st.Entries, engine.Entry{Ts: 1734393600000000000 + int64(i)*1e9,
				Line: fmt.Sprintf("2024-12-17 14:30:%02d,000 - cosyvoice - INFO - Generating audio text_len=%d", i%60, i)})
		}
		streams = append(streams, st)
	}
	var matrix []engine.Series
	for s := 0; s < 20; s++ {
		se := engine.Series{Metric: labels.FromStrings("level", fmt.Sprint("l", s))}
		for i := 0; i < 1000; i++ {
			se.Points = append(se.Points, engine.Point{T: 1734393600000 + int64(i)*60000, V: float64(i) / 7})
		}
		matrix = append(matrix, se)
	}
	for _, bc := range []struct {
		name string
		r    engine.Result
	}{
		{"streams", engine.Result{Type: engine.ValueStreams, Streams: streams}},
		{"matrix", engine.Result{Type: engine.ValueMatrix, Matrix: matrix}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Marshal(bc.r)
			}
		})
	}
}
