//go:build !windows

package plugin

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
)

// BenchmarkPluginCatchUpCorpus is issue 2's catch-up as the plugin does it:
// a datasource instance made by a host configured as the plugin's main
// configures it (TuneGC) follows the loggen corpus named by
// LOKAL_BENCH_CORPUS into a fresh store, and the benchmark waits until every
// byte is stored. peak-rss-MB is the process's peak RSS so far, so run it
// alone (-run XXX -bench PluginCatchUp -benchtime 1x).
func BenchmarkPluginCatchUpCorpus(b *testing.B) {
	corpus := testshared.EnvDir(b, "LOKAL_BENCH_CORPUS", "set LOKAL_BENCH_CORPUS to a loggen corpus directory")
	size := testshared.LogBytes(b, corpus)
	// TuneGC changes this process's collector and soft memory limit: put
	// them back afterwards.
	prevGC := debug.SetGCPercent(-1)
	debug.SetGCPercent(prevGC)
	defer debug.SetGCPercent(prevGC)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		data := b.TempDir()
		env := map[string]string{config.EnvAllowedPaths: corpus, config.EnvDataPath: data}
		op, err := config.OperatorFromEnv(func(k string) string { return env[k] })
		if err != nil {
			b.Fatal(err)
		}
		host := NewHost(HostOptions{Operator: op, Logger: log.NewWithLevel(log.Warn), TuneGC: true})
		js := fmt.Sprintf(`{"storage":{"path":"ds","retention":"0s"},"scrape_configs":[{"job_name":"bench","static_configs":[{"labels":{"job":"cosyvoice3","__path__":%q}}]}]}`,
			filepath.Join(corpus, "**", "*.log"))
		inst, err := host.NewDatasource(context.Background(), backend.DataSourceInstanceSettings{UID: "bench", JSONData: []byte(js)})
		if err != nil {
			b.Fatal(err)
		}
		ds := inst.(*Datasource)
		if ds.run == nil {
			b.Fatalf("no ingester: %v %v", ds.setupErr, ds.ingestErr)
		}
		for ds.run.Ingester().Health().Bytes < size {
			select {
			case <-ds.run.Done():
				b.Fatalf("ingester stopped: %v", ds.run.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
		b.StopTimer()
		ds.Dispose()
		host.Close()
		b.StartTimer()
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MB")
	}
}
