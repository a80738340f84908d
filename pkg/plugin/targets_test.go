package plugin_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/lokal-logs/lokal/pkg/internal/testshared"
)

// TestPluginTargets measures issue 2's targets for the plugin process on a
// real corpus: catch-up throughput and peak RSS, store size, the first query
// after a restart, and idle RSS and CPU. It needs a directory of logs, e.g.
//
//	../shared/bin/loggen -out /tmp/corpus1g -size 1GiB
//	LOKAL_TARGETS_CORPUS=/tmp/corpus1g go test -run PluginTargets -v ./pkg/plugin
//
// It reports numbers with t.Log and asserts only correctness (never speed).
func TestPluginTargets(t *testing.T) {
	corpus := testshared.EnvDir(t, "LOKAL_TARGETS_CORPUS", "set LOKAL_TARGETS_CORPUS to a directory of logs (e.g. from ../shared/bin/loggen -size 1GiB) to measure the plugin's targets")
	total := testshared.LogBytes(t, corpus)
	if total == 0 {
		t.Fatalf("no *.log under %s", corpus)
	}
	tmp := t.TempDir()
	bin := buildPlugin(t, tmp)
	dataDir := filepath.Join(tmp, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	jsonData, _ := json.Marshal(map[string]any{
		"storage": map[string]any{"path": "targets", "retention": "0s", "max_bytes": "0"},
		"scrape_configs": []any{map[string]any{
			"job_name": "cosyvoice3",
			"static_configs": []any{map[string]any{
				"labels": map[string]string{"job": "cosyvoice3", "__path__": filepath.Join(corpus, "**", "*.log")},
			}},
		}},
	})
	pc := backend.PluginContext{OrgID: 1, PluginID: "lokal-logql-datasource", DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
		ID: 1, UID: "targets", Name: "Lokal", JSONData: jsonData, Updated: time.Now(),
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	// 1. Catch-up: the plugin ingests the corpus on its own.
	p := startPlugin(t, bin, corpus, dataDir)
	began := time.Now()
	var d struct {
		BytesRead int64 `json:"bytesRead"`
		Lines     int64 `json:"linesIngested"`
		Store     struct {
			From        time.Time `json:"from"`
			To          time.Time `json:"to"`
			Entries     int64     `json:"entries"`
			RawBytes    int64     `json:"rawBytes"`
			StoredBytes int64     `json:"storedBytes"`
		} `json:"store"`
	}
	for {
		h, err := p.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pc)})
		if err != nil {
			t.Fatalf("CheckHealth: %v", err)
		}
		_ = json.Unmarshal(h.JsonDetails, &d)
		if d.BytesRead >= total {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("catch-up did not finish: %s", h.JsonDetails)
		case <-time.After(250 * time.Millisecond):
		}
	}
	catchUp := time.Since(began)
	peak := procStatusKB(t, p.pid, "VmHWM")
	t.Logf("catch-up: %d bytes, %d lines in %s = %.1f MB/s; plugin peak RSS %.1f MB",
		total, d.Lines, catchUp.Round(time.Millisecond), float64(total)/1e6/catchUp.Seconds(), float64(peak)/1024)

	// Let the head flush, then read the store's size.
	time.Sleep(3 * time.Second)
	h, err := p.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pc)})
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(h.JsonDetails, &d)
	t.Logf("store: %d entries, %d raw bytes stored in %d bytes = %.2f%% of the raw log",
		d.Store.Entries, d.Store.RawBytes, d.Store.StoredBytes, 100*float64(d.Store.StoredBytes)/float64(total))
	p.client.Kill()

	// 2. Restart: time from process start to the first answered query.
	began = time.Now()
	p = startPlugin(t, bin, corpus, dataDir)
	req := &backend.QueryDataRequest{PluginContext: pc, Queries: []backend.DataQuery{{
		RefID: "A", JSON: json.RawMessage(`{"expr":"{job=\"cosyvoice3\"} |= \"CUDA out of memory\"","maxLines":1000}`),
		TimeRange: backend.TimeRange{From: time.Now().Add(-48 * time.Hour), To: time.Now()}, Interval: time.Minute,
	}}}
	resp, err := p.data.QueryData(ctx, backend.ToProto().QueryDataRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	firstQuery := time.Since(began)
	out, err := backend.FromProto().QueryDataResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	r := out.Responses["A"]
	if r.Error != nil || len(r.Frames) != 1 {
		t.Fatalf("first query after restart: %v", r.Error)
	}
	n, _ := r.Frames[0].RowLen()
	t.Logf("restart: process start to first answered query (%d lines) in %s", n, firstQuery.Round(time.Millisecond))

	// 3. Explore's and alerting's queries, timed through gRPC as Grafana
	// calls them (best of three: the machine is shared).
	end := d.Store.To.Add(time.Second)
	timed := []struct {
		name, json string
		from       time.Time
		interval   time.Duration
	}{
		{"first page of logs (limit 1000, last 1 h)", `{"expr":"{job=\"cosyvoice3\"}","maxLines":1000}`, end.Add(-time.Hour), time.Second},
		{"log volume by level, 24 h", `{"expr":"sum by (level) (count_over_time({job=\"cosyvoice3\"}[$__auto]))","queryType":"range"}`, end.Add(-24 * time.Hour), 2 * time.Minute},
		{"alert rule (instant, 5 m)", `{"expr":"count_over_time({job=\"cosyvoice3\"} |= \"CUDA out of memory\"[5m])","queryType":"instant"}`, end.Add(-5 * time.Minute), time.Minute},
	}
	for _, q := range timed {
		best := time.Duration(1<<63 - 1)
		for i := 0; i < 3; i++ {
			req := &backend.QueryDataRequest{PluginContext: pc, Queries: []backend.DataQuery{{
				RefID: "T", JSON: json.RawMessage(q.json), TimeRange: backend.TimeRange{From: q.from, To: end}, Interval: q.interval, MaxDataPoints: 1000,
			}}}
			t0 := time.Now()
			resp, err := p.data.QueryData(ctx, backend.ToProto().QueryDataRequest(req))
			el := time.Since(t0)
			if err != nil {
				t.Fatal(err)
			}
			out, err := backend.FromProto().QueryDataResponse(resp)
			if err != nil || out.Responses["T"].Error != nil {
				t.Fatalf("%s: %v %v", q.name, err, out.Responses["T"].Error)
			}
			best = min(best, el)
		}
		t.Logf("query: %s: %s", q.name, best.Round(10*time.Microsecond))
	}

	// 4. Idle: RSS and CPU over 10 s with nothing new to read.
	time.Sleep(5 * time.Second)
	cpu0 := procCPUTicks(t, p.pid)
	time.Sleep(10 * time.Second)
	cpu1 := procCPUTicks(t, p.pid)
	t.Logf("idle: RSS %.1f MB, CPU %.2f%% of one core over 10 s",
		float64(procStatusKB(t, p.pid, "VmRSS"))/1024, float64(cpu1-cpu0)/100/10*100)
}

// procStatusKB reads a kB field of /proc/<pid>/status.
func procStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// procCPUTicks reads utime+stime of /proc/<pid>/stat (clock ticks, 100/s).
func procCPUTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return u + st
}
