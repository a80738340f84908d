package forward

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/push/pushpb"
)

// fault is what the receiver does with one request.
type fault struct {
	status     int           // 0: 204
	retryAfter string        // for 429
	delay      time.Duration // before answering (after storing, for 2xx)
}

// receiver is the tests' own Loki: it decodes pushes with pushpb, stores
// each accepted request's entries, and injects faults by request number.
type receiver struct {
	t      testing.TB
	faults func(n int) fault

	mu       sync.Mutex
	n        int        // requests seen
	batches  [][]string // accepted requests' entry keys, in arrival order
	refused  [][]string // requests refused with a 4xx other than 429
	inFlight int        // requests stored but not yet answered
	notify   chan struct{}

	addr string
	srv  *http.Server
	ln   net.Listener
}

func newReceiver(t testing.TB, faults func(n int) fault) *receiver {
	r := &receiver{t: t, faults: faults, notify: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/loki/api/v1/push" }

func (r *receiver) serve(ln net.Listener) {
	r.ln = ln
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	r.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// down stops listening: the client sees refused connections.
func (r *receiver) down() {
	if r.srv != nil {
		_ = r.srv.Close()
		r.srv = nil
	}
}

// up listens again on the same address.
func (r *receiver) up() {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("receiver up again on %s: %v", r.addr, err)
	}
	r.serve(ln)
}

func entryKey(labels string, ts time.Time, line string) string {
	return fmt.Sprintf("%s|%d|%s", labels, ts.UnixNano(), line)
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.n++
	f := fault{}
	if r.faults != nil {
		f = r.faults(r.n)
	}
	r.mu.Unlock()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	if req.Header.Get("Content-Type") != "application/x-protobuf" || req.Header.Get("User-Agent") != UserAgent {
		http.Error(w, "bad headers", http.StatusBadRequest)
		r.t.Errorf("request headers %v", req.Header)
		return
	}
	raw, err := pushpb.DecodeSnappy(nil, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		r.t.Errorf("snappy: %v", err)
		return
	}
	var pr pushpb.PushRequest
	if err := pushpb.Unmarshal(raw, &pr); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		r.t.Errorf("protobuf: %v", err)
		return
	}
	var keys []string
	for _, s := range pr.Streams {
		if !strings.HasPrefix(s.Labels, "{") || len(s.Entries) == 0 {
			r.t.Errorf("stream %q with %d entries", s.Labels, len(s.Entries))
		}
		for _, e := range s.Entries {
			keys = append(keys, entryKey(s.Labels, e.Timestamp, e.Line))
		}
	}
	if f.status != 0 && f.status/100 != 2 {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		if f.status/100 == 4 && f.status != http.StatusTooManyRequests {
			r.mu.Lock()
			r.refused = append(r.refused, keys)
			r.mu.Unlock()
		}
		time.Sleep(f.delay)
		http.Error(w, fmt.Sprintf("injected %d", f.status), f.status)
		return
	}
	r.mu.Lock()
	r.batches = append(r.batches, keys)
	r.inFlight++
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	time.Sleep(f.delay)
	w.WriteHeader(http.StatusNoContent)
	r.mu.Lock()
	r.inFlight--
	r.mu.Unlock()
}

// stored returns a copy of the accepted batches.
func (r *receiver) stored() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]string, len(r.batches))
	for i, b := range r.batches {
		out[i] = slices.Clone(b)
	}
	return out
}

// checkDelivery checks that every wanted entry arrived (but those in
// missing), that nothing else arrived, and that each duplicate is part of a
// whole re-sent batch: a batch either has none of its entries sent again
// later, or all of them.
func checkDelivery(t testing.TB, batches [][]string, want []string, missing map[string]bool) (dups int) {
	t.Helper()
	count := map[string]int{}
	for _, b := range batches {
		for _, k := range b {
			count[k]++
		}
	}
	wanted := map[string]bool{}
	for _, k := range want {
		wanted[k] = true
		switch {
		case missing[k] && count[k] > 0:
			t.Errorf("entry %s arrived although its batch was refused", k)
		case !missing[k] && count[k] == 0:
			t.Errorf("entry %s never arrived", k)
		}
	}
	for k := range count {
		if !wanted[k] {
			t.Errorf("unexpected entry %s", k)
		}
	}
	// later[k]: occurrences of k from batch i+1 on, computed backwards.
	later := map[string]int{}
	for i := len(batches) - 1; i >= 0; i-- {
		again := 0
		for _, k := range batches[i] {
			if later[k] > 0 {
				again++
			}
		}
		if again != 0 && again != len(batches[i]) {
			t.Errorf("batch %d of %d: %d of its %d entries were sent again later: duplicates must be whole re-sent batches", i, len(batches), again, len(batches[i]))
		}
		for _, k := range batches[i] {
			later[k]++
		}
	}
	for _, n := range count {
		dups += n - 1
	}
	return dups
}
