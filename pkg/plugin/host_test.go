package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/lokal-logs/lokal/pkg/host"
	"github.com/lokal-logs/lokal/pkg/store"
)

// lockedFixture is a fixture with n log lines whose store "ds" is open as
// another process would hold it, and the function that lets it go.
func lockedFixture(t *testing.T, n int) (*fixture, time.Time, func()) {
	t.Helper()
	f := newFixture(t)
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	writeLines(t, f.logFile, start, n, "INFO", "while locked")
	st, err := store.Open(filepath.Join(f.data, "ds"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	release := func() {
		if !closed {
			closed = true
			if err := st.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(release)
	return f, start, release
}

// waitHealthy polls the health check until it is OK.
func waitHealthy(t *testing.T, ds *Datasource) *backend.CheckHealthResult {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		h, err := ds.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if h.Status == backend.HealthStatusOk {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("health never became OK: %q", h.Message)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A store another process holds is waited for, not given up on: health and
// queries say on which pid, and the datasource heals by itself once the
// lock is free, with no settings change.
func TestLockedStoreHeals(t *testing.T) {
	f, start, unlock := lockedFixture(t, 10)
	ds := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), ""))

	h, err := ds.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantPid := fmt.Sprintf("held by pid %d", os.Getpid())
	if h.Status != backend.HealthStatusError || !strings.Contains(h.Message, "waiting for the lock") || !strings.Contains(h.Message, wantPid) {
		t.Errorf("health while locked: %v %q, want an error saying %q", h.Status, h.Message, wantPid)
	}
	tr := backend.TimeRange{From: start.Add(-time.Minute), To: time.Now().Add(time.Minute)}
	dr := queryOne(t, ds, `{"expr":"{job=\"app\"}"}`, tr, nil)
	if dr.Error == nil || dr.Status != http.StatusServiceUnavailable || !strings.Contains(dr.Error.Error(), wantPid) {
		t.Errorf("query while locked: status %d, error %v; want 503 saying %q", dr.Status, dr.Error, wantPid)
	}
	var we *host.WaitError
	var le *store.LockedError
	if err := ds.unavailable(); !errors.As(err, &we) || !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Errorf("unavailable() = %v, want a host.WaitError wrapping the store's LockedError", err)
	}

	unlock()
	waitHealthy(t, ds)
	waitStored(t, ds, 10)
	dr = queryOne(t, ds, `{"expr":"sum(count_over_time({job=\"app\"}[1h]))","queryType":"instant"}`, tr, nil)
	if dr.Error != nil || dr.Frames[0].Fields[0].At(0).(float64) != 10 {
		t.Errorf("after the lock was released: %v %v, want 10 lines", dr.Error, dr.Frames)
	}
}

// Instances made and disposed while the store waits: the newest one's
// settings open it and its ingester runs; a disposed one's never starts.
func TestLockedStoreSettingsChange(t *testing.T) {
	f, _, unlock := lockedFixture(t, 4)
	old := f.instance(t, f.settings(filepath.Join(f.logs, "*.log"), ""))
	next := f.instance(t, []byte(fmt.Sprintf(`{"storage":{"path":"ds","retention":"720h"},"scrape_configs":[{"job_name":"app","static_configs":[{"labels":{"job":"app","__path__":%q}}]}]}`, filepath.Join(f.logs, "*.log"))))
	if next.shared != old.shared {
		t.Fatal("the new instance did not share the waiting store")
	}
	old.Dispose()
	unlock()
	waitHealthy(t, next)
	waitStored(t, next, 4)
	if run, _ := old.ingestion(); run != nil {
		t.Error("the disposed instance started an ingester")
	}
	if run, err := next.ingestion(); run == nil || err != nil {
		t.Errorf("the newest instance has no ingester: %v", err)
	}
	got := next.shared.Options().Retention
	if got != 720*time.Hour {
		t.Errorf("store opened with retention %v, want the newest settings' 720h", got)
	}
}
