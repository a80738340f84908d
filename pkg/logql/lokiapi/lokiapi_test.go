package lokiapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/golden"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
)

// stable zeroes what changes between runs.
func stable(r engine.Result) engine.Result {
	r.Stats.ExecTime = 0
	return r
}

func TestMarshalGolden(t *testing.T) {
	ls := labels.FromStrings("app", "api", "level", "info")
	tests := []struct {
		name string
		r    engine.Result
	}{
		{"streams", engine.Result{Type: engine.ValueStreams, Streams: []engine.Stream{
			{Labels: ls, Entries: []engine.Entry{
				{Ts: 1734393616963987737, Line: "GET /users <200> & \"quoted\""},
				{Ts: 1734393600000000000, Line: "\x1b[31mred\x1b[0m\nsecond line\t\u00e9\xff"},
			}},
		}, Stats: engine.Stats{EntriesReturned: 2, ExecTime: time.Second}}},
		{"streams-empty", engine.Result{Type: engine.ValueStreams, Streams: []engine.Stream{}}},
		{"matrix", engine.Result{Type: engine.ValueMatrix, Matrix: []engine.Series{
			{Metric: ls, Points: []engine.Point{{T: 1734393708000, V: 1}, {T: 1734393708500, V: 0.1 + 0.2}, {T: 1734393709001, V: 1e21}}},
			{Metric: labels.Labels{}, Points: []engine.Point{{T: 0, V: math.NaN()}, {T: 1000, V: math.Inf(1)}, {T: 2000, V: math.Inf(-1)}, {T: 3000, V: -0.0000001}}},
		}}},
		{"vector", engine.Result{Type: engine.ValueVector, Vector: []engine.Sample{
			{Metric: labels.FromStrings("level", "error"), T: 1734415200000, V: 1446},
			{Metric: labels.Labels{}, T: 1734415200123, V: 2.5},
		}}},
		{"vector-empty", engine.Result{Type: engine.ValueVector, Vector: []engine.Sample{}}},
		{"scalar", engine.Result{Type: engine.ValueScalar, Scalar: engine.Scalar{T: 1734415200000, V: 21653.000000000004}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGolden(t, tt.name, Marshal(stable(tt.r)))
		})
	}
}

// checkGolden compares a body, indented, with testdata/<name>.golden.json
// (rewritten with -update).
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.JSON(t, filepath.Join("testdata", name+".golden.json"), got, "  ")
}

func TestFormat(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{1, "1"}, {0.1, "0.1"}, {1e21, "1000000000000000000000"}, {-2.5e-7, "-0.00000025"},
		{math.NaN(), "NaN"}, {math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"},
	}
	for _, tt := range tests {
		if got := FormatValue(tt.v); got != tt.want {
			t.Errorf("FormatValue(%v) = %s, want %s", tt.v, got, tt.want)
		}
	}
	for ms, want := range map[int64]string{1734393708000: "1734393708", 1734393708500: "1734393708.5", 1001: "1.001", 0: "0"} {
		if got := FormatTime(ms); got != want {
			t.Errorf("FormatTime(%d) = %s, want %s", ms, got, want)
		}
	}
}

func TestMarshalError(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errors.New(`parse error : unexpected "}"`), `{"status":"error","errorType":"bad_data","error":"parse error : unexpected \"}\""}`},
		{fmt.Errorf("query: %w", context.Canceled), `{"status":"error","errorType":"canceled","error":"query: context canceled"}`},
		{context.DeadlineExceeded, `{"status":"error","errorType":"timeout","error":"context deadline exceeded"}`},
	}
	for _, tt := range tests {
		if got := string(MarshalError(tt.err)); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}
