package ingest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/lokal-logs/lokal/pkg/config"
)

func gzipFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCatchUpScenarios(t *testing.T) {
	a1, a2, a3 := numbered("a", 0, 50), numbered("a", 50, 80), numbered("a", 80, 120)
	b1, b2 := numbered("b", 0, 40), numbered("b", 40, 60)
	tests := []struct {
		name string
		glob string
		// steps alternate file operations and catch-ups (a restart each).
		steps func(e *env)
		want  []string
	}{
		{
			name: "append between runs",
			glob: "*.log",
			steps: func(e *env) {
				e.write("app.log", a1)
				e.catchUp()
				e.write("app.log", a2)
				e.catchUp()
				e.catchUp()
			},
			want: want(a1, a2),
		},
		{
			name: "rename rotation, old file still written after the rename",
			glob: "*.log",
			steps: func(e *env) {
				e.write("app.log", a1)
				e.catchUp()
				e.write("app.log", a2)
				e.rename("app.log", "app.log.1")
				e.write("app.log.1", b2) // the writer had not reopened yet
				e.write("app.log", a3)
				e.catchUp()
				e.catchUp()
			},
			want: want(a1, a2, b2, a3),
		},
		{
			name: "rotated twice while stopped",
			glob: "*.log",
			steps: func(e *env) {
				e.write("app.log", a1)
				e.catchUp()
				e.write("app.log", a2)
				e.rename("app.log", "app.log.1")
				e.write("app.log", b1)
				e.rename("app.log.1", "app.log.2")
				e.rename("app.log", "app.log.1")
				e.write("app.log", a3)
				e.catchUp()
				e.catchUp()
			},
			want: want(a1, a2, b1, a3),
		},
		{
			name: "copytruncate, copy outside the glob",
			glob: "*.log",
			steps: func(e *env) {
				e.write("app.log", a1)
				e.catchUp()
				e.write("app.log", a2)
				copyFile(e.t, e.path("app.log"), e.path("app.log.1"))
				truncate(e.t, e.path("app.log"))
				e.write("app.log", a3)
				e.catchUp()
				e.catchUp()
			},
			want: want(a1, a2, a3),
		},
		{
			name: "copytruncate, copy inside the glob",
			glob: "app*",
			steps: func(e *env) {
				e.write("app.log", a1)
				e.catchUp()
				e.write("app.log", a2)
				copyFile(e.t, e.path("app.log"), e.path("app.log.1"))
				e.catchUp() // sees the copy before the truncation
				truncate(e.t, e.path("app.log"))
				e.write("app.log", a3)
				e.catchUp()
				e.catchUp()
			},
			want: want(a1, a2, a3),
		},
		{
			name: "truncated and rewritten past the old offset",
			glob: "*.log",
			steps: func(e *env) {
				e.write("app.log", a1)
				e.catchUp()
				truncate(e.t, e.path("app.log"))
				e.write("app.log", b1+b2)
				e.catchUp()
			},
			want: want(a1, b1, b2),
		},
		{
			name: "deleted and recreated",
			glob: "*.log",
			steps: func(e *env) {
				e.write("app.log", a1)
				e.catchUp()
				e.remove("app.log")
				e.write("app.log", b1)
				e.catchUp()
				e.catchUp()
			},
			want: want(a1, b1),
		},
		{
			name: "gzip of a generation already read is not read again",
			glob: "app.log*",
			steps: func(e *env) {
				e.write("app.log", a1)
				e.catchUp()
				e.rename("app.log", "app.log.1")
				e.compress("app.log.1", "app.log.1.gz")
				e.write("app.log", b1)
				e.catchUp()
				e.catchUp()
			},
			want: want(a1, b1),
		},
		{
			name: "gzip of a generation read halfway continues at the offset",
			glob: "app.log*",
			steps: func(e *env) {
				e.write("app.log", a1)
				e.catchUp()
				e.write("app.log", a2)
				e.rename("app.log", "app.log.1")
				e.compress("app.log.1", "app.log.1.gz")
				e.catchUp()
				e.catchUp()
			},
			want: want(a1, a2),
		},
		{
			name: "gzip never seen is read whole, once",
			glob: "*",
			steps: func(e *env) {
				e.write("old.log", a1)
				e.compress("old.log", "older.log.gz")
				e.catchUp()
				e.catchUp()
			},
			want: want(a1),
		},
		{
			name: "partial last line waits for its newline",
			glob: "*.log",
			steps: func(e *env) {
				e.write("app.log", a1+"2026-01-02 03:04:05,000 INFO half a li")
				e.catchUp()
				e.write("app.log", "ne\n")
				e.catchUp()
			},
			want: want(a1, "2026-01-02 03:04:05,000 INFO half a line"),
		},
		{
			name: "partial last line of a rotated file is flushed",
			glob: "*.log",
			steps: func(e *env) {
				e.write("app.log", a1+"2026-01-02 03:04:05,000 INFO last words")
				e.catchUp()
				e.rename("app.log", "app.log.1")
				e.write("app.log", b1)
				e.catchUp()
				e.catchUp()
			},
			want: want(a1, "2026-01-02 03:04:05,000 INFO last words", b1),
		},
		{
			name: "CRLF endings",
			glob: "*.log",
			steps: func(e *env) {
				e.write("app.log", strings.ReplaceAll(a1, "\n", "\r\n"))
				e.catchUp()
			},
			want: want(a1),
		},
		{
			name: "invalid UTF-8 is replaced byte by byte, never dropped",
			glob: "*.log",
			steps: func(e *env) {
				e.write("app.log", "2026-01-02 03:04:05,000 INFO caf\xe9 \xff\xfe ok\n")
			},
			want: want("2026-01-02 03:04:05,000 INFO caf\uFFFD \uFFFD\uFFFD ok"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.glob)
			tc.steps(e)
			e.catchUp()
			diffLines(t, e.st.lines(), tc.want)
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, p string) {
	t.Helper()
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
}

func TestLongLinesAreCutAndMarked(t *testing.T) {
	e := newEnv(t, "*.log")
	e.set.MaxLineBytes = 1024
	long := "2026-01-02 03:04:05,000 INFO " + strings.Repeat("x", 5000)
	e.write("app.log", "short one\n"+long+"\nafter\n")
	in := e.catchUp()
	got := e.st.lines()
	cut := long[:1024] + fmt.Sprintf(" …[truncated %d bytes]", len(long)-1024)
	diffLines(t, got, want("short one", cut, "after"))
	if h := in.Health(); h.TruncatedLines != 1 {
		t.Errorf("TruncatedLines = %d, want 1", h.TruncatedLines)
	}
}

func TestFilenameAndStaticLabels(t *testing.T) {
	e := newEnv(t, "*.log")
	e.set.ScrapeConfigs[0].StaticConfigs[0].Labels["instance"] = "box1"
	e.write("app.log", "2026-01-02 03:04:05,000 ERROR boom\n")
	e.catchUp()
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	if len(e.st.labels) != 1 {
		t.Fatalf("streams = %v, want one", e.st.labels)
	}
	for _, ls := range e.st.labels {
		if ls.Get("filename") != e.path("app.log") || ls.Get("job") != "test" || ls.Get("instance") != "box1" || ls.Has("__path__") {
			t.Errorf("labels = %s", ls)
		}
		if ls.Get("level") != "error" {
			t.Errorf("level = %q, want error (default detection)", ls.Get("level"))
		}
	}
}

func TestDisallowedPathsAreReportedNotRead(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.log"), []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(e *env) string // returns the path expected in the rejects
	}{
		{"pattern outside the allowlist", func(e *env) string {
			e.set.ScrapeConfigs[0].StaticConfigs[0].Labels["__path__"] = filepath.Join(outside, "*.log")
			return filepath.Join(outside, "*.log")
		}},
		{"symlink escaping the allowed directory", func(e *env) string {
			if err := os.Symlink(filepath.Join(outside, "secret.log"), e.path("link.log")); err != nil {
				e.t.Fatal(err)
			}
			return e.path("link.log")
		}},
		{"nothing allowed at all", func(e *env) string {
			e.op.AllowedPaths = nil
			e.write("app.log", "allowed? no\n")
			return filepath.Join(e.dir, "*.log")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "*.log")
			rejected := tc.setup(e)
			in := e.catchUp()
			if n := e.st.count(); n != 0 {
				t.Fatalf("stored %d lines from a disallowed path: %q", n, e.st.lines())
			}
			h := in.Health()
			found := false
			for _, r := range h.FilesRejected {
				if r.Path == rejected && strings.Contains(r.Reason, "not allowed") {
					found = true
				}
			}
			if !found {
				t.Fatalf("rejects = %+v, want %s not allowed", h.FilesRejected, rejected)
			}
		})
	}
}

func TestExcludeAndDoublestar(t *testing.T) {
	e := newEnv(t, "**/*.log")
	e.set.ScrapeConfigs[0].StaticConfigs[0].Labels["__path_exclude__"] = filepath.Join(e.dir, "**/debug*.log")
	if err := os.MkdirAll(e.path("a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("top.log", "top\n")
	e.write("a/b/deep.log", "deep\n")
	e.write("a/debug.log", "excluded\n")
	e.write("a/b/notes.txt", "not a log\n")
	e.catchUp()
	diffLines(t, e.st.lines(), want("top", "deep"))
}

func TestBackpressureRetriesWithoutLoss(t *testing.T) {
	e := newEnv(t, "*.log")
	var sawPaused bool
	e.st.failures = 3
	var in *Ingester
	e.st.onFail = func() {
		if in != nil && in.Health().Paused {
			sawPaused = true
		}
	}
	e.write("app.log", numbered("a", 0, 100))
	in = e.ingester()
	if err := in.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	diffLines(t, e.st.lines(), want(numbered("a", 0, 100)))
	if !sawPaused {
		t.Error("Health().Paused was never true while appends failed")
	}
	if h := in.Health(); h.Paused {
		t.Errorf("still paused after a successful append: %+v", h)
	}
}

// waitFor polls cond until it holds; the deadline only stops a hung test,
// it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunFollowsRotationAndNotifies(t *testing.T) {
	for _, mode := range []string{"fsnotify", "polling"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, "*.log")
			e.opts.NoFsnotify = mode == "polling"
			e.set.PollInterval = 20 * 1e6 // 20ms
			in := e.ingester()
			notes, cancelSub := in.Subscribe()
			defer cancelSub()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			e.write("app.log", numbered("a", 0, 10))
			go func() { done <- in.Run(ctx) }()
			waitFor(t, "first lines", func() bool { return e.st.count() == 10 })
			e.write("app.log", numbered("a", 10, 20))
			e.rename("app.log", "app.log.1")
			e.write("app.log.1", numbered("a", 20, 25))
			e.write("app.log", numbered("b", 0, 10))
			waitFor(t, "lines after rotation", func() bool { return e.st.count() == 35 })
			// copytruncate while running
			copyFile(t, e.path("app.log"), e.path("app.log.2"))
			truncate(t, e.path("app.log"))
			e.write("app.log", numbered("c", 0, 10))
			waitFor(t, "lines after copytruncate", func() bool { return e.st.count() == 45 })
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			diffLines(t, e.st.lines(), want(numbered("a", 0, 25), numbered("b", 0, 10), numbered("c", 0, 10)))
			n := 0
			for len(notes) > 0 {
				note := <-notes
				for _, s := range note.Streams {
					n += len(s.Entries)
				}
			}
			if n != 45 {
				t.Errorf("notifications carried %d entries, want 45", n)
			}
		})
	}
}

func TestRefusedAppendEndsTheRunAndLosesNothing(t *testing.T) {
	e := newEnv(t, "*.log")
	e.write("app.log", numbered("a", 0, 100))
	e.st.fatal = fmt.Errorf("append: store closed")
	in := e.ingester()
	err := in.CatchUp(context.Background())
	if err == nil || !strings.Contains(err.Error(), "store closed") {
		t.Fatalf("CatchUp = %v, want the store's error", err)
	}
	if n := e.st.count(); n != 0 {
		t.Fatalf("stored %d lines through a refusing store", n)
	}
	e.st.fatal = nil
	e.catchUp()
	diffLines(t, e.st.lines(), want(numbered("a", 0, 100)))
}

func TestHealthCounts(t *testing.T) {
	e := newEnv(t, "*.log")
	a, b := numbered("a", 0, 30), "2026-01-02 03:04:05,000 INFO caf\xe9\n"
	e.write("app.log", a)
	e.write("other.log", b)
	e.write("app.log.1", "not matched\n")
	in := e.catchUp()
	h := in.Health()
	if h.FilesMatched != 2 || h.FilesTracked != 2 || len(h.Files) != 2 {
		t.Errorf("matched %d, tracked %d, files %+v; want 2 each", h.FilesMatched, h.FilesTracked, h.Files)
	}
	if h.Lines != 31 || h.Bytes != int64(len(a)+len(b)) || h.InvalidUTF8Lines != 1 {
		t.Errorf("lines %d bytes %d invalid %d; want 31, %d, 1", h.Lines, h.Bytes, h.InvalidUTF8Lines, len(a)+len(b))
	}
	for _, f := range h.Files {
		if f.Offset != f.Size || f.Job != "test" || f.Rotated {
			t.Errorf("file status %+v: want read to its size, job test, not rotated", f)
		}
	}
	if h.Paused || len(h.Problems) != 0 || len(h.FilesRejected) != 0 {
		t.Errorf("unexpected trouble: %+v", h)
	}
}

func TestGzipStillBeingWritten(t *testing.T) {
	for _, lines := range []int{5, 400} { // head shorter and longer than the fingerprint
		t.Run(fmt.Sprint(lines), func(t *testing.T) {
			e := newEnv(t, "*.gz")
			a := numbered("a", 0, lines)
			e.write("whole.log", a)
			gzipFile(t, e.path("whole.log"), e.path("old.log.gz"))
			full, err := os.ReadFile(e.path("old.log.gz"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(e.path("old.log.gz"), full[:len(full)/2], 0o644); err != nil {
				t.Fatal(err)
			}
			e.catchUp()
			if n := e.st.count(); n >= lines {
				t.Fatalf("read %d lines of the half-written .gz, want fewer than %d", n, lines)
			}
			if err := os.WriteFile(e.path("old.log.gz"), full, 0o644); err != nil {
				t.Fatal(err)
			}
			e.catchUp()
			e.catchUp()
			diffLines(t, e.st.lines(), want(a))
		})
	}
}

// TestQuietFileReleasesHeldLine: the stages hold a file's last entry in case
// a traceback follows. With no poll tick and no file event to come (polling
// every hour, no fsnotify), only the ingester's held-entries timer can
// release it; the position then covers the whole file.
func TestQuietFileReleasesHeldLine(t *testing.T) {
	e := newEnv(t, "*.log")
	e.opts.NoFsnotify = true
	e.set.PollInterval = config.Duration(time.Hour)
	last := "2026-01-02 03:04:06,000 ERROR inference failed\n" +
		"Traceback (most recent call last):\n" +
		"  File \"x.py\", line 1, in <module>\n" +
		"torch.OutOfMemoryError: CUDA out of memory.\n"
	text := numbered("a", 0, 5) + last
	e.write("app.log", text)
	in := e.ingester()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	waitFor(t, "the held traceback entry", func() bool { return e.st.count() == 6 })
	var pos position
	waitFor(t, "the position past the held entry", func() bool {
		for k, v := range e.st.Cursors() {
			if strings.HasPrefix(k, cursorPrefix) {
				p, _, err := decodePosition(v)
				if err != nil {
					t.Fatalf("decode %s: %v", k, err)
				}
				pos = p
			}
		}
		return pos.Offset == int64(len(text))
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The traceback is one entry with the line it belongs to.
	expected := append(want(numbered("a", 0, 5)), strings.TrimSuffix(last, "\n"))
	sort.Strings(expected)
	diffLines(t, e.st.lines(), expected)
}
