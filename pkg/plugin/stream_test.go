package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/lokiapi"
	"github.com/lokal-logs/lokal/pkg/store"
)

// packets collects what a stream sends.
type packets struct {
	mu  sync.Mutex
	got []json.RawMessage
	ch  chan struct{}
}

// feedUntilFrame calls write, then waits up to wait for the tail to send a
// frame, until one arrives; it fails with msg when ctx ends first.
func feedUntilFrame(t *testing.T, ctx context.Context, pk *packets, wait time.Duration, msg string, write func()) {
	t.Helper()
	for {
		write()
		select {
		case <-pk.ch:
			return
		case <-time.After(wait):
		case <-ctx.Done():
			t.Fatal(msg)
		}
	}
}

func (p *packets) Send(pk *backend.StreamPacket) error {
	p.mu.Lock()
	p.got = append(p.got, append(json.RawMessage(nil), pk.Data...))
	p.mu.Unlock()
	select {
	case p.ch <- struct{}{}:
	default:
	}
	return nil
}

func (p *packets) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, g := range p.got {
		b.Write(g)
	}
	return b.String()
}

func TestLiveTail(t *testing.T) {
	f := newFixture(t)
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	writeLines(t, f.logFile, start, 3, "INFO", "before the tail")
	ds := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), `,"poll_interval":"50ms"`))
	waitStored(t, ds, 3)

	q := json.RawMessage(`{"expr":"{job=\"app\"} |= \"CUDA\" | line_format \"tail: {{__line__}}\"","queryType":"stream"}`)
	sub, err := ds.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: "tail/1", Data: q})
	if err != nil || sub.Status != backend.SubscribeStreamStatusOK {
		t.Fatalf("subscribe: %v %v", sub, err)
	}
	bad, _ := ds.SubscribeStream(context.Background(), &backend.SubscribeStreamRequest{Path: "tail/2", Data: json.RawMessage(`{"expr":"rate({job=\"app\"}[1m])"}`)})
	if bad.Status == backend.SubscribeStreamStatusOK {
		t.Error("a metric query was admitted as a live tail")
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	pk := &packets{ch: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- ds.RunStream(ctx, &backend.RunStreamRequest{Path: "tail/1", Data: q}, backend.NewStreamSender(pk))
	}()
	// Lines appended after the subscription reach the stream with the
	// query's pipeline applied; non-matching ones never do. Append until
	// one arrives, since the subscription starts asynchronously.
	feedUntilFrame(t, ctx, pk, 200*time.Millisecond, "no live tail frame arrived", func() {
		writeLines(t, f.logFile, time.Now(), 1, "INFO", "no match here")
		writeLines(t, f.logFile, time.Now(), 1, "ERROR", "CUDA out of memory")
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunStream: %v", err)
	}
	got := pk.text()
	if !strings.Contains(got, "tail: ") || !strings.Contains(got, "CUDA out of memory") {
		t.Errorf("tail frames lack the formatted line: %s", got)
	}
	if strings.Contains(got, "no match here") || strings.Contains(got, "before the tail") {
		t.Errorf("tail sent lines that do not match or predate it: %s", got)
	}
}

func TestTailFrameSemantics(t *testing.T) {
	ls := labels.FromStrings("job", "app", "level", "error")
	other := labels.FromStrings("job", "other")
	streams := []store.StreamEntries{
		{Labels: ls, Entries: []store.Entry{{Ts: 30, Seq: 2, Line: "b timeout"}, {Ts: 10, Seq: 1, Line: "a fail"}, {Ts: 20, Seq: 3, Line: "c ok"}}},
		{Labels: other, Entries: []store.Entry{{Ts: 15, Line: "x fail"}}},
	}
	f, err := tailFrame(context.Background(), `{job="app"} |~ "timeout|fail"`, streams)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := f.FieldByName("body")
	if body == nil || body.Len() != 2 || body.At(0) != "a fail" || body.At(1) != "b timeout" {
		t.Fatalf("tail rows = %v, want [a fail, b timeout] in time order", body)
	}
	if f, err := tailFrame(context.Background(), `{job="none"}`, streams); err != nil || f != nil {
		t.Errorf("no match: frame %v, err %v", f, err)
	}
}

func TestResources(t *testing.T) {
	f := newFixture(t)
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	writeLines(t, f.logFile, start, 4, "INFO", "hello")
	writeLines(t, f.logFile, start.Add(time.Minute), 2, "WARNING", "careful")
	ds := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), ""))
	waitStored(t, ds, 6)
	tests := []struct {
		path, url string
		status    int
		want      string
	}{
		{"labels", "labels", 200, `"job"`},
		{"label/level/values", "label/level/values", 200, `["info","warn"]`},
		{"label/level/values", `label/level/values?query={level="warn"}`, 200, `["warn"]`},
		{"series", `series?match[]={level="info"}`, 200, `"level":"info"`},
		{"series", `series`, 400, "match[]"},
		{"label/level/values", `label/level/values?query={`, 400, "selector"},
		{"labels", "labels?start=yesterday", 400, "start"},
		{"nope", "nope", 404, "no resource"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			var resp *backend.CallResourceResponse
			err := ds.CallResource(context.Background(), &backend.CallResourceRequest{Path: tt.path, URL: tt.url, Method: http.MethodGet},
				backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { resp = r; return nil }))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tt.status || !strings.Contains(string(resp.Body), tt.want) {
				t.Errorf("status %d body %s; want %d with %s", resp.Status, resp.Body, tt.status, tt.want)
			}
		})
	}
}

func TestIndexStatsAndDetectedFields(t *testing.T) {
	f := newFixture(t)
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	fh, err := os.Create(f.logFile)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		ts := start.Add(time.Duration(i) * time.Second).UTC().Format(time.RFC3339)
		fmt.Fprintf(fh, "%s level=info msg=\"served\" duration=%dms status=%d ok=true size=%dKB\n", ts, 10+i, 200+i%2, i+1)
	}
	fmt.Fprintf(fh, "{\"level\":\"warn\",\"latency\":1.5,\"user\":\"a\"}\n")
	fh.Close()
	ds := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), ""))
	waitStored(t, ds, 5)
	stored, _, done := ds.shared.Use()
	err = stored.Flush(context.Background())
	done()
	if err != nil {
		t.Fatal(err)
	}

	call := func(u string) (int, string) {
		var resp *backend.CallResourceResponse
		path := u
		if i := strings.IndexByte(u, '?'); i >= 0 {
			path = u[:i]
		}
		err := ds.CallResource(context.Background(), &backend.CallResourceRequest{Path: path, URL: u, Method: http.MethodGet},
			backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { resp = r; return nil }))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Status, string(resp.Body)
	}
	code, body := call(`index/stats?query=` + url.QueryEscape(`{job="app"}`))
	var st lokiapi.IndexStatsBody
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Streams == 0 || st.Entries != 5 || st.Bytes == 0 || st.Chunks == 0 {
		t.Errorf("index/stats: %d %s", code, body)
	}
	code, body = call(`detected_fields?query=` + url.QueryEscape(`{job="app"}`))
	var df lokiapi.DetectedFieldsBody
	if code != 200 || json.Unmarshal([]byte(body), &df) != nil {
		t.Fatalf("detected_fields: %d %s", code, body)
	}
	types := map[string]string{}
	for _, fl := range df.Fields {
		types[fl.Label] = fl.Type
	}
	want := map[string]string{"duration": "duration", "status": "int", "ok": "boolean", "size": "bytes", "msg": "string", "latency": "float", "user": "string"}
	for k, v := range want {
		if types[k] != v {
			t.Errorf("field %s: type %q, want %q (all: %v)", k, types[k], v, types)
		}
	}
	if code, _ := call(`detected_fields?query=` + url.QueryEscape(`rate({job="app"}[1m])`)); code != 400 {
		t.Errorf("detected_fields of a metric query: status %d, want 400", code)
	}
}

// A live tail keeps going when a settings change replaces the ingester.
func TestLiveTailAcrossSettingsChange(t *testing.T) {
	f := newFixture(t)
	writeLines(t, f.logFile, time.Now(), 1, "INFO", "start")
	old := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), ""))
	waitStored(t, old, 1)
	q := json.RawMessage(`{"expr":"{job=\"app\"} |= \"after-change\""}`)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	pk := &packets{ch: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		done <- old.RunStream(ctx, &backend.RunStreamRequest{Path: "tail/x", Data: q}, backend.NewStreamSender(pk))
	}()

	next := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), `,"poll_interval":"100ms"`))
	if next.shared != old.shared {
		t.Fatal("instances do not share the store")
	}
	feedUntilFrame(t, ctx, pk, 300*time.Millisecond, "the tail went silent after the settings change", func() {
		writeLines(t, f.logFile, time.Now(), 1, "ERROR", "after-change")
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunStream: %v", err)
	}
	if !strings.Contains(pk.text(), "after-change") {
		t.Errorf("tail frames: %s", pk.text())
	}
}
