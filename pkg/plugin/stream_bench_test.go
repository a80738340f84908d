package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// BenchmarkLiveTailLatency measures how long a line appended to a watched
// file takes to reach a live-tail stream (ns/op is the mean; the median is
// reported as median-ns).
func BenchmarkLiveTailLatency(b *testing.B) {
	f := newFixture(b)
	ds := f.instance(b, f.settings(filepath.Join(f.logs, "*.log"), ""))
	q := json.RawMessage(`{"expr":"{job=\"app\"} |= \"tail-bench\"","queryType":"stream"}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pk := &packets{ch: make(chan struct{}, 1)}
	go func() {
		_ = ds.RunStream(ctx, &backend.RunStreamRequest{Path: "tail/b", Data: q}, backend.NewStreamSender(pk))
	}()
	fh, err := os.OpenFile(f.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	appendLine := func(i int) {
		fmt.Fprintf(fh, "%s - app - INFO - tail-bench %d\n", time.Now().UTC().Format("2006-01-02 15:04:05,000"), i)
	}
	// Warm up: wait until the subscription delivers.
	for i := 0; ; i++ {
		appendLine(-1)
		select {
		case <-pk.ch:
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		appendLine(i)
		want := fmt.Sprintf("tail-bench %d", i)
		for !strings.Contains(pk.text(), want) {
			select {
			case <-pk.ch:
			case <-time.After(10 * time.Second):
				b.Fatalf("line %d never reached the tail", i)
			}
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "median-ns")
}
