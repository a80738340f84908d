package ingest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"github.com/lokal-logs/lokal/pkg/sample"
	"github.com/lokal-logs/lokal/pkg/store"
)

// discardStore counts what it is given and keeps nothing: it measures the
// ingester alone.
type discardStore struct {
	entries, bytes atomic.Int64
}

func (d *discardStore) Append(_ context.Context, b store.AppendBatch) error {
	for _, se := range b.Streams {
		d.entries.Add(int64(len(se.Entries)))
		for _, e := range se.Entries {
			d.bytes.Add(int64(len(e.Line)))
		}
	}
	return nil
}

func (d *discardStore) Cursors() map[string][]byte { return nil }

func corpusSettings(dir string) *config.Settings {
	s := &config.Settings{ScrapeConfigs: []config.ScrapeConfig{{
		JobName: "cosyvoice3",
		StaticConfigs: []config.StaticConfig{{Labels: map[string]string{
			"job": "cosyvoice3", "__path__": filepath.Join(dir, "**", "*.log")}}},
	}}}
	s.ApplyDefaults()
	return s
}

// benchCatchUp ingests dir once per iteration into app (made fresh each
// time) and reports raw MB/s.
func benchCatchUp(b *testing.B, dir string, newApp func(b *testing.B) (store.Appender, func())) {
	size := testshared.LogBytes(b, dir)
	b.SetBytes(size)
	b.ReportAllocs()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		app, done := newApp(b)
		in, err := New(corpusSettings(dir), &config.Operator{AllowedPaths: []string{dir}}, app, Options{})
		if err != nil {
			b.Fatal(err)
		}
		before := cpuTime()
		if err := in.CatchUp(context.Background()); err != nil {
			b.Fatal(err)
		}
		done()
		cpu += cpuTime() - before
		if h := in.Health(); h.Bytes < size {
			b.Fatalf("read %d of %d bytes", h.Bytes, size)
		}
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkCatchUpSample ingests a 32 MiB sample corpus (the project's own
// writer), into nothing and into a real store.
func BenchmarkCatchUpSample(b *testing.B) {
	dir := b.TempDir()
	if _, err := sample.Write(dir, sample.Options{Seed: 1, Size: 32 << 20}); err != nil {
		b.Fatal(err)
	}
	b.Run("discard", func(b *testing.B) {
		benchCatchUp(b, dir, func(*testing.B) (store.Appender, func()) { return &discardStore{}, func() {} })
	})
	b.Run("store", func(b *testing.B) {
		benchCatchUp(b, dir, realStore)
	})
}

func realStore(b *testing.B) (store.Appender, func()) {
	st, err := store.Open(b.TempDir(), store.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	return st, func() {
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCatchUpCorpus ingests a big loggen corpus named by
// LOKAL_BENCH_CORPUS (e.g. /work/shared/bin/loggen -out /tmp/corpus1g -size
// 1GiB -needles 20), with LOKAL_BENCH_STORE=1 into a real store.
func BenchmarkCatchUpCorpus(b *testing.B) {
	dir := testshared.EnvDir(b, "LOKAL_BENCH_CORPUS", "set LOKAL_BENCH_CORPUS to a loggen corpus directory")
	newApp := func(*testing.B) (store.Appender, func()) { return &discardStore{}, func() {} }
	if os.Getenv("LOKAL_BENCH_STORE") != "" {
		newApp = realStore
	}
	benchCatchUp(b, dir, newApp)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
}
