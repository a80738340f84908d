package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/store"
)

// waitTimeout only bounds waits for background ingestion; tests never
// assert on how fast it is.
const waitTimeout = 2 * time.Minute

type fixture struct {
	host    *Host
	logs    string
	data    string
	logFile string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	tmp := t.TempDir()
	f := &fixture{logs: filepath.Join(tmp, "logs"), data: filepath.Join(tmp, "data")}
	for _, d := range []string{f.logs, f.data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.logFile = filepath.Join(f.logs, "app.log")
	env := map[string]string{config.EnvAllowedPaths: f.logs, config.EnvDataPath: f.data}
	op, err := config.OperatorFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	f.host = NewHost(HostOptions{Operator: op, Logger: log.NewWithLevel(log.Warn)})
	return f
}

func (f *fixture) settings(glob string, extra string) []byte {
	return []byte(fmt.Sprintf(`{"storage":{"path":"ds","retention":"0s"}%s,"scrape_configs":[{"job_name":"app","static_configs":[{"labels":{"job":"app","__path__":%q}}]}]}`, extra, glob))
}

func (f *fixture) instance(t testing.TB, jsonData []byte) *Datasource {
	t.Helper()
	inst, err := f.host.NewDatasource(context.Background(), backend.DataSourceInstanceSettings{UID: "ds-uid", JSONData: jsonData})
	if err != nil {
		t.Fatal(err)
	}
	ds := inst.(*Datasource)
	t.Cleanup(ds.Dispose)
	return ds
}

// storedLines starts a datasource on the fixture's log file holding n
// INFO lines, a second apart from a minute ago, and waits until they are
// stored; it returns the first line's time.
func (f *fixture) storedLines(t *testing.T, n int, msg string) (*Datasource, time.Time) {
	t.Helper()
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	writeLines(t, f.logFile, start, n, "INFO", msg)
	ds := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), ""))
	waitStored(t, ds, int64(n))
	return ds, start
}

// writeLines appends n lines at one-second steps from start.
func writeLines(t *testing.T, path string, start time.Time, n int, level, msg string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	for i := 0; i < n; i++ {
		ts := start.Add(time.Duration(i) * time.Second).UTC().Format("2006-01-02 15:04:05,000")
		if _, err := fmt.Fprintf(fh, "%s - app - %s - %s %d\n", ts, level, msg, i); err != nil {
			t.Fatal(err)
		}
	}
}

// waitStored waits until the datasource's store holds n entries.
func waitStored(t *testing.T, ds *Datasource, n int64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		st, _, done := ds.shared.Use()
		in := st.Info()
		done()
		if in.Entries+in.HeadEntries >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store never held %d entries (has %d); health: %+v", n, in.Entries+in.HeadEntries, ds.run.Ingester().Health())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func queryOne(t *testing.T, ds *Datasource, q string, tr backend.TimeRange, headers map[string]string) backend.DataResponse {
	t.Helper()
	resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{
		Headers: headers,
		Queries: []backend.DataQuery{{RefID: "A", JSON: json.RawMessage(q), TimeRange: tr, Interval: time.Minute}},
	})
	if err != nil {
		t.Fatalf("QueryData returned a request error: %v", err)
	}
	return resp.Responses["A"]
}

func TestDatasourceQueriesAndHealth(t *testing.T) {
	f := newFixture(t)
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	writeLines(t, f.logFile, start, 30, "INFO", "served request")
	writeLines(t, f.logFile, start.Add(time.Minute), 5, "ERROR", "CUDA out of memory")
	ds := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), ""))
	waitStored(t, ds, 35)
	tr := backend.TimeRange{From: start.Add(-time.Minute), To: time.Now().Add(time.Minute)}

	h, err := ds.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != backend.HealthStatusOk || !strings.Contains(h.Message, "1 file matched") || !strings.Contains(h.Message, "35 lines") {
		t.Errorf("health = %v %q", h.Status, h.Message)
	}

	tests := []struct {
		name      string
		query     string
		headers   map[string]string
		wantErr   string
		wantType  data.FrameType
		wantRows  int // for log frames
		wantValue float64
	}{
		{name: "log query", query: `{"expr":"{job=\"app\"} |= \"CUDA\""}`, wantType: data.FrameTypeLogLines, wantRows: 5},
		{name: "limit", query: `{"expr":"{job=\"app\"}","maxLines":7}`, wantType: data.FrameTypeLogLines, wantRows: 7},
		{name: "instant metric", query: `{"expr":"sum(count_over_time({job=\"app\", level=\"error\"}[$__range]))","queryType":"instant"}`, wantType: data.FrameTypeNumericMulti, wantValue: 5},
		{name: "range metric", query: `{"expr":"sum(count_over_time({job=\"app\"}[1h]))","step":"1m"}`, wantType: data.FrameTypeTimeSeriesMulti, wantValue: 35},
		{name: "alert metric", query: `{"expr":"sum(count_over_time({job=\"app\"} |= \"CUDA\"[$__range]))","queryType":"instant"}`, headers: map[string]string{"FromAlert": "true"}, wantType: data.FrameTypeNumericMulti, wantValue: 5},
		{name: "alert log query", query: `{"expr":"{job=\"app\"}"}`, headers: map[string]string{"FromAlert": "true"}, wantErr: "alert rules need a metric query"},
		{name: "parse error", query: `{"expr":"{job=\"app\"} |= "}`, wantErr: "parse error"},
		{name: "no selector", query: `{"expr":"|= \"x\""}`, wantErr: "parse error"},
		{name: "stream metric", query: `{"expr":"rate({job=\"app\"}[1m])","queryType":"stream"}`, wantErr: "live tail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dr := queryOne(t, ds, tt.query, tr, tt.headers)
			if tt.wantErr != "" {
				if dr.Error == nil || !strings.Contains(dr.Error.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", dr.Error, tt.wantErr)
				}
				return
			}
			if dr.Error != nil {
				t.Fatal(dr.Error)
			}
			if len(dr.Frames) == 0 || dr.Frames[0].Meta == nil || dr.Frames[0].Meta.Type != tt.wantType {
				t.Fatalf("frames %v, want type %s", dr.Frames, tt.wantType)
			}
			fr := dr.Frames[0]
			switch tt.wantType {
			case data.FrameTypeLogLines:
				if n, _ := fr.RowLen(); n != tt.wantRows {
					t.Errorf("rows = %d, want %d", n, tt.wantRows)
				}
			case data.FrameTypeNumericMulti:
				if v := fr.Fields[0].At(0).(float64); v != tt.wantValue {
					t.Errorf("value = %v, want %v", v, tt.wantValue)
				}
			case data.FrameTypeTimeSeriesMulti:
				val := fr.Fields[1]
				if v := val.At(val.Len() - 1).(float64); v != tt.wantValue {
					t.Errorf("last value = %v, want %v", v, tt.wantValue)
				}
			}
		})
	}
}

// A query whose caller went away is reported as a cancelled request, not
// as a failed query that Grafana would log as the plugin's error; a
// deadline stays a per-query timeout.
func TestQueryDataCancelled(t *testing.T) {
	ds, start := newFixture(t).storedLines(t, 3, "served request")
	req := &backend.QueryDataRequest{Queries: []backend.DataQuery{{
		RefID: "A", JSON: json.RawMessage(`{"expr":"{job=\"app\"}"}`),
		TimeRange: backend.TimeRange{From: start.Add(-time.Minute), To: time.Now().Add(time.Minute)},
	}}}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	resp, err := ds.QueryData(cancelled, req)
	if !errors.Is(err, context.Canceled) || resp != nil {
		t.Errorf("cancelled caller: resp %v, err %v; want nil, context.Canceled", resp, err)
	}

	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	resp, err = ds.QueryData(expired, req)
	if err != nil {
		t.Fatalf("deadline: request error %v, want a per-query timeout", err)
	}
	if dr := resp.Responses["A"]; dr.Error == nil || dr.Status != backend.StatusTimeout {
		t.Errorf("deadline: response %v %v, want status %d", dr.Status, dr.Error, backend.StatusTimeout)
	}
}

// Grafana creates a datasource's new instance before it disposes the old
// one; the new one must not fail on the store's lock, must follow the new
// settings, and must not read lines twice.
func TestSettingsChangeSharesStore(t *testing.T) {
	f := newFixture(t)
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	writeLines(t, f.logFile, start, 10, "INFO", "first")
	old := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), ""))
	waitStored(t, old, 10)

	next := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), `,"poll_interval":"200ms"`))
	if next.setupErr != nil || next.ingestErr != nil {
		t.Fatalf("new instance: setup %v, ingest %v", next.setupErr, next.ingestErr)
	}
	if next.shared != old.shared {
		t.Fatal("the new instance opened its own store instead of sharing the open one")
	}
	old.Dispose()
	writeLines(t, f.logFile, start.Add(time.Minute), 10, "INFO", "second")
	waitStored(t, next, 20)
	tr := backend.TimeRange{From: start.Add(-time.Minute), To: time.Now().Add(5 * time.Minute)}
	dr := queryOne(t, next, `{"expr":"sum(count_over_time({job=\"app\"}[1h]))","queryType":"instant"}`, tr, nil)
	if dr.Error != nil {
		t.Fatal(dr.Error)
	}
	if v := dr.Frames[0].Fields[0].At(0).(float64); v != 20 {
		t.Errorf("count = %v after the settings change, want 20 (nothing lost or read twice)", v)
	}

	// A storage settings change reopens the shared store with the new
	// options; both instances keep using it.
	third := f.instance(t, []byte(fmt.Sprintf(`{"storage":{"path":"ds","retention":"720h"},"scrape_configs":[{"job_name":"app","static_configs":[{"labels":{"job":"app","__path__":%q}}]}]}`, filepath.Join(f.logs, "*.log"))))
	if third.setupErr != nil || third.ingestErr != nil || third.shared != next.shared {
		t.Fatalf("retention change: setup %v, ingest %v, shared %v", third.setupErr, third.ingestErr, third.shared == next.shared)
	}
	if got := third.shared.Options().Retention; got != 720*time.Hour {
		t.Errorf("store retention after the change = %v, want 720h", got)
	}
	next.Dispose()
	writeLines(t, f.logFile, start.Add(2*time.Minute), 5, "INFO", "third")
	waitStored(t, third, 25)
	dr = queryOne(t, third, `{"expr":"sum(count_over_time({job=\"app\"}[1h]))","queryType":"instant"}`, tr, nil)
	if dr.Error != nil || dr.Frames[0].Fields[0].At(0).(float64) != 25 {
		t.Errorf("after reopening: %v %v, want 25", dr.Error, dr.Frames)
	}

	// Disposing the last instance releases the lock: the store can be
	// opened again as its writer.
	third.Dispose()
	st, err := store.Open(filepath.Join(f.data, "ds"), store.Options{})
	if err != nil {
		t.Fatalf("store still locked after the last instance was disposed: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestHealthProblems(t *testing.T) {
	f := newFixture(t)
	elsewhere := t.TempDir()
	writeLines(t, filepath.Join(elsewhere, "x.log"), time.Now(), 1, "INFO", "x")
	tests := []struct {
		name     string
		jsonData []byte
		want     []string
	}{
		{name: "disallowed path", jsonData: f.settings(filepath.Join(elsewhere, "*.log"), ""), want: []string{"allowed_paths"}},
		{name: "unknown key", jsonData: []byte(`{"storage":{"pth":"x"}}`), want: []string{"settings", "pth"}},
		{name: "bad stage", jsonData: []byte(fmt.Sprintf(`{"storage":{"path":"bad"},"scrape_configs":[{"job_name":"a","static_configs":[{"labels":{"__path__":%q}}],"pipeline_stages":[{"regex":{"expression":"("}}]}]}`, filepath.Join(f.logs, "*.log"))), want: []string{"regex"}},
		{name: "not an object", jsonData: []byte(`[1,2]`), want: []string{"JSON object"}},
		{name: "no sources", jsonData: []byte(`{"storage":{"path":"empty"}}`), want: []string{"no sources configured"}},
		{name: "store outside data path", jsonData: []byte(`{"storage":{"path":"/etc/lokal"}}`), want: []string{"storage.path", "data path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := f.instance(t, tt.jsonData)
			h, err := ds.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if h.Status != backend.HealthStatusError {
				t.Errorf("status = %v, want error", h.Status)
			}
			for _, w := range tt.want {
				if !strings.Contains(h.Message, w) {
					t.Errorf("message %q does not mention %q", h.Message, w)
				}
			}
			// A broken datasource answers queries with a clear error per refId.
			dr := queryOne(t, ds, `{"expr":"{job=\"app\"}"}`, backend.TimeRange{From: time.Now().Add(-time.Hour), To: time.Now()}, nil)
			if ds.setupErr != nil && dr.Error == nil {
				t.Error("query on a datasource without a store succeeded")
			}
		})
	}
}

// Closing the host (Grafana shutting the plugin down) releases every store,
// and instances disposed afterwards do nothing twice.
func TestHostClose(t *testing.T) {
	f := newFixture(t)
	writeLines(t, f.logFile, time.Now(), 3, "INFO", "x")
	ds := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), ""))
	waitStored(t, ds, 3)
	f.host.Close()
	ds.Dispose()
	st, err := store.Open(filepath.Join(f.data, "ds"), store.Options{})
	if err != nil {
		t.Fatalf("store still locked after Close: %v", err)
	}
	defer st.Close()
	if in := st.Info(); in.Entries != 3 {
		t.Errorf("store holds %d entries after Close, want 3 flushed", in.Entries)
	}
}

func TestGrafanaKeysSetAside(t *testing.T) {
	f := newFixture(t)
	writeLines(t, f.logFile, time.Now(), 2, "INFO", "x")
	js := f.settings(filepath.Join(f.logs, "*.log"), `,"manageAlerts":true,"timeInterval":"15s"`)
	ds := f.instance(t, js)
	if ds.setupErr != nil || ds.ingestErr != nil {
		t.Fatalf("Grafana's own jsonData keys broke the datasource: %v %v", ds.setupErr, ds.ingestErr)
	}
}
