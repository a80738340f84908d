package ingest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/forward"
	"github.com/lokal-logs/lokal/pkg/store"
)

// The settings' clients receive what a running ingester stores, and its
// health reports them; a memory store cannot forward and says so.
func TestRunForwardsToClients(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := forward.Decode(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, s := range req.Streams {
			if !strings.Contains(s.Labels, `job="test"`) || !strings.Contains(s.Labels, `host="gpu-1"`) {
				t.Errorf("stream %s lacks its labels or the client's external label", s.Labels)
			}
			got.Add(int64(len(s.Entries)))
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	client := config.Client{URL: srv.URL + "/loki/api/v1/push", ExternalLabels: map[string]string{"host": "gpu-1"}}
	client.ApplyDefaults()

	e := newEnv(t, "*.log")
	e.set.Clients = []config.Client{client}
	e.write("a.log", numbered("a", 0, 200))
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	in, err := New(e.set, e.op, st, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < 200 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	h := in.Health()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got.Load() != 200 {
		t.Fatalf("the client got %d of 200 lines", got.Load())
	}
	if len(h.Forward) != 1 || h.Forward[0].URL != client.URL || h.Forward[0].EntriesSent == 0 {
		t.Fatalf("health: %+v", h.Forward)
	}

	mem := newEnv(t, "*.log")
	mem.set.Clients = []config.Client{client}
	mem.write("a.log", numbered("a", 0, 1))
	h = mem.catchUp().Health()
	if !strings.Contains(strings.Join(h.Problems, "\n"), "forwarding needs Lokal's disk store") {
		t.Fatalf("problems: %q", h.Problems)
	}
}

// Clients removed from the settings are forgotten by the next run, so
// retention and recompaction stop waiting for them.
func TestRunForgetsRemovedClients(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ForwardRegister("http://gone/loki/api/v1/push"); err != nil {
		t.Fatal(err)
	}
	st.ForwardUnregister("http://gone/loki/api/v1/push")
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "*.log")
	e.write("a.log", numbered("a", 0, 1))
	in, err := New(e.set, e.op, st, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if names, _ := st.ForwardClients(); len(names) != 0 {
		t.Fatalf("cursors left: %v", names)
	}
	if p := strings.Join(in.Health().Problems, "\n"); !strings.Contains(p, "http://gone/loki/api/v1/push is no longer configured") {
		t.Fatalf("problems: %q", p)
	}
}
