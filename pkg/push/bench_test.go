package push

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/push/pushpb"
	"github.com/lokal-logs/lokal/pkg/store"
)

// benchBatch builds a push request of about size line bytes over a few
// streams, lines shaped like a service's logfmt and plain logs.
func benchBatch(rng *rand.Rand, size int) (*pushpb.PushRequest, int) {
	streams := []string{`{service_name="api", env="prod"}`, `{service_name="worker", env="prod"}`, `{service_name="db", env="prod"}`, `{service_name="web", env="prod"}`}
	levels := []string{"info", "info", "info", "debug", "warn", "error"}
	paths := []string{"/api/v1/items", "/api/v1/users", "/healthz", "/api/v1/orders", "/static/app.js"}
	msgs := []string{"request handled", "cache miss", "retrying upstream", "connection reset by peer", "slow query"}
	r := &pushpb.PushRequest{Streams: make([]pushpb.Stream, len(streams))}
	for i, s := range streams {
		r.Streams[i].Labels = s
	}
	total := 0
	for n := 0; total < size; n++ {
		var line string
		if n%4 == 3 {
			line = fmt.Sprintf("%s [%s] worker %d processed job %08x in %dms (%d items, queue depth %d)",
				strings.ToUpper(levels[rng.IntN(len(levels))]), "jobs", rng.IntN(16), rng.Uint32(), rng.IntN(900), rng.IntN(500), rng.IntN(50))
		} else {
			line = fmt.Sprintf(`level=%s caller=server.go:%d msg=%q method=GET path=%s/%d status=%d duration=%d.%03dms bytes=%d trace_id=%016x`,
				levels[rng.IntN(len(levels))], 100+rng.IntN(400), msgs[rng.IntN(len(msgs))], paths[rng.IntN(len(paths))], rng.IntN(100000),
				[]int{200, 200, 200, 204, 404, 500}[rng.IntN(6)], rng.IntN(300), rng.IntN(1000), rng.IntN(1<<16), rng.Uint64())
		}
		s := &r.Streams[n%len(streams)]
		s.Entries = append(s.Entries, pushpb.Entry{Line: line})
		total += len(line)
	}
	return r, total
}

// peakRSS is the process's peak resident set (VmHWM) in bytes, or 0 where
// /proc is missing.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkPushThroughput posts protobuf+snappy batches of 1 MiB of lines
// over loopback HTTP to the handler in front of a real store on disk, and
// flushes the store at the end, so MB/s (line bytes) covers decoding, the
// checks, level detection, the append and the commits. The client builds
// each batch (new timestamps, marshal, snappy) in the same process, and
// peak-RSS-MB is the whole process's peak: both overstate the server's
// cost. Run with
//
//	go test -run XXX -bench PushThroughput -benchtime 400x ./pkg/push/
func BenchmarkPushThroughput(b *testing.B) {
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(NewHandler(st, HandlerOptions{}))
	defer srv.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	req, lineBytes := benchBatch(rng, 1<<20)
	entries := 0
	for _, s := range req.Streams {
		entries += len(s.Entries)
	}
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	// Each batch spans a second: entries 1s/entries apart.
	step := time.Second / time.Duration(entries)
	var raw, body []byte
	client := srv.Client()
	b.SetBytes(int64(lineBytes))
	b.ResetTimer()
	for i := range b.N {
		k := 0
		for si := range req.Streams {
			for ei := range req.Streams[si].Entries {
				req.Streams[si].Entries[ei].Timestamp = start.Add(time.Duration(i)*time.Second + time.Duration(k)*step)
				k++
			}
		}
		raw = req.MarshalAppend(raw[:0])
		body = pushpb.EncodeSnappy(body[:cap(body)], raw)
		resp, err := client.Post(srv.URL, "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("push %d: %d %s", i, resp.StatusCode, msg)
		}
	}
	if err := st.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if info := st.Info(); info.Entries+info.HeadEntries != int64(b.N*entries) {
		b.Fatalf("store holds %d entries, pushed %d", info.Entries+info.HeadEntries, b.N*entries)
	}
	b.ReportMetric(float64(peakRSS())/1e6, "peak-RSS-MB")
}
