package forward

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// The source stands in for the ingester: it appends entries numbered from
// the store's cursor "test/next" on, each chunk with the cursor, so a
// process killed and started again continues exactly where the store is.
const sourceCursor = "test/next"

var sourceBase = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC).UnixNano()

func sourceStream(i int) labels.Labels {
	return labels.FromStrings("job", "fwd", "stream", strconv.Itoa(i%3))
}

func sourceEntry(i int) store.Entry {
	ts := sourceBase + int64(i)*int64(time.Millisecond)
	if i%7 == 0 {
		ts -= int64(5 * time.Second) // out of order, as merged files are
	}
	return store.Entry{Ts: ts, Seq: uint64(i), Line: fmt.Sprintf("entry %06d %s", i, strings.Repeat("x", i%50))}
}

func sourceKeys(total int) []string {
	out := make([]string, total)
	for i := range out {
		e := sourceEntry(i)
		out[i] = entryKey(sourceStream(i).String(), time.Unix(0, e.Ts), e.Line)
	}
	return out
}

func sourceNext(st *store.Store) int {
	v := st.Cursors()[sourceCursor]
	if v == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(v))
	return n
}

// runSource appends the entries from the store's cursor to total, chunk
// entries at a time, pausing between chunks.
func runSource(ctx context.Context, st *store.Store, total, chunk int, pause time.Duration) error {
	for i := sourceNext(st); i < total; {
		end := min(total, i+chunk)
		by := map[string]*store.StreamEntries{}
		var b store.AppendBatch
		for j := i; j < end; j++ {
			ls := sourceStream(j)
			se := by[ls.String()]
			if se == nil {
				b.Streams = append(b.Streams, store.StreamEntries{Labels: ls})
				se = &b.Streams[len(b.Streams)-1]
				by[ls.String()] = se
			}
			se.Entries = append(se.Entries, sourceEntry(j))
		}
		// by holds pointers into b.Streams, which append may have moved.
		for k := range b.Streams {
			b.Streams[k].Entries = by[b.Streams[k].Labels.String()].Entries
		}
		b.Cursors = map[string][]byte{sourceCursor: []byte(strconv.Itoa(end))}
		if err := st.Append(ctx, b); err != nil {
			return err
		}
		i = end
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
	return nil
}

func testClient(url string) config.Client {
	c := config.Client{URL: url, BatchWait: config.Duration(20 * time.Millisecond), BatchSize: 4 << 10,
		Timeout: config.Duration(time.Second),
		BackoffConfig: config.BackoffConfig{MinPeriod: config.Duration(20 * time.Millisecond),
			MaxPeriod: config.Duration(200 * time.Millisecond), MaxRetries: 3}}
	c.ApplyDefaults()
	return c
}

// waitCaughtUp waits until the client has nothing left to send.
func waitCaughtUp(t testing.TB, f *Forwarder, deadline time.Duration) Status {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		s := f.Status()[0]
		if s.LagEntries == 0 {
			return s
		}
		if time.Now().After(end) {
			t.Fatalf("not caught up after %s: %+v", deadline, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestForwardFaults(t *testing.T) {
	const total = 3000
	cases := []struct {
		name   string
		faults func(n int) fault
		down   time.Duration // receiver down this long at the start
		check  func(t *testing.T, s Status)
	}{
		{"healthy", nil, 0, func(t *testing.T, s Status) {
			if s.BatchesRetried != 0 || s.BatchesDropped != 0 {
				t.Errorf("retries or drops without faults: %+v", s)
			}
		}},
		{"receiver down", nil, 1500 * time.Millisecond, func(t *testing.T, s Status) {
			if s.BatchesRetried == 0 {
				t.Errorf("no retries while the receiver was down: %+v", s)
			}
		}},
		{"500s", func(n int) fault {
			if n >= 2 && n <= 6 {
				return fault{status: 500}
			}
			return fault{}
		}, 0, func(t *testing.T, s Status) {
			if s.BatchesRetried < 5 {
				t.Errorf("want 5 retries: %+v", s)
			}
		}},
		{"429 with Retry-After", func(n int) fault {
			if n >= 3 && n <= 4 {
				return fault{status: 429, retryAfter: "1"}
			}
			return fault{}
		}, 0, func(t *testing.T, s Status) {
			if s.BatchesRetried != 2 {
				t.Errorf("want 2 retries: %+v", s)
			}
		}},
		{"slow replies past the timeout", func(n int) fault {
			if n%5 == 2 && n < 40 {
				return fault{delay: 1500 * time.Millisecond}
			}
			if n%5 == 4 {
				return fault{delay: 300 * time.Millisecond} // slow but in time
			}
			return fault{}
		}, 0, func(t *testing.T, s Status) {
			if s.BatchesRetried == 0 {
				t.Errorf("no retries after timeouts: %+v", s)
			}
		}},
		{"400 drops the batch", func(n int) fault {
			if n == 3 {
				return fault{status: 400}
			}
			return fault{}
		}, 0, func(t *testing.T, s Status) {
			if s.BatchesDropped != 1 || s.EntriesDropped == 0 || !strings.Contains(s.LastDrop, "injected 400") {
				t.Errorf("want one dropped batch with its reason: %+v", s)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := newReceiver(t, tc.faults)
			if tc.down > 0 {
				rec.down()
			}
			st, err := store.Open(t.TempDir(), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			f, err := Start(st, []config.Client{testClient(rec.url())}, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			srcDone := make(chan error, 1)
			go func() { srcDone <- runSource(ctx, st, total, 100, 20*time.Millisecond) }()
			if tc.down > 0 {
				time.Sleep(tc.down)
				rec.up()
			}
			if err := <-srcDone; err != nil {
				t.Fatal(err)
			}
			s := waitCaughtUp(t, f, time.Minute)
			f.Stop()
			rec.mu.Lock()
			missing := map[string]bool{}
			for _, b := range rec.refused {
				for _, k := range b {
					missing[k] = true
				}
			}
			rec.mu.Unlock()
			dups := checkDelivery(t, rec.stored(), sourceKeys(total), missing)
			if int(s.EntriesSent)+int(s.EntriesDropped) != total {
				t.Errorf("sent %d + dropped %d != stored %d", s.EntriesSent, s.EntriesDropped, total)
			}
			if len(missing) != int(s.EntriesDropped) {
				t.Errorf("receiver refused %d entries, client counted %d", len(missing), s.EntriesDropped)
			}
			tc.check(t, s)
			t.Logf("%s: %d batches sent, %d retried, %d dropped, %d duplicate entries", tc.name, s.BatchesSent, s.BatchesRetried, s.BatchesDropped, dups)
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 0 ", 0},
		{"-5", 0},
		{"Sun, 06 Dec 2026 12:00:10 GMT", 10 * time.Second},
		{"Sun, 06 Dec 2026 11:00:00 GMT", 0},
		{"soon", 0},
	}
	for _, tc := range cases {
		if got := retryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
