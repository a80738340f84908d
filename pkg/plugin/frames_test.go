package plugin

import (
	"flag"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/experimental"

	"github.com/lokal-logs/lokal/pkg/labels"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestFrameGolden(t *testing.T) {
	t0 := time.Date(2024, 12, 17, 14, 30, 52, 123000000, time.UTC)
	app := labels.FromStrings("job", "cosyvoice3", "instance", "localhost", "level", "error", "filename", "/logs/app.log")
	info := labels.FromStrings("job", "cosyvoice3", "instance", "localhost", "level", "info", "filename", "/logs/app.log")
	st := queryStats{Lines: 3, EntriesScanned: 120, BytesScanned: 9000, Streams: 2, BlocksTotal: 4, BlocksSkipped: 3, Duration: 1500 * time.Microsecond}
	ms := t0.UnixMilli()
	tests := []struct {
		name string
		dr   backend.DataResponse
	}{
		{
			name: "logs",
			dr: backend.DataResponse{Frames: data.Frames{logsFrame("A", `{job="cosyvoice3"} |= "error"`, []logRow{
				{Ts: t0.Add(2 * time.Second).UnixNano(), Seq: 300, Line: "2024-12-17 14:30:54,123 - cosyvoice - ERROR - CUDA out of memory", Labels: app},
				{Ts: t0.UnixNano(), Seq: 120, Line: "2024-12-17 14:30:52,123 - cosyvoice - ERROR - request failed: timeout", Labels: app},
				{Ts: t0.UnixNano(), Seq: 0, Line: "2024-12-17 14:30:52,123 - cosyvoice - INFO - error budget ok", Labels: info},
			}, logsCustom{SearchWords: []string{"error"}, Limit: 3, LimitReached: true, Direction: "backward"}, st)}},
		},
		{
			name: "logs_empty",
			dr:   backend.DataResponse{Frames: data.Frames{logsFrame("A", `{job="nothing"}`, nil, logsCustom{Limit: 1000, Direction: "forward"}, queryStats{})}},
		},
		{
			name: "matrix",
			dr: backend.DataResponse{Frames: matrixFrames("B", `sum by (level) (rate({job="cosyvoice3"}[5m]))`, "{{level}} lines/s", []series{
				{Labels: labels.FromStrings("level", "info"), Points: []point{{ms, 1.5}, {ms + 60000, 2}}},
				{Labels: labels.FromStrings("level", "error"), Points: []point{{ms, 0.25}}},
			}, st)},
		},
		{
			name: "matrix_empty",
			dr:   backend.DataResponse{Frames: matrixFrames("B", `count_over_time({job="cosyvoice3"} |= "CUDA out of memory"[5m])`, "", nil, queryStats{})},
		},
		{
			name: "vector",
			dr: backend.DataResponse{Frames: vectorFrames("C", `count_over_time({job="cosyvoice3"} |= "CUDA out of memory"[5m])`, "", []series{
				{Labels: app, Points: []point{{ms, 7}}},
			}, st)},
		},
		{
			name: "scalar",
			dr:   backend.DataResponse{Frames: vectorFrames("C", `vector(1) + 1`, "", []series{{Points: []point{{ms, 2}}}}, queryStats{})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			experimental.CheckGoldenJSONResponse(t, "testdata/golden", tt.name, &tt.dr, *update)
		})
	}
}

func TestRowIDStableAndUnique(t *testing.T) {
	ls := labels.FromStrings("job", "a")
	a := logRow{Ts: 1, Seq: 1, Line: "x", Labels: ls}
	b := logRow{Ts: 1, Seq: 2, Line: "x", Labels: ls}
	if rowID(a, 7) != rowID(a, 7) {
		t.Error("row id is not stable")
	}
	if rowID(a, 7) == rowID(b, 7) || rowID(a, 7) == rowID(a, 8) {
		t.Error("distinct rows share an id")
	}
}

func TestDisplayName(t *testing.T) {
	ls := labels.FromStrings("level", "error", "instance", "gpu1")
	for legend, want := range map[string]string{
		"":                          `{instance="gpu1", level="error"}`,
		"{{level}} on {{instance}}": "error on gpu1",
		"{{ .level }}":              "error",
		"{{missing}}x":              "x",
		"unclosed {{level":          "unclosed {{level",
	} {
		if got := displayName(legend, ls); got != want {
			t.Errorf("displayName(%q) = %q, want %q", legend, got, want)
		}
	}
}
