package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// memStore is an in-memory store.Appender: entries and cursors change
// together, as the real store promises.
type memStore struct {
	mu      sync.Mutex
	streams map[string][]store.Entry // by labels.String()
	labels  map[string]labels.Labels
	cursors map[string][]byte
	appends int
	// failures makes the next appends fail, as a full disk would.
	failures int
	onFail   func()
	// fatal, when set, refuses every append with it (not a pause).
	fatal error
}

var errDiskFull = fmt.Errorf("%w: disk full", store.ErrPaused)

func newMemStore() *memStore {
	return &memStore{streams: map[string][]store.Entry{}, labels: map[string]labels.Labels{}, cursors: map[string][]byte{}}
}

func (m *memStore) Append(_ context.Context, b store.AppendBatch) error {
	m.mu.Lock()
	if m.fatal != nil {
		err := m.fatal
		m.mu.Unlock()
		return err
	}
	if m.failures > 0 {
		m.failures--
		f := m.onFail
		m.mu.Unlock()
		if f != nil {
			f()
		}
		return errDiskFull
	}
	defer m.mu.Unlock()
	m.appends++
	for _, se := range b.Streams {
		k := se.Labels.String()
		m.labels[k] = se.Labels
		m.streams[k] = append(m.streams[k], se.Entries...)
	}
	for k, v := range b.Cursors {
		if v == nil {
			delete(m.cursors, k)
		} else {
			m.cursors[k] = append([]byte(nil), v...)
		}
	}
	return nil
}

func (m *memStore) Cursors() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]byte, len(m.cursors))
	for k, v := range m.cursors {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

// lines returns every stored line, sorted, for exact comparisons.
func (m *memStore) lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, es := range m.streams {
		for _, e := range es {
			out = append(out, e.Line)
		}
	}
	sort.Strings(out)
	return out
}

// linesOf returns the stored lines whose stream has filename == name.
func (m *memStore) linesOf(name string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k, es := range m.streams {
		if m.labels[k].Get("filename") != name {
			continue
		}
		for _, e := range es {
			out = append(out, e.Line)
		}
	}
	sort.Strings(out)
	return out
}

func (m *memStore) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, es := range m.streams {
		n += len(es)
	}
	return n
}

// env is a temporary log directory with an ingester configuration.
type env struct {
	t    *testing.T
	dir  string
	st   *memStore
	set  *config.Settings
	op   *config.Operator
	opts Options
}

func newEnv(t *testing.T, glob string) *env {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, st: newMemStore(),
		op:   &config.Operator{AllowedPaths: []string{dir}},
		opts: Options{Workers: 2, RetryInterval: time.Millisecond, RotatedIdle: 50 * time.Millisecond, BatchAge: 10 * time.Millisecond}}
	e.set = &config.Settings{ScrapeConfigs: []config.ScrapeConfig{{
		JobName: "test",
		StaticConfigs: []config.StaticConfig{{Labels: map[string]string{
			"job": "test", "__path__": filepath.Join(dir, glob)}}},
	}}}
	e.set.ApplyDefaults()
	return e
}

func (e *env) path(name string) string { return filepath.Join(e.dir, name) }

func (e *env) ingester() *Ingester {
	e.t.Helper()
	in, err := New(e.set, e.op, e.st, e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

// catchUp runs a fresh ingester (as a restarted process would) to the end.
func (e *env) catchUp() *Ingester {
	e.t.Helper()
	in := e.ingester()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := in.CatchUp(ctx); err != nil {
		e.t.Fatalf("CatchUp: %v", err)
	}
	return in
}

func (e *env) write(name, text string) {
	e.t.Helper()
	f, err := os.OpenFile(e.path(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) rename(from, to string) {
	e.t.Helper()
	if err := os.Rename(e.path(from), e.path(to)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) remove(name string) {
	e.t.Helper()
	if err := os.Remove(e.path(name)); err != nil {
		e.t.Fatal(err)
	}
}

// compress gzips name to gz and removes name, as logrotate's compress does.
func (e *env) compress(name, gz string) {
	e.t.Helper()
	gzipFile(e.t, e.path(name), e.path(gz))
	e.remove(name)
}

// numbered returns n lines "<prefix> line i" each with a newline.
func numbered(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "2026-01-02 03:04:05,000 INFO %s line %04d padding to make the head longer than the copy threshold\n", prefix, i)
	}
	return b.String()
}

// want turns texts into the sorted lines they hold.
func want(texts ...string) []string {
	var out []string
	for _, t := range texts {
		for _, l := range strings.Split(t, "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	sort.Strings(out)
	return out
}

func diffLines(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) == len(want) {
		same := true
		for i := range got {
			if got[i] != want[i] {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	var missing, extra []string
	for l, c := range count {
		for ; c > 0; c-- {
			missing = append(missing, l)
		}
		for ; c < 0; c++ {
			extra = append(extra, l)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 5 {
		missing = append(missing[:5], fmt.Sprintf("... %d more", len(missing)-5))
	}
	if len(extra) > 5 {
		extra = append(extra[:5], fmt.Sprintf("... %d more", len(extra)-5))
	}
	t.Fatalf("got %d lines, want %d\nmissing: %q\nextra (duplicated or wrong): %q", len(got), len(want), missing, extra)
}
