package provtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/ingest"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/sample"
	"github.com/lokal-logs/lokal/pkg/store"
)

// benchSampleEnv sets the size of the benchmarks' sample (e.g. 256MiB);
// the default keeps a plain `go test -bench` short.
const benchSampleEnv = "LOKAL_PROVTEST_BENCH_SIZE"

// benchStore ingests a day of sample logs with the provisioned settings.
func benchStore(b *testing.B) (*engine.Engine, sample.Manifest) {
	b.Helper()
	size := int64(16 << 20)
	if v := os.Getenv(benchSampleEnv); v != "" {
		n, err := config.ParseByteSize(v)
		if err != nil {
			b.Fatalf("%s=%q: %v", benchSampleEnv, v, err)
		}
		size = n
	}
	p := loadProvisioned(b)
	uid := p.lokalUID(b)
	tmp := b.TempDir()
	logs := filepath.Join(tmp, "logs")
	m, err := sample.Write(logs, sample.Options{Seed: sampleSeed, Size: size, Span: 24 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	jsonData := withLogDir(b, p.datasources[uid].JSONData, logs)
	settings, err := config.Parse(jsonData)
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]string{config.EnvAllowedPaths: logs, config.EnvDataPath: filepath.Join(tmp, "data")}
	op, err := config.OperatorFromEnv(func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	dir, err := op.StoreDir(settings, uid)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	in, err := ingest.New(settings, op, st, ingest.Options{NoFsnotify: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := in.CatchUp(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := st.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	return engine.New(st, engine.Options{}), m
}

// BenchmarkAlertRules evaluates each provisioned rule's Lokal query as the
// scheduler does every minute: one instant query at the end of the sample.
func BenchmarkAlertRules(b *testing.B) {
	eng, m := benchStore(b)
	p := loadProvisioned(b)
	for _, r := range p.rules {
		for _, q := range r.Data {
			if q.DatasourceUID == exprDatasource {
				continue
			}
			at := m.End
			rng := time.Duration(q.RelativeTimeRange.From) * time.Second
			expr := syntax.ExpandGrafanaVariables(modelString(q.Model, "expr"), syntax.GrafanaVars{Interval: time.Second, Range: rng, Auto: rng})
			b.Run(r.Title, func(b *testing.B) {
				for b.Loop() {
					if _, err := eng.Query(context.Background(), engine.Params{Query: expr, Start: at, End: at, Instant: true}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDashboard evaluates each panel query of the CosyVoice3 dashboard
// over its default range (the last 6 hours of the sample) at the step
// Grafana picks for a ~1500 px wide panel.
func BenchmarkDashboard(b *testing.B) {
	eng, m := benchStore(b)
	p := loadProvisioned(b)
	d := p.dashboards["provisioning/dashboards/cosyvoice3.json"]
	to := m.End.Add(time.Minute)
	from := to.Add(-6 * time.Hour)
	step := 15 * time.Second
	vals := map[string]string{}
	for _, v := range d.Templating.List {
		vals[v.Name] = v.AllValue
	}
	for _, pn := range allPanels(d.Panels) {
		for _, q := range pn.Targets {
			params := engine.Params{Start: from, End: to, Step: step, Limit: 1000, Direction: store.Backward}
			gv := syntax.GrafanaVars{Interval: step, Range: to.Sub(from), Auto: step}
			if q.QueryType == "instant" {
				params = engine.Params{Start: to, End: to, Instant: true}
				gv.Auto = gv.Range
			}
			params.Query = substitute(q.Expr, vals, gv)
			b.Run(pn.Title+"/"+q.RefID, func(b *testing.B) {
				for b.Loop() {
					if _, err := eng.Query(context.Background(), params); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
