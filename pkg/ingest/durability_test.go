package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/sample"
	"github.com/lokal-logs/lokal/pkg/store"
)

// The child process of the kill -9 test reads these.
const (
	childEnv      = "LOKAL_INGEST_DURABILITY_CHILD"
	childLogsEnv  = "LOKAL_INGEST_DURABILITY_LOGS"
	childStoreEnv = "LOKAL_INGEST_DURABILITY_STORE"
	// childSlowHeadEnv makes the child's store commit on the default
	// schedule (DefaultHeadMaxAge), so a kill in the first seconds finds
	// nothing committed.
	childSlowHeadEnv = "LOKAL_INGEST_DURABILITY_SLOW_HEAD"
)

// durabilityStoreOptions commit often, so that progress survives kills that
// come every second or so.
func durabilityStoreOptions() store.Options {
	return store.Options{HeadMaxAge: 200 * time.Millisecond, HeadFlushBytes: 256 << 10}
}

func durabilitySettings(logs string) *config.Settings {
	s := &config.Settings{ScrapeConfigs: []config.ScrapeConfig{{
		JobName: "cosyvoice3",
		StaticConfigs: []config.StaticConfig{{Labels: map[string]string{
			"job": "cosyvoice3", "__path__": filepath.Join(logs, "**", "*.log")}}},
	}}}
	s.ApplyDefaults()
	s.PollInterval = config.Duration(50 * time.Millisecond)
	return s
}

// TestDurabilityChild is the ingester process that TestKill9Durability
// kills; it does nothing in a normal test run.
func TestDurabilityChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("helper process of TestKill9Durability")
	}
	logs, dir := os.Getenv(childLogsEnv), os.Getenv(childStoreEnv)
	var app store.Appender
	if os.Getenv("LOKAL_FILESTORE") != "" {
		fs, err := openFileStore(filepath.Join(dir + ".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		app = fs
	} else {
		opts := durabilityStoreOptions()
		if os.Getenv(childSlowHeadEnv) != "" {
			opts = store.Options{}
		}
		st, err := store.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		app = st
	}
	in, err := New(durabilitySettings(logs), &config.Operator{AllowedPaths: []string{logs}}, app, Options{RotatedIdle: 300 * time.Millisecond,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "child: "+f+"\n", a...) }})
	if err != nil {
		t.Fatal(err)
	}
	// Runs until SIGKILL; never ends on its own.
	if err := in.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

var seqRe = regexp.MustCompile(`(?:seq=|"seq":)(\d+)`)

// TestKill9Durability appends live with rotations while an ingester
// process is killed with SIGKILL at random moments and restarted; at the
// end every written entry must be in the store exactly once.
func TestKill9Durability(t *testing.T) { eachRotateMode(t, kill9Durability) }

// eachRotateMode runs a kill -9 test for both rotation modes, each with a
// logs directory and a store path of its own.
func eachRotateMode(t *testing.T, test func(t *testing.T, mode, logs, dir string)) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	for _, mode := range []string{sample.RotateRename, sample.RotateCopyTruncate} {
		t.Run(mode, func(t *testing.T) {
			root, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			logs, dir := filepath.Join(root, "logs"), filepath.Join(root, "store")
			if err := os.MkdirAll(logs, 0o755); err != nil {
				t.Fatal(err)
			}
			test(t, mode, logs, dir)
		})
	}
}

func kill9Durability(t *testing.T, mode, logs, dir string) {
	entries := int64(4000)
	if testing.Short() {
		entries = 1500
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type liveOut struct {
		res sample.LiveResult
		err error
	}
	written := make(chan liveOut, 1)
	go func() {
		res, err := sample.Live(ctx, logs, sample.LiveOptions{Seed: 3, Rate: 1000, RotateBytes: 32 << 10,
			RotateMode: mode, MaxEntries: entries})
		written <- liveOut{res, err}
	}()

	rng := rand.New(rand.NewPCG(uint64(len(mode)), 9))
	kills := 0
	var res sample.LiveResult
	var childLogs bytes.Buffer
	for running := true; running; {
		var stderr bytes.Buffer
		cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"=1", childLogsEnv+"="+logs, childStoreEnv+"="+dir)
		cmd.Stderr = &stderr
		cmd.Stdout = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if kills == 0 && os.Getenv("LOKAL_FILESTORE") == "" {
			// Lines of a generation rotated away before Lokal ever saw it
			// cannot be told from old history (Promtail loses them too):
			// let the first run commit once, so the writer's fast rotations
			// cannot outrun its first look. Kills before the first commit
			// are TestKill9EarlyRotation's.
			waitFor(t, "the first commit", func() bool {
				ro, err := store.OpenReadOnly(dir, durabilityStoreOptions())
				if err != nil {
					return false
				}
				defer ro.Close()
				return len(ro.Cursors()) > 0
			})
		}
		select {
		case out := <-written:
			if out.err != nil {
				t.Fatal(out.err)
			}
			res, running = out.res, false
		case <-time.After(time.Duration(300+rng.IntN(900)) * time.Millisecond):
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("child ended on its own (%v):\n%s", err, stderr.String())
		}
		kills++
		fmt.Fprintf(&childLogs, "--- child %d\n", kills)
		childLogs.Write(stderr.Bytes())
	}
	_ = res
	if res.Rotations == 0 {
		t.Fatalf("the writer never rotated: %+v", res)
	}

	// A last, clean run reads what is left, then every stored line is
	// checked against what was written.
	lines, in, cursors := finalCatchUp(t, logs, dir)
	noSeq := checkExactlyOnce(t, lines, res.FirstSeq, res.LastSeq, func() {
		h := in.Health()
		t.Logf("children said:\n%s", childLogs.String())
		t.Logf("health problems: %q", h.Problems)
		for k, v := range cursors {
			t.Logf("cursor %s = %s", k, v)
		}
	}, logs)
	t.Logf("%s: %d entries written, %d rotations, %d kills, %d stored lines without seq (traceback lines read apart)",
		mode, res.Entries, res.Rotations, kills, noSeq)
}

// TestKill9EarlyRotation is issue 11's kill in the first seconds: nothing
// is committed yet (the store commits on its default schedule) when the
// files a first process has started to read are rotated away (renamed or
// copied and truncated), that process is killed with SIGKILL, a second one
// starts at once, sees more rotations and is killed too. The identities
// and positions the first process recorded must lead the later runs to the
// rotated generations: every entry stored exactly once.
func TestKill9EarlyRotation(t *testing.T) { eachRotateMode(t, kill9EarlyRotation) }

func kill9EarlyRotation(t *testing.T, mode, logs, dir string) {
	// write appends n entries (rotating beyond 16 KiB) and reports how
	// many files it rotated.
	next := int64(1)
	rotations := 0
	write := func(n int64) int {
		res, err := sample.Live(context.Background(), logs, sample.LiveOptions{Seed: 5, Rate: 20000,
			RotateBytes: 16 << 10, RotateMode: mode, FirstSeq: next, MaxEntries: n})
		if err != nil {
			t.Fatal(err)
		}
		next = res.LastSeq + 1
		rotations += res.Rotations
		return res.Rotations
	}
	var childLogs bytes.Buffer
	// run starts a child and writes in steps, each rotating a file at most
	// once, waiting after each until the child has taken every new
	// generation in hand (a generation rotated away before Lokal ever saw
	// it cannot be found by identity); then kills it.
	run := func(steps int) {
		out := &syncBuffer{}
		cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"=1", childLogsEnv+"="+logs, childStoreEnv+"="+dir, childSlowHeadEnv+"=1")
		cmd.Stderr, cmd.Stdout = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		want := len(liveLogFiles(t, logs))
		for i := 0; ; i++ {
			waitFor(t, fmt.Sprintf("the child to take %d generations in hand", want), func() bool {
				s := out.String()
				return strings.Count(s, "[track]")+strings.Count(s, "[replaced-reset]") >= want
			})
			if i == steps {
				break
			}
			want += write(100)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("child ended on its own:\n%s", out.String())
		}
		fmt.Fprintf(&childLogs, "--- child\n%s", out.String())
		ageRotated(t, logs)
	}
	write(300) // the files exist before the first run
	run(15)
	run(15)
	if rotations < 4 {
		t.Fatalf("the writer rotated %d times, want several", rotations)
	}
	if ro, err := store.OpenReadOnly(dir, store.Options{}); err == nil {
		n := len(ro.Cursors())
		ro.Close()
		if n > 0 {
			t.Fatalf("a child committed %d positions: the test needs kills before the first commit", n)
		}
	}
	lines, in, cursors := finalCatchUp(t, logs, dir)
	noSeq := checkExactlyOnce(t, lines, 1, next-1, func() {
		files, _ := exec.Command("ls", "-liR", logs).CombinedOutput()
		t.Logf("files:\n%s", files)
		t.Logf("children said:\n%s", childLogs.String())
		t.Logf("health problems: %q", in.Health().Problems)
		for k, v := range cursors {
			t.Logf("cursor %s = %s", k, v)
		}
	}, logs)
	t.Logf("%s: %d entries written, %d rotations, %d stored lines without seq", mode, next-1, rotations, noSeq)
}

// ageRotated sets the modification time of the rotated generations under
// dir 10 s back, as if they had been rotated away that long before the
// next start (issue 11 rotated every 5 s): a generation is then not taken
// for one written after that start's positions, and only its recorded
// identity can lead to it.
func ageRotated(t *testing.T, dir string) {
	t.Helper()
	old := time.Now().Add(-10 * time.Second)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".log") {
			err = os.Chtimes(p, old, old)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// liveLogFiles lists the *.log files under dir.
func liveLogFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".log") {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// syncBuffer is a bytes.Buffer a child process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checkExactlyOnce fails the test unless every seq from first to last is
// in lines exactly once; explain logs more on failure. It returns how many
// lines carry no seq.
func checkExactlyOnce(t *testing.T, lines []string, first, last int64, explain func(), logs string) (noSeq int) {
	t.Helper()
	counts := make([]int, last+1)
	for _, line := range lines {
		m := seqRe.FindAllStringSubmatch(line, -1)
		if len(m) == 0 {
			noSeq++
			continue
		}
		for _, mm := range m {
			n, _ := strconv.ParseInt(mm[1], 10, 64)
			if n < first || n > last {
				t.Fatalf("seq %d outside what was written (%d..%d)", n, first, last)
			}
			counts[n]++
		}
	}
	var missing, twice []int64
	for n := first; n <= last; n++ {
		switch {
		case counts[n] == 0:
			missing = append(missing, n)
		case counts[n] > 1:
			twice = append(twice, n)
		}
	}
	if len(missing) > 0 || len(twice) > 0 {
		explain()
		for _, n := range append(missing[:min(len(missing), 5)], twice[:min(len(twice), 3)]...) {
			out, _ := exec.Command("grep", "-rbE", fmt.Sprintf("seq=%d([^0-9]|$)|\"seq\":%d[,}]", n, n), logs).CombinedOutput()
			t.Logf("seq %d is in: %.300s", n, out)
		}
		t.Fatalf("%d of %d entries missing %s, %d stored more than once %s", len(missing), last-first+1, head(missing), len(twice), head(twice))
	}
	return noSeq
}

// finalCatchUp runs a clean CatchUp over what the killed runs left and
// returns every stored line.
func finalCatchUp(t *testing.T, logs, dir string) ([]string, *Ingester, map[string][]byte) {
	var app store.Appender
	var fs *fileStore
	var st *store.Store
	var err error
	if os.Getenv("LOKAL_FILESTORE") != "" {
		if fs, err = openFileStore(dir + ".jsonl"); err != nil {
			t.Fatal(err)
		}
		app = fs
	} else {
		if st, err = store.Open(dir, durabilityStoreOptions()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		app = st
	}
	var final bytes.Buffer
	in, err := New(durabilitySettings(logs), &config.Operator{AllowedPaths: []string{logs}}, app,
		Options{Logf: func(f string, a ...any) { fmt.Fprintf(&final, f+"\n", a...) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("final run said:\n%s\nhealth: %+v", final.String(), in.Health())
		}
	})
	var lines []string
	if fs != nil {
		for _, se := range fs.entries {
			for _, e := range se.Entries {
				lines = append(lines, e.Line)
			}
		}
		return lines, in, fs.Cursors()
	}
	its, err := st.Select(context.Background(), store.SelectParams{
		Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "cosyvoice3")},
		Start:    -1 << 62, End: 1 << 62, Lines: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range its {
		for it.Next() {
			lines = append(lines, it.At().Lines...)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		it.Close()
	}
	return lines, in, st.Cursors()
}

func head(s []int64) string {
	if len(s) > 10 {
		return fmt.Sprint(s[:10]) + "..."
	}
	return fmt.Sprint(s)
}

// fileStore is a minimal durable Appender for cross-checking the real
// store: each Append is one JSON record written with one write and synced;
// a record cut short by a kill is ignored on replay.
type fileStore struct {
	f       *os.File
	cursors map[string][]byte
	entries []store.StreamEntries
}

type fileRecord struct {
	Streams []store.StreamEntries
	Cursors map[string][]byte
}

func openFileStore(path string) (*fileStore, error) {
	fs := &fileStore{cursors: map[string][]byte{}}
	if data, err := os.ReadFile(path); err == nil {
		// A record cut by a kill must go: the next record would be glued
		// to it and lost with it.
		good := bytes.LastIndexByte(data, '\n') + 1
		if err := os.Truncate(path, int64(good)); err != nil {
			return nil, err
		}
		data = data[:good]
		for _, line := range bytes.Split(data, []byte("\n")) {
			var r fileRecord
			if len(line) == 0 || json.Unmarshal(line, &r) != nil {
				continue
			}
			fs.entries = append(fs.entries, r.Streams...)
			for k, v := range r.Cursors {
				if v == nil {
					delete(fs.cursors, k)
				} else {
					fs.cursors[k] = v
				}
			}
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fs.f = f
	return fs, nil
}

func (fs *fileStore) Append(_ context.Context, b store.AppendBatch) error {
	data, err := json.Marshal(fileRecord{Streams: b.Streams, Cursors: b.Cursors})
	if err != nil {
		return err
	}
	if _, err := fs.f.Write(append(data, '\n')); err != nil {
		return err
	}
	for k, v := range b.Cursors {
		if v == nil {
			delete(fs.cursors, k)
		} else {
			fs.cursors[k] = v
		}
	}
	fs.entries = append(fs.entries, b.Streams...)
	return nil
}

func (fs *fileStore) Cursors() map[string][]byte {
	out := make(map[string][]byte, len(fs.cursors))
	for k, v := range fs.cursors {
		out[k] = v
	}
	return out
}
