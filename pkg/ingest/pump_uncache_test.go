package ingest

import (
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

// A catch-up hands every byte it read back to the kernel, in order and
// once, whatever the reads' sizes, and loses no line doing so; a file
// resumed from a position only advises from there.
func TestCatchUpDropsReadPages(t *testing.T) {
	type call struct {
		path     string
		off, end int64
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	old := adviseDontNeed
	adviseDontNeed = func(f *os.File, off, n int64) {
		mu.Lock()
		calls = append(calls, call{f.Name(), off, off + n})
		mu.Unlock()
	}
	t.Cleanup(func() { adviseDontNeed = old })

	e := newEnv(t, "*.log")
	var big strings.Builder
	n := 0
	for big.Len() < 3*uncacheEvery+12345 {
		fmt.Fprintf(&big, "2026-01-02T03:04:05Z line %d of the backlog\n", n)
		n++
	}
	e.write("big.log", big.String())
	e.write("small.log", "one\ntwo\n")
	e.catchUp()
	if got := e.st.count(); got != n+2 {
		t.Fatalf("stored %d lines, want %d", got, n+2)
	}
	sizes := map[string]int64{e.path("big.log"): int64(big.Len()), e.path("small.log"): 8}
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
			if at != (size+4095)&^4095 {
				t.Errorf("%s: advice covered up to %d, want the end of its last page (size %d)", path, at, size)
			}
		}
	}
	check(sizes, 0)

	// More lines; a new run resumes from the positions and advises only
	// what it reads.
	calls = nil
	e.write("big.log", "a new line\n")
	e.catchUp()
	if got := e.st.count(); got != n+3 {
		t.Fatalf("stored %d lines after the resume, want %d", got, n+3)
	}
	if i := slices.IndexFunc(calls, func(c call) bool { return c.path == e.path("small.log") }); i >= 0 {
		t.Errorf("small.log was not read again but got advice %+v", calls[i])
	}
	check(map[string]int64{e.path("big.log"): int64(big.Len()) + 11}, int64(big.Len()))
}
