package lokiapi

import (
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
)

func TestIndexBodiesGolden(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"index-stats", MarshalIndexStats(engine.IndexStats{Streams: 3, Chunks: 12, Entries: 4096, Bytes: 1 << 40})},
		{"index-stats-empty", MarshalIndexStats(engine.IndexStats{})},
		{"detected-fields", MarshalDetectedFields([]engine.DetectedField{
			{Label: "latency", Type: "float", Cardinality: 60, Parsers: []string{"json"}},
			{Label: "msg", Type: "string", Cardinality: 1, Parsers: []string{"json", "logfmt"}},
			{Label: "trace_id", Type: "string", Cardinality: 7},
			{Label: `odd "name" <&>`, Type: "bytes", Cardinality: 2, Parsers: []string{"logfmt"}},
		}, 1000)},
		{"detected-fields-empty", MarshalDetectedFields(nil, 50)},
		{"detected-field-values", MarshalDetectedFieldValues([]string{"200", "404", "tab\there"}, 1000)},
		{"detected-field-values-empty", MarshalDetectedFieldValues(nil, 10)},
		{"detected-labels", MarshalDetectedLabels([]engine.DetectedLabel{{Label: "cluster", Cardinality: 1}, {Label: "pod", Cardinality: 42}})},
		{"detected-labels-empty", MarshalDetectedLabels(nil)},
		// Volume answers are engine Results: a vector (index/volume) and a
		// matrix (index/volume_range), with {name=""} metrics when
		// aggregated by labels.
		{"volume", Marshal(engine.Result{Type: engine.ValueVector, Vector: []engine.Sample{
			{Metric: labels.FromStrings("service_name", "api"), T: 1734415200000, V: 123456},
			{Metric: labels.FromStrings("job", ""), T: 1734415200000, V: 7},
		}})},
		{"volume-range", Marshal(engine.Result{Type: engine.ValueMatrix, Matrix: []engine.Series{
			{Metric: labels.FromStrings("service_name", "api"), Points: []engine.Point{{T: 1734415200000, V: 100}, {T: 1734415260000, V: 50}}},
		}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGolden(t, tt.name, tt.body)
		})
	}
}
