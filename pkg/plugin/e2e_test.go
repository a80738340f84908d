package plugin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/lokal-logs/lokal/pkg/sample"

	"github.com/lokal-logs/lokal/pkg/internal/testshared"
)

// e2eTimeout is generous: the machine is shared and the test must never
// fail for being slow, only for being wrong.
const e2eTimeout = 3 * time.Minute

// TestEndToEnd builds the plugin executable, starts it over go-plugin gRPC
// with the handshake Grafana uses, configures a datasource on sample logs
// through the request's plugin context, and checks health, a log query, a
// range metric query, an instant query as alerting sends it, and a
// resource call.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds the plugin binary; skipped with -short")
	}
	tmp := t.TempDir()
	bin := buildPlugin(t, tmp)
	logs := filepath.Join(tmp, "logs")
	dataDir := filepath.Join(tmp, "data")
	for _, d := range []string{logs, dataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	wantErrors, wantOOM := writeSampleLogs(t, filepath.Join(logs, "cosyvoice.log"), now.Add(-30*time.Minute))
	// The project's own sample (pkg/sample) beside it, with its manifest as
	// the ground truth: tracebacks, JSON lines, ANSI colours, several hosts.
	manifest, err := sample.Write(filepath.Join(logs, "sample"), sample.Options{Seed: 7, Size: 128 << 10, Span: 30 * time.Minute, Start: now.Add(-40 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	p := startPlugin(t, bin, logs, dataDir)
	diag, dataClient, resClient, streamClient := p.diag, p.data, p.res, p.stream

	settings := map[string]any{
		"storage": map[string]any{"path": "e2e", "retention": "0s"},
		"scrape_configs": []any{
			map[string]any{
				"job_name": "cosyvoice3",
				"static_configs": []any{map[string]any{
					"labels": map[string]string{"job": "cosyvoice3", "instance": "localhost", "__path__": filepath.Join(logs, "*.log")},
				}},
			},
			map[string]any{
				"job_name": "sample",
				"static_configs": []any{map[string]any{
					"labels": map[string]string{"job": "sample", "__path__": filepath.Join(logs, "sample", "**", "*.log")},
				}},
			},
		},
	}
	jsonData, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	pc := backend.PluginContext{
		OrgID:    1,
		PluginID: "lokal-logql-datasource",
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 1, UID: "lokal-e2e", Name: "Lokal", Type: "lokal-logql-datasource", JSONData: jsonData, Updated: now,
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()

	// Health: poll until every sample line is stored (ingestion runs in the
	// background); only the deadline above can end the wait.
	health := waitStoredE2E(ctx, t, diag, pc, int64(sampleLines)+manifest.TotalEntries)
	if want := fmt.Sprintf("%d files matched", 1+len(manifest.Files)); !strings.Contains(health.Message, want) {
		t.Errorf("health message %q does not say %q", health.Message, want)
	}

	tr := backend.TimeRange{From: now.Add(-time.Hour), To: now.Add(time.Minute)}
	query := func(refID, body string, headers map[string]string) backend.DataResponse {
		t.Helper()
		req := &backend.QueryDataRequest{
			PluginContext: pc,
			Headers:       headers,
			Queries: []backend.DataQuery{{
				RefID: refID, JSON: json.RawMessage(body), TimeRange: tr, Interval: time.Minute, MaxDataPoints: 1000,
			}},
		}
		resp, err := dataClient.QueryData(ctx, backend.ToProto().QueryDataRequest(req))
		if err != nil {
			t.Fatalf("QueryData %s: %v", refID, err)
		}
		out, err := backend.FromProto().QueryDataResponse(resp)
		if err != nil {
			t.Fatalf("decode response %s: %v", refID, err)
		}
		return out.Responses[refID]
	}

	// A log query: every error line, newest first, as one data-plane frame.
	logs1 := query("A", `{"expr":"{job=\"cosyvoice3\"} |= \"ERROR\"","queryType":"range","maxLines":1000}`, nil)
	if logs1.Error != nil {
		t.Fatalf("log query: %v", logs1.Error)
	}
	if len(logs1.Frames) != 1 {
		t.Fatalf("log query: %d frames, want 1", len(logs1.Frames))
	}
	f := logs1.Frames[0]
	if f.Meta == nil || f.Meta.Type != data.FrameTypeLogLines || f.Meta.PreferredVisualization != data.VisTypeLogs {
		t.Errorf("log frame meta = %+v, want log-lines / logs", f.Meta)
	}
	if n, _ := f.RowLen(); n != wantErrors {
		t.Errorf("log query returned %d lines, want %d", n, wantErrors)
	}
	body, _ := f.FieldByName("body")
	ts, _ := f.FieldByName("timestamp")
	if body == nil || ts == nil {
		t.Fatalf("log frame lacks body/timestamp: %v", f.Fields)
	}
	for i := 0; i < body.Len(); i++ {
		if !strings.Contains(body.At(i).(string), "ERROR") {
			t.Errorf("line %d %q does not contain ERROR", i, body.At(i))
		}
		if i > 0 && ts.At(i).(time.Time).After(ts.At(i-1).(time.Time)) {
			t.Errorf("line %d is newer than line %d: want newest first", i, i-1)
		}
	}

	// A range metric query: one timeseries-multi frame per series.
	rate := query("B", `{"expr":"sum by (level) (count_over_time({job=\"cosyvoice3\"}[5m]))","queryType":"range","step":"1m","legendFormat":"{{level}}"}`, nil)
	if rate.Error != nil {
		t.Fatalf("metric query: %v", rate.Error)
	}
	if len(rate.Frames) == 0 {
		t.Fatal("metric query: no frames")
	}
	var total float64
	for _, f := range rate.Frames {
		if f.Meta == nil || f.Meta.Type != data.FrameTypeTimeSeriesMulti {
			t.Errorf("metric frame type = %+v, want timeseries-multi", f.Meta)
		}
		if len(f.Fields) != 2 {
			t.Fatalf("metric frame has %d fields, want time and value", len(f.Fields))
		}
		if f.Fields[1].Config == nil || f.Fields[1].Config.DisplayNameFromDS != f.Fields[1].Labels["level"] {
			t.Errorf("display name %+v does not follow legendFormat {{level}} (labels %v)", f.Fields[1].Config, f.Fields[1].Labels)
		}
		if n := f.Fields[1].Len(); n > 0 {
			total = max(total, f.Fields[1].At(n-1).(float64))
		}
	}
	if total == 0 {
		t.Error("count_over_time found no lines")
	}

	// An instant query the way alerting sends it.
	alert := query("C", `{"expr":"count_over_time({job=\"cosyvoice3\"} |= \"CUDA out of memory\"[1h])","queryType":"instant"}`, map[string]string{"FromAlert": "true"})
	if alert.Error != nil {
		t.Fatalf("alert query: %v", alert.Error)
	}
	if len(alert.Frames) != 1 || alert.Frames[0].Meta == nil || alert.Frames[0].Meta.Type != data.FrameTypeNumericMulti {
		t.Fatalf("alert query frames = %v, want one numeric-multi frame", alert.Frames)
	}
	if v := alert.Frames[0].Fields[0].At(0).(float64); v != float64(wantOOM) {
		t.Errorf("OOM count = %v, want %d", v, wantOOM)
	}
	// The sample's manifest agrees with what was stored and counted.
	for _, c := range []struct {
		expr string
		want int64
	}{
		{`sum(count_over_time({job=\"sample\"}[$__range]))`, manifest.TotalEntries},
		{`sum(count_over_time({job=\"sample\"} |= \"CUDA out of memory\"[$__range]))`, manifest.OOMEntries},
		{`sum(count_over_time({job=\"sample\", level=\"error\"}[$__range]))`, manifest.EntriesByLevel["error"]},
	} {
		r := query("S", `{"expr":"`+c.expr+`","queryType":"instant"}`, nil)
		if r.Error != nil || len(r.Frames) != 1 || len(r.Frames[0].Fields) != 1 {
			t.Fatalf("%s: %v %v", c.expr, r.Error, r.Frames)
		}
		if got := r.Frames[0].Fields[0].At(0).(float64); got != float64(c.want) {
			t.Errorf("%s = %v, manifest says %d", c.expr, got, c.want)
		}
	}

	// A log query from an alert rule is refused on its refId.
	bad := query("D", `{"expr":"{job=\"cosyvoice3\"}"}`, map[string]string{"FromAlert": "true"})
	if bad.Error == nil || !strings.Contains(bad.Error.Error(), "metric query") {
		t.Errorf("log query from alerting: error %v, want a 'metric query' hint", bad.Error)
	}
	// A broken query is an error on its refId, not a failed request.
	broken := query("E", `{"expr":"{job=\"cosyvoice3\"} |= "}`, nil)
	if broken.Error == nil {
		t.Error("broken query: no error")
	}

	// Label values for the label browser, shaped like Loki's API.
	stream, err := resClient.CallResource(ctx, &pluginv2.CallResourceRequest{
		PluginContext: backend.ToProto().PluginContext(pc),
		Path:          "label/level/values",
		Method:        "GET",
		Url:           fmt.Sprintf("label/level/values?start=%d&end=%d", tr.From.UnixNano(), tr.To.UnixNano()),
	})
	if err != nil {
		t.Fatalf("CallResource: %v", err)
	}
	msg, err := stream.Recv()
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("CallResource recv: %v", err)
	}
	var lv struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	if msg == nil || json.Unmarshal(msg.Body, &lv) != nil || lv.Status != "success" {
		t.Fatalf("label values response: %+v", msg)
	}
	if !contains(lv.Data, "error") || !contains(lv.Data, "info") {
		t.Errorf("level values = %v, want error and info among them", lv.Data)
	}

	// A settings change: Grafana makes a new instance (newer Updated) while
	// the old one still holds the store; it must come up healthy and keep
	// every stored line exactly once.
	settings["poll_interval"] = "250ms"
	if jsonData, err = json.Marshal(settings); err != nil {
		t.Fatal(err)
	}
	pc.DataSourceInstanceSettings.JSONData = jsonData
	pc.DataSourceInstanceSettings.Updated = now.Add(time.Second)
	health, err = diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pc)})
	if err != nil || health.Status != pluginv2.CheckHealthResponse_OK {
		t.Fatalf("health after a settings change: %v %v %q", err, health.GetStatus(), health.GetMessage())
	}
	after := query("T", `{"expr":"sum(count_over_time({job=~\"cosyvoice3|sample\"}[$__range]))","queryType":"instant"}`, nil)
	if after.Error != nil || after.Frames[0].Fields[0].At(0).(float64) != float64(int64(sampleLines)+manifest.TotalEntries) {
		t.Errorf("after a settings change: %v %v, want %d entries", after.Error, after.Frames, int64(sampleLines)+manifest.TotalEntries)
	}

	// Live tail through Grafana Live's stream calls: a line appended now
	// reaches the stream.
	tailData := []byte(`{"expr":"{job=\"cosyvoice3\"} |= \"live-e2e\"","queryType":"stream"}`)
	sub, err := streamClient.SubscribeStream(ctx, &pluginv2.SubscribeStreamRequest{
		PluginContext: backend.ToProto().PluginContext(pc), Path: "tail/e2e", Data: tailData,
	})
	if err != nil || sub.Status != pluginv2.SubscribeStreamResponse_OK {
		t.Fatalf("SubscribeStream: %v %v", sub, err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	run, err := streamClient.RunStream(runCtx, &pluginv2.RunStreamRequest{
		PluginContext: backend.ToProto().PluginContext(pc), Path: "tail/e2e", Data: tailData,
	})
	if err != nil {
		t.Fatalf("RunStream: %v", err)
	}
	packets := make(chan string)
	go func() {
		defer close(packets)
		for {
			pk, err := run.Recv()
			if err != nil {
				return
			}
			select {
			case packets <- string(pk.Data):
			case <-runCtx.Done():
				return
			}
		}
	}()
	// The subscription starts asynchronously: append until a line arrives.
	logFile := filepath.Join(logs, "cosyvoice.log")
	for i := 0; ; i++ {
		line := fmt.Sprintf("%s - cosyvoice - INFO - live-e2e %d\n", time.Now().UTC().Format("2006-01-02 15:04:05,000"), i)
		fh, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := fh.WriteString(line)
		if cerr := fh.Close(); werr != nil || cerr != nil {
			t.Fatal(werr, cerr)
		}
		select {
		case pk, ok := <-packets:
			if !ok {
				t.Fatal("live tail stream ended before sending a line")
			}
			if !strings.Contains(pk, "live-e2e") {
				t.Errorf("live tail packet lacks the appended line: %s", pk)
			}
		case <-time.After(500 * time.Millisecond):
			continue
		case <-ctx.Done():
			t.Fatal("no live tail packet arrived")
		}
		break
	}
}

// pluginProc is a running plugin process and its gRPC clients.
type pluginProc struct {
	client *goplugin.Client
	pid    int
	diag   grpcplugin.DiagnosticsClient
	data   grpcplugin.DataClient
	res    grpcplugin.ResourceClient
	stream grpcplugin.StreamClient
}

// buildPlugin builds the plugin executable into dir, as `go build` does for
// Grafana (the Magefile's build adds only flags).
func buildPlugin(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not in PATH: cannot build the plugin executable")
	}
	bin := filepath.Join(dir, "gpx_lokal")
	build := exec.Command(goBin, "build", "-o", bin, "./pkg")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./pkg: %v\n%s", err, out)
	}
	return bin
}

// startPlugin starts the executable the way Grafana does: go-plugin's
// handshake over gRPC, with the operator's settings in the environment.
func startPlugin(t *testing.T, bin, allowed, dataDir string) *pluginProc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"GF_PLUGIN_ALLOWED_PATHS="+allowed,
		"GF_PLUGIN_DATA_PATH="+dataDir,
	)
	return connectPlugin(t, pluginClientConfig(cmd))
}

// pluginClientConfig is the go-plugin client Grafana makes for a backend
// plugin: started from cmd, or reattached to a running one when cmd is nil
// (then the caller sets Reattach).
func pluginClientConfig(cmd *exec.Cmd) *goplugin.ClientConfig {
	plugins := goplugin.PluginSet{
		"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
		"data":        &grpcplugin.DataGRPCPlugin{},
		"resource":    &grpcplugin.ResourceGRPCPlugin{},
		"stream":      &grpcplugin.StreamGRPCPlugin{},
	}
	cfg := &goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Error}),
		StartTimeout:     time.Minute,
	}
	if cmd != nil {
		cfg.Cmd = cmd
		cfg.VersionedPlugins = map[int]goplugin.PluginSet{grpcplugin.ProtocolVersion: plugins}
	} else {
		cfg.Plugins = plugins
	}
	return cfg
}

// connectPlugin starts (or reattaches to) the plugin cfg describes and
// dispenses Grafana's four clients.
func connectPlugin(t *testing.T, cfg *goplugin.ClientConfig) *pluginProc {
	t.Helper()
	client := goplugin.NewClient(cfg)
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	dispense := func(name string) any {
		raw, err := rpc.Dispense(name)
		if err != nil {
			t.Fatalf("dispense %s: %v", name, err)
		}
		return raw
	}
	p := &pluginProc{
		client: client,
		diag:   dispense("diagnostics").(grpcplugin.DiagnosticsClient),
		data:   dispense("data").(grpcplugin.DataClient),
		res:    dispense("resource").(grpcplugin.ResourceClient),
		stream: dispense("stream").(grpcplugin.StreamClient),
	}
	if rc := client.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	return p
}

// Sample log shape: Python logging lines as CosyVoice3 writes them.
const sampleLines = 240

// writeSampleLogs writes sampleLines lines one second apart from start and
// returns how many are ERROR lines and how many of those report CUDA OOM.
func writeSampleLogs(t *testing.T, path string, start time.Time) (errs, oom int) {
	t.Helper()
	var b strings.Builder
	for i := 0; i < sampleLines; i++ {
		ts := start.Add(time.Duration(i) * time.Second).Format("2006-01-02 15:04:05,000")
		switch {
		case i%10 == 3:
			errs++
			oom++
			fmt.Fprintf(&b, "%s - cosyvoice - ERROR - CUDA out of memory. Tried to allocate 2.00 GiB (request %d)\n", ts, i)
		case i%10 == 7:
			errs++
			fmt.Fprintf(&b, "%s - cosyvoice - ERROR - synthesis failed: timeout after 30s (request %d)\n", ts, i)
		default:
			fmt.Fprintf(&b, "%s - cosyvoice - INFO - synthesis text_len=%d rtf=0.31 (request %d)\n", ts, i%97, i)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return errs, oom
}

// waitStoredE2E polls the health check until it is OK and the store holds
// at least n entries, and returns that answer; only ctx ends the wait.
func waitStoredE2E(ctx context.Context, t *testing.T, diag grpcplugin.DiagnosticsClient, pc backend.PluginContext, n int64) *pluginv2.CheckHealthResponse {
	t.Helper()
	for {
		health, err := diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pc)})
		if err != nil {
			t.Fatalf("CheckHealth: %v", err)
		}
		if health.Status == pluginv2.CheckHealthResponse_OK && storedEntries(health) >= n {
			return health
		}
		select {
		case <-ctx.Done():
			t.Fatalf("health never reported %d stored lines: status %s, message %q, details %s", n, health.Status, health.Message, health.JsonDetails)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// storedEntries is what a health answer says the store holds.
func storedEntries(h *pluginv2.CheckHealthResponse) int64 {
	var d struct {
		Store struct {
			Entries int64 `json:"entries"`
		} `json:"store"`
	}
	_ = json.Unmarshal(h.JsonDetails, &d)
	return d.Store.Entries
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := testshared.RepoRoot()
	if err != nil {
		t.Skip(err)
	}
	return dir
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
