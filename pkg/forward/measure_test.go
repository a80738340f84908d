package forward

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/push/pushpb"
	"github.com/lokal-logs/lokal/pkg/store"
)

// Measurements for issue 10's targets; they are not run by go test unless
// asked (they take minutes and need the machine to themselves):
//
//	LOKAL_FWD_MEASURE=256MiB go test -run TestMeasureThroughput -v ./pkg/forward
//	LOKAL_FWD_MEASURE_LAG=1 go test -run TestMeasureLagRecovery -v -timeout 10m ./pkg/forward

const (
	measureEnv      = "LOKAL_FWD_MEASURE"
	measureLagEnv   = "LOKAL_FWD_MEASURE_LAG"
	measureChildEnv = "LOKAL_FWD_MEASURE_CHILD"
	measureDirEnv   = "LOKAL_FWD_MEASURE_DIR"
	measureURLEnv   = "LOKAL_FWD_MEASURE_URL"
)

// genLine makes a log line like a Python service's: a time, a level, a
// module and a message with numbers, 80 to 300 bytes.
func genLine(rng *rand.Rand, ts time.Time) string {
	levels := []string{"INFO", "INFO", "INFO", "DEBUG", "WARNING", "ERROR"}
	msgs := []string{"Generating audio: text_len=%d, speaker=%d", "request %d finished in %d ms",
		"cache hit ratio %d.%d%%", "GPU memory %d MiB of %d MiB in use", "worker %d picked job %d from the queue"}
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%s] cosyvoice.%s: ", ts.UTC().Format("2006-01-02 15:04:05,000"), levels[rng.IntN(len(levels))], []string{"server", "model", "tts", "queue"}[rng.IntN(4)])
	fmt.Fprintf(&b, msgs[rng.IntN(len(msgs))], rng.IntN(100000), rng.IntN(10000))
	for n := rng.IntN(4); n > 0; n-- {
		fmt.Fprintf(&b, " trace=%016x", rng.Uint64())
	}
	return b.String()
}

// buildMeasureStore writes size bytes of lines into a store in dir whose
// client "measure" has a cursor before all of them.
func buildMeasureStore(t *testing.T, dir, url string, size int64) (entries int64) {
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ForwardRegister(measureClient(url).Name()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ts := time.Now().Add(-time.Hour)
	var written int64
	for written < size {
		var b store.AppendBatch
		for s := range 4 {
			se := store.StreamEntries{Labels: labels.FromStrings("job", "cosyvoice3", "instance", "gpu-"+strconv.Itoa(s))}
			for range 500 {
				ts = ts.Add(time.Millisecond)
				l := genLine(rng, ts)
				se.Entries = append(se.Entries, store.Entry{Ts: ts.UnixNano(), Seq: uint64(entries), Line: l})
				written += int64(len(l))
				entries++
			}
			b.Streams = append(b.Streams, se)
		}
		if err := st.Append(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return entries
}

// measureClient is the measurement's client: Promtail's defaults.
func measureClient(url string) config.Client {
	c := config.Client{URL: url}
	c.ApplyDefaults()
	return c
}

// countingReceiver decodes every push (snappy, protobuf) and counts.
type countingReceiver struct {
	entries, bytes atomic.Int64
	down           atomic.Bool
	discard        bool // LOKAL_FWD_MEASURE_RECEIVER=discard: do not decode
}

func (c *countingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if c.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if c.discard {
		// Only the snappy frame's length: what the forwarder alone costs.
		n, err := pushpb.DecodedLen(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.bytes.Add(int64(n))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	req, err := Decode(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, s := range req.Streams {
		for _, e := range s.Entries {
			c.bytes.Add(int64(len(e.Line)))
		}
		c.entries.Add(int64(len(s.Entries)))
	}
	w.WriteHeader(http.StatusNoContent)
}

type childReport struct {
	RSSBeforeKiB int64   `json:"rss_before_kib"` // the store open, before forwarding
	PeakKiB      int64   `json:"peak_kib"`       // peak RSS while forwarding
	Seconds      float64 `json:"seconds"`
	Entries      int64   `json:"entries"`
	Bytes        int64   `json:"bytes"`
}

// procStatus reads a kB field of /proc/self/status.
func procStatus(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// measureChild opens the store, notes its RSS, resets the peak (Linux:
// clear_refs 5), forwards everything and reports the peak RSS meanwhile.
func measureChild(dir, url string) error {
	st, err := store.Open(dir, store.Options{CompactAfterIdle: -1})
	if err != nil {
		return err
	}
	runtime.GC()
	var rep childReport
	if rep.RSSBeforeKiB, err = procStatus("VmRSS"); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak RSS: %w", err)
	}
	began := time.Now()
	f, err := Start(st, []config.Client{measureClient(url)}, nil)
	if err != nil {
		return err
	}
	heapProf := os.Getenv("LOKAL_FWD_MEASURE_HEAPPROFILE")
	for {
		s := f.Status()[0]
		if s.LagEntries == 0 {
			rep.Entries, rep.Bytes = s.EntriesSent, s.BytesSent
			break
		}
		if heapProf != "" && s.EntriesSent > s.LagEntries {
			if hf, err := os.Create(heapProf); err == nil {
				_ = pprof.WriteHeapProfile(hf)
				hf.Close()
			}
			heapProf = ""
		}
		time.Sleep(5 * time.Millisecond)
	}
	rep.Seconds = time.Since(began).Seconds()
	f.Stop()
	if rep.PeakKiB, err = procStatus("VmHWM"); err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

func runMeasureChild(t *testing.T, dir, url string) childReport {
	args := []string{"-test.run=^TestMeasureThroughput$"}
	if prof := os.Getenv("LOKAL_FWD_MEASURE_CPUPROFILE"); prof != "" {
		args = append(args, "-test.cpuprofile="+prof)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), measureChildEnv+"=1", measureDirEnv+"="+dir, measureURLEnv+"="+url)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		var rep childReport
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &rep) == nil {
			return rep
		}
	}
	t.Fatalf("child said %q", out)
	return childReport{}
}

func TestMeasureThroughput(t *testing.T) {
	if os.Getenv(measureChildEnv) != "" {
		if err := measureChild(os.Getenv(measureDirEnv), os.Getenv(measureURLEnv)); err != nil {
			t.Fatal(err)
		}
		return
	}
	sizeS := os.Getenv(measureEnv)
	if sizeS == "" {
		t.Skip("set " + measureEnv + "=256MiB to measure forwarding throughput and RSS")
	}
	size, err := config.ParseByteSize(sizeS)
	if err != nil {
		t.Fatal(err)
	}
	rec := &countingReceiver{discard: os.Getenv("LOKAL_FWD_MEASURE_RECEIVER") == "discard"}
	url := serveReceiver(t, rec)
	dir := t.TempDir()
	entries := buildMeasureStore(t, dir, url, size)
	fwd := runMeasureChild(t, dir, url)
	if (!rec.discard && rec.entries.Load() != entries) || fwd.Entries != entries {
		t.Fatalf("receiver got %d entries, the forwarder sent %d, the store holds %d", rec.entries.Load(), fwd.Entries, entries)
	}
	mbps := float64(fwd.Bytes) / 1e6 / fwd.Seconds
	how := "decoding every push (snappy, protobuf)"
	if rec.discard {
		how = "reading every push without decoding it"
	}
	t.Logf("forwarded %d entries, %.1f MB of lines, in %.2f s: %.1f MB/s (the receiver, in the parent process, %s)",
		fwd.Entries, float64(fwd.Bytes)/1e6, fwd.Seconds, mbps, how)
	t.Logf("RSS of the forwarding process: %.1f MB with the store open, peak %.1f MB while forwarding: the forwarder adds %.1f MB",
		float64(fwd.RSSBeforeKiB)/1024, float64(fwd.PeakKiB)/1024, float64(fwd.PeakKiB-fwd.RSSBeforeKiB)/1024)
}

// serveReceiver serves rec on a loopback port until the test ends and
// returns its push URL.
func serveReceiver(t *testing.T, rec http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/loki/api/v1/push"
}

func TestMeasureLagRecovery(t *testing.T) {
	if os.Getenv(measureLagEnv) == "" {
		t.Skip("set " + measureLagEnv + "=1 to measure lag recovery after an outage at 1 MB/s")
	}
	const rate = 1 << 20 // bytes of lines per second
	const before, outage, after = 10 * time.Second, 60 * time.Second, 60 * time.Second
	rec := &countingReceiver{}
	url := serveReceiver(t, rec)
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f, err := Start(st, []config.Client{measureClient(url)}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the live rate: 1 MB/s in 20 appends a second
		defer wg.Done()
		rng := rand.New(rand.NewPCG(3, 4))
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				se := store.StreamEntries{Labels: labels.FromStrings("job", "live")}
				for n := 0; n < rate/20; {
					l := genLine(rng, now)
					se.Entries = append(se.Entries, store.Entry{Ts: now.UnixNano(), Seq: uint64(len(se.Entries)), Line: l})
					n += len(l)
				}
				_ = st.Append(ctx, store.AppendBatch{Streams: []store.StreamEntries{se}})
			}
		}
	}()
	lag := func() time.Duration { return f.Status()[0].Lag }
	var maxBefore time.Duration
	for end := time.Now().Add(before); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		maxBefore = max(maxBefore, lag())
	}
	rec.down.Store(true)
	time.Sleep(outage)
	down := f.Status()[0]
	rec.down.Store(false)
	back := time.Now()
	var recovered, lastAbove, maxAfterRecovery time.Duration
	for time.Since(back) < after {
		l := lag()
		if recovered == 0 && l < 2*time.Second {
			recovered = time.Since(back)
		} else if recovered != 0 {
			maxAfterRecovery = max(maxAfterRecovery, l)
		}
		if l >= 2*time.Second {
			lastAbove = time.Since(back)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	t.Logf("live lag before the outage: at most %s", maxBefore.Round(time.Millisecond))
	t.Logf("after %s down: lag %s, %d entries (%.1f MB) waiting", outage, down.Lag.Round(time.Millisecond), down.LagEntries, float64(down.LagBytes)/1e6)
	// A measurement, not a check: on a shared machine the time to recover
	// follows the load, so the figure is reported against the issue's
	// target (under 2 s within a minute) and never fails the test.
	if recovered == 0 {
		t.Logf("target missed: lag still %s after %s", lag(), after)
		return
	}
	t.Logf("lag under 2 s %s after the receiver came back, and for good from %s on; at most %s in the rest of the minute",
		recovered.Round(time.Millisecond), lastAbove.Round(time.Millisecond), maxAfterRecovery.Round(time.Millisecond))
}
