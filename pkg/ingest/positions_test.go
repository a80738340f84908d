package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/store"
)

// crashStore is a store whose appends become durable only on commit; a
// crash forgets what was not committed, as a kill -9 before the head's
// commit does. It lives in a directory, so the ingester keeps its
// positions file there.
type crashStore struct {
	*memStore
	dir     string
	mu      sync.Mutex // guards pending
	pending []store.AppendBatch
}

func (c *crashStore) Dir() string { return c.dir }

func (c *crashStore) Append(_ context.Context, b store.AppendBatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, b)
	return nil
}

func (c *crashStore) commit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.pending {
		if err := c.memStore.Append(context.Background(), b); err != nil {
			panic(err)
		}
	}
	c.pending = nil
}

func (c *crashStore) crash() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = nil
}

// TestPositionsFileAcrossCrashes runs catch-ups over rotations with crashes
// before commits, and checks every line is stored exactly once.
func TestPositionsFileAcrossCrashes(t *testing.T) {
	type step func(e *env, cs *crashStore, next *int)
	write := func(n int) step {
		return func(e *env, _ *crashStore, next *int) {
			e.write("a.log", numbered("a", *next, *next+n))
			*next += n
		}
	}
	run := func(e *env, cs *crashStore, _ *int) {
		e.t.Helper()
		in, err := New(e.set, e.op, cs, e.opts)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := in.CatchUp(context.Background()); err != nil {
			e.t.Fatal(err)
		}
	}
	commit := func(_ *env, cs *crashStore, _ *int) { cs.commit() }
	crash := func(_ *env, cs *crashStore, _ *int) { cs.crash() }
	// rotate shifts a.log.N to a.log.N+1, then moves a.log to a.log.1 by
	// rename or by copy and truncate. Rotated files are aged an hour, so
	// only a recorded identity can lead to them.
	rotate := func(copyTruncate bool) step {
		return func(e *env, _ *crashStore, _ *int) {
			for n := 9; n >= 1; n-- {
				from := e.path("a.log." + string(rune('0'+n)))
				if _, err := os.Stat(from); err == nil {
					e.rename(filepath.Base(from), "a.log."+string(rune('0'+n+1)))
				}
			}
			if copyTruncate {
				data, err := os.ReadFile(e.path("a.log"))
				if err != nil {
					e.t.Fatal(err)
				}
				if err := os.WriteFile(e.path("a.log.1"), data, 0o644); err != nil {
					e.t.Fatal(err)
				}
				if err := os.Truncate(e.path("a.log"), 0); err != nil {
					e.t.Fatal(err)
				}
			} else {
				e.rename("a.log", "a.log.1")
			}
			old := time.Now().Add(-time.Hour)
			matches, _ := filepath.Glob(e.path("a.log.*"))
			for _, m := range matches {
				if err := os.Chtimes(m, old, old); err != nil {
					e.t.Fatal(err)
				}
			}
		}
	}
	rename, copyTrunc := rotate(false), rotate(true)
	// gzip2 compresses a.log.2 into a.log.2.gz, as logrotate's compress
	// with delaycompress does.
	gzip2 := func(e *env, _ *crashStore, _ *int) {
		data, err := os.ReadFile(e.path("a.log.2"))
		if err != nil {
			e.t.Fatal(err)
		}
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		if _, err := zw.Write(data); err != nil {
			e.t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(e.path("a.log.2.gz"), b.Bytes(), 0o644); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Remove(e.path("a.log.2")); err != nil {
			e.t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"rename before the first commit", []step{write(40), run, crash, rename, write(40), run, crash, rename, write(40)}},
		{"copytruncate before the first commit", []step{write(40), run, crash, copyTrunc, write(40), run, crash, copyTrunc, write(40)}},
		{"copytruncate after a commit, twice before the next", []step{write(40), run, commit, write(20), copyTrunc, write(20), run, crash, copyTrunc, write(20)}},
		{"copytruncate while part is committed", []step{write(40), run, commit, write(20), run, crash, copyTrunc, write(20), run, crash, copyTrunc, write(20)}},
		{"rename after a commit, twice before the next", []step{write(40), run, commit, write(20), rename, write(20), run, crash, rename, write(20)}},
		{"rename, then compressed, before the first commit", []step{write(40), run, crash, rename, write(40), run, crash, rename, gzip2, write(40)}},
		{"copytruncate, then compressed, before the first commit", []step{write(40), run, crash, copyTrunc, write(40), run, crash, copyTrunc, gzip2, write(40)}},
		{"crash after crash, nothing rotated", []step{write(40), run, crash, write(20), run, crash, write(20)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "*.log")
			cs := &crashStore{memStore: e.st, dir: t.TempDir()}
			next := 0
			for _, s := range tc.steps {
				s(e, cs, &next)
			}
			run(e, cs, &next)
			commit(e, cs, &next)
			if _, err := os.Stat(filepath.Join(cs.dir, PositionsFileName)); err != nil {
				t.Errorf("no positions file: %v", err)
			}
			diffLines(t, e.st.lines(), want(numbered("a", 0, next)))
		})
	}
}

// TestPositionsFileUnreadable: a damaged positions file is reported and
// costs only what it protected; nothing is read twice.
func TestPositionsFileUnreadable(t *testing.T) {
	e := newEnv(t, "*.log")
	cs := &crashStore{memStore: e.st, dir: t.TempDir()}
	e.write("a.log", numbered("a", 0, 40))
	in, err := New(e.set, e.op, cs, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	cs.commit()
	if err := os.WriteFile(filepath.Join(cs.dir, PositionsFileName), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.write("a.log", numbered("a", 40, 60))
	in, err = New(e.set, e.op, cs, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	cs.commit()
	h := in.Health()
	if len(h.Problems) != 1 || !strings.Contains(h.Problems[0], PositionsFileName+" is unreadable") {
		t.Errorf("problems = %q, want one saying the positions file is unreadable", h.Problems)
	}
	diffLines(t, e.st.lines(), want(numbered("a", 0, 60)))
}

// TestPositionsFilePruned: entries the store has committed since are
// dropped from the positions file once it grows past pruneAt.
func TestPositionsFilePruned(t *testing.T) {
	defer func(n int) { pruneAt = n }(pruneAt)
	pruneAt = 8
	e := newEnv(t, "*.log")
	e.set.PollInterval = 20 * 1e6 // 20ms
	cs := &crashStore{memStore: e.st, dir: t.TempDir()}
	in, err := New(e.set, e.op, cs, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	entries := func() int {
		var pf positionsFile
		data, err := os.ReadFile(filepath.Join(cs.dir, PositionsFileName))
		if err != nil || json.Unmarshal(data, &pf) != nil {
			return -1
		}
		return len(pf.Positions)
	}
	n := pruneAt + 10
	for i := 0; i < n; i++ {
		e.write(fmt.Sprintf("f%03d.log", i), numbered("f", i, i+1))
	}
	waitFor(t, "every file recorded", func() bool { return entries() == n })
	waitFor(t, "every line appended", func() bool {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		lines := 0
		for _, b := range cs.pending {
			for _, se := range b.Streams {
				lines += len(se.Entries)
			}
		}
		return lines == n
	})
	cs.commit()
	e.write("new.log", numbered("new", 0, 1))
	waitFor(t, "the committed files dropped from the positions file", func() bool { return entries() == 1 })
}
