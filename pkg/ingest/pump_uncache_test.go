package ingest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestUncacheRange(t *testing.T) {
	const every = 8 << 20
	const mib = 1 << 20
	tests := []struct {
		name          string
		uncached, end int64 // reader state: dropped up to, read up to
		final         bool
		from, to      int64
		ok            bool
	}{
		{name: "nothing read", uncached: 0, end: 0, final: true},
		{name: "too little yet", uncached: 0, end: every - 1},
		{name: "a full step", uncached: 0, end: every, from: 0, to: every, ok: true},
		{name: "from the folio boundary below", uncached: 9*mib + 5000, end: 9*mib + 5000 + every, from: 8 * mib, to: 9*mib + 5000 + every, ok: true},
		{name: "final drops the rest, to its page's end", uncached: every, end: every + 10, final: true, from: every, to: every + 4096, ok: true},
		{name: "final with nothing new", uncached: every, end: every, final: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lr := newLineReader(strings.NewReader(""), tc.uncached, 0)
			// The reader has consumed up to end: nothing buffered.
			lr.off = tc.end
			from, to, ok := lr.uncacheRange(every, tc.final)
			if ok != tc.ok || from != tc.from || to != tc.to {
				t.Errorf("uncacheRange = %d, %d, %v; want %d, %d, %v", from, to, ok, tc.from, tc.to, tc.ok)
			}
		})
	}
}

type adviceCall struct {
	path     string
	off, end int64
}

// recordAdvice replaces the page-cache advice with a recorder for the
// test's duration.
func recordAdvice(t *testing.T) func() []adviceCall {
	var (
		mu    sync.Mutex
		calls []adviceCall
	)
	old := adviseDontNeed
	adviseDontNeed = func(f *os.File, off, n int64) {
		mu.Lock()
		calls = append(calls, adviceCall{f.Name(), off, off + n})
		mu.Unlock()
	}
	t.Cleanup(func() { adviseDontNeed = old })
	return func() []adviceCall {
		mu.Lock()
		defer mu.Unlock()
		out := calls
		calls = nil
		return out
	}
}

// backlogText is n lines of about size bytes in all.
func backlogText(size int) (string, int) {
	var b strings.Builder
	n := 0
	for b.Len() < size {
		fmt.Fprintf(&b, "2026-01-02T03:04:05Z line %d of the backlog\n", n)
		n++
	}
	return b.String(), n
}

// A catch-up hands every byte it read back to the kernel, in order and
// once, whatever the reads' sizes, and loses no line doing so; a file
// resumed from a position only advises from there.
func TestCatchUpDropsReadPages(t *testing.T) {
	taken := recordAdvice(t)
	e := newEnv(t, "*.log")
	big, n := backlogText(3*uncacheEvery + 12345)
	e.write("big.log", big)
	e.write("small.log", "one\ntwo\n")
	e.catchUp()
	if got := e.st.count(); got != n+2 {
		t.Fatalf("stored %d lines, want %d", got, n+2)
	}
	sizes := map[string]int64{e.path("big.log"): int64(len(big)), e.path("small.log"): 8}
	calls := taken()
	check := func(sizes map[string]int64, start int64) {
		t.Helper()
		for path, size := range sizes {
			var at int64 = start
			for _, c := range calls {
				if c.path != path {
					continue
				}
				if c.off != at&^(2<<20-1) || c.end <= at {
					t.Errorf("%s: advice [%d, %d) does not follow %d", path, c.off, c.end, at)
				}
				at = c.end
			}
			if at < size || at > (size+4095)&^4095 {
				t.Errorf("%s: advice covered up to %d, want its size %d or the end of its last page", path, at, size)
			}
		}
	}
	check(sizes, 0)

	// More lines; a new run resumes from the positions and advises only
	// what it reads.
	e.write("big.log", "a new line\n")
	e.catchUp()
	calls = taken()
	if got := e.st.count(); got != n+3 {
		t.Fatalf("stored %d lines after the resume, want %d", got, n+3)
	}
	if i := slices.IndexFunc(calls, func(c adviceCall) bool { return c.path == e.path("small.log") }); i >= 0 {
		t.Errorf("small.log was not read again but got advice %+v", calls[i])
	}
	check(map[string]int64{e.path("big.log"): int64(len(big)) + 11}, int64(len(big)))
}

// Following, a file's backlog is advised as it is caught up on; lines
// written after that are read as they come and left to the kernel.
func TestRunDropsOnlyTheBacklog(t *testing.T) {
	taken := recordAdvice(t)
	e := newEnv(t, "*.log")
	e.set.PollInterval = 20 * 1e6 // 20ms
	backlog, n := backlogText(uncacheEvery + 1000)
	e.write("app.log", backlog)
	in := e.ingester()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	waitFor(t, "the backlog", func() bool { return e.st.count() == n })
	// Stored means read and advised: what is written from here is live.
	e.write("app.log", "live 1\n")
	waitFor(t, "the first live line", func() bool { return e.st.count() == n+1 })
	var at int64
	for _, c := range taken() {
		if c.off != at&^(2<<20-1) || c.end <= at {
			t.Errorf("advice [%d, %d) does not follow %d", c.off, c.end, at)
		}
		at = c.end
	}
	if size := int64(len(backlog)); at < size {
		t.Errorf("backlog advice covered up to %d, want all its %d bytes", at, size)
	}
	e.write("app.log", "live 2\n")
	waitFor(t, "the second live line", func() bool { return e.st.count() == n+2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if calls := taken(); len(calls) > 0 {
		t.Errorf("lines read after the backlog got advice: %+v", calls)
	}
}
