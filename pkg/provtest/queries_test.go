package provtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/ingest"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/sample"
	"github.com/lokal-logs/lokal/pkg/store"
)

// The sample the queries run on: small enough for a fast -race run, large
// enough to hold OOM bursts of more than 5 entries in 5 minutes (the seed
// is chosen for that; the test says so if a sample change loses them).
const (
	sampleSeed = 7
	sampleSize = 384 << 10
	sampleSpan = 3 * time.Hour
)

// sampleStore is a store filled from the sample through the provisioned
// datasource's own settings, as the plugin would fill it.
type sampleStore struct {
	p    *provisioned
	uid  string // the provisioned Lokal datasource's uid
	logs string
	m    sample.Manifest
	st   *store.Store
	eng  *engine.Engine
	// op and jsonData are what the plugin needs to open the same store.
	op       *config.Operator
	jsonData []byte
}

// lokalUID is the uid of the (single) provisioned Lokal datasource.
func (p *provisioned) lokalUID(t testing.TB) string {
	t.Helper()
	var uids []string
	for uid, ds := range p.datasources {
		if ds.Type == lokalType {
			uids = append(uids, uid)
		}
	}
	if len(uids) != 1 {
		t.Fatalf("want one provisioned Lokal datasource, found %v", uids)
	}
	return uids[0]
}

// withLogDir returns jsonData with every __path__ glob moved from its
// directory to dir, keeping the glob's pattern (e.g. /var/log/cosyvoice/**/*.log
// becomes <dir>/**/*.log).
func withLogDir(t testing.TB, jsonData map[string]any, dir string) []byte {
	t.Helper()
	b, err := json.Marshal(jsonData)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	moved := 0
	scs, _ := doc["scrape_configs"].([]any)
	for _, sc := range scs {
		statics, _ := sc.(map[string]any)["static_configs"].([]any)
		for _, st := range statics {
			ls, _ := st.(map[string]any)["labels"].(map[string]any)
			p, ok := ls["__path__"].(string)
			if !ok {
				continue
			}
			i := strings.IndexAny(p, "*?[{")
			if i < 0 {
				i = len(p)
			}
			base := p[:strings.LastIndexByte(p[:i], '/')+1]
			ls["__path__"] = filepath.ToSlash(dir) + "/" + strings.TrimPrefix(p, base)
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("the provisioned datasource follows no __path__")
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newSampleStore fills a store from the sample; it is closed when the
// test ends.
func newSampleStore(t *testing.T) *sampleStore {
	t.Helper()
	s := buildSampleStore(t)
	t.Cleanup(func() {
		if err := s.close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// close closes the store once.
func (s *sampleStore) close() error {
	if s.st == nil {
		return nil
	}
	err := s.st.Close()
	s.st, s.eng = nil, nil
	return err
}

// buildSampleStore writes the sample, ingests it with the provisioned
// datasource's settings and leaves the store open; the caller closes it.
func buildSampleStore(t *testing.T) *sampleStore {
	t.Helper()
	p := loadProvisioned(t)
	uid := p.lokalUID(t)
	tmp := t.TempDir()
	logs := filepath.Join(tmp, "logs")
	// Recent times, so that the provisioned retention keeps them.
	start := time.Now().UTC().Add(-sampleSpan - time.Hour).Truncate(time.Hour)
	m, err := sample.Write(logs, sample.Options{Seed: sampleSeed, Size: sampleSize, Span: sampleSpan, Start: start, Instances: 1})
	if err != nil {
		t.Fatal(err)
	}
	jsonData := withLogDir(t, p.datasources[uid].JSONData, logs)
	settings, err := config.Parse(jsonData)
	if err != nil {
		t.Fatalf("provisioned jsonData: %v", err)
	}
	env := map[string]string{config.EnvAllowedPaths: logs, config.EnvDataPath: filepath.Join(tmp, "data")}
	op, err := config.OperatorFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	dir, err := op.StoreDir(settings, uid)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, store.Options{Retention: settings.Storage.RetentionOrDefault(), MaxBytes: settings.Storage.MaxBytesOrDefault()})
	if err != nil {
		t.Fatal(err)
	}
	s := &sampleStore{p: p, uid: uid, logs: logs, m: m, st: st, op: op, jsonData: jsonData}
	fail := func(format string, args ...any) {
		t.Helper()
		if err := s.close(); err != nil {
			t.Errorf("close store: %v", err)
		}
		t.Fatalf(format, args...)
	}
	in, err := ingest.New(settings, op, st, ingest.Options{NoFsnotify: true})
	if err != nil {
		fail("%v", err)
	}
	ctx := context.Background()
	if err := in.CatchUp(ctx); err != nil {
		fail("catch up: %v", err)
	}
	if err := st.Flush(ctx); err != nil {
		fail("flush: %v", err)
	}
	if h := in.Health(); h.Lines != m.TotalEntries || len(h.Problems) > 0 {
		fail("ingested %d entries of %d; problems: %v", h.Lines, m.TotalEntries, h.Problems)
	}
	s.eng = engine.New(st, engine.Options{})
	return s
}

// window is a time range wide enough for every sample entry, whatever the
// machine's zone (run.sh's zone-less stamps are read as local time).
func (s *sampleStore) window() (time.Time, time.Time) {
	return s.m.Start.Add(-25 * time.Hour), s.m.End.Add(25*time.Hour + time.Minute)
}

// instant evaluates an alert or stat query the way the plugin does: at the
// end of the range, with $__auto and $__range the whole range.
func (s *sampleStore) instant(t *testing.T, expr string, from, to time.Time) engine.Result {
	t.Helper()
	rng := to.Sub(from)
	q := syntax.ExpandGrafanaVariables(expr, syntax.GrafanaVars{Interval: time.Second, Range: rng, Auto: rng})
	res, err := s.eng.Query(context.Background(), engine.Params{Query: q, Start: to, End: to, Instant: true})
	if err != nil {
		t.Fatalf("%s at %s: %v", q, to.Format(time.RFC3339), err)
	}
	return res
}

// rangeQuery evaluates a range query with $__auto the step, as the plugin
// does for a range query.
func (s *sampleStore) rangeQuery(t *testing.T, expr string, from, to time.Time, step time.Duration, limit int) engine.Result {
	t.Helper()
	q := syntax.ExpandGrafanaVariables(expr, syntax.GrafanaVars{Interval: step, Range: to.Sub(from), Auto: step})
	res, err := s.eng.Query(context.Background(), engine.Params{Query: q, Start: from, End: to, Step: step, Limit: limit, Direction: store.Backward})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

// ---- alert rules: the query, then Grafana's reduce and threshold ----

// evalRule runs a rule's Lokal query at `at` and applies its reduce (last)
// and threshold expressions from the file. It returns each series' reduced
// value and whether it fires; no series is Grafana's "no data".
func (s *sampleStore) evalRule(t *testing.T, r rule, at time.Time) (values map[string]float64, firing map[string]bool) {
	t.Helper()
	cond := mustQuery(t, r, r.Condition)
	if modelString(cond.Model, "type") != "threshold" {
		t.Fatalf("rule %q: condition %s is a %q; this test evaluates a threshold", r.Title, r.Condition, modelString(cond.Model, "type"))
	}
	typ, params, err := thresholdOf(cond.Model)
	if err != nil {
		t.Fatal(err)
	}
	red := mustQuery(t, r, modelString(cond.Model, "expression"))
	if modelString(red.Model, "type") != "reduce" || modelString(red.Model, "reducer") != "last" {
		t.Fatalf("rule %q: %s is not a reduce (last)", r.Title, red.RefID)
	}
	q := mustQuery(t, r, modelString(red.Model, "expression"))
	from := at.Add(-time.Duration(q.RelativeTimeRange.From) * time.Second)
	to := at.Add(-time.Duration(q.RelativeTimeRange.To) * time.Second)
	res := s.instant(t, modelString(q.Model, "expr"), from, to)
	if res.Type != engine.ValueVector {
		t.Fatalf("rule %q: result type %s, want a vector (numeric-multi frames)", r.Title, res.Type)
	}
	values, firing = map[string]float64{}, map[string]bool{}
	for _, smp := range res.Vector {
		k := smp.Metric.String()
		values[k] = smp.V
		firing[k] = threshold(typ, params, smp.V)
	}
	return values, firing
}

func threshold(typ string, p []float64, v float64) bool {
	switch typ {
	case "gt":
		return v > p[0]
	case "lt":
		return v < p[0]
	case "ge":
		return v >= p[0]
	case "le":
		return v <= p[0]
	case "eq":
		return v == p[0]
	case "ne":
		return v != p[0]
	case "within_range":
		return v > p[0] && v < p[1]
	case "outside_range":
		return v < p[0] || v > p[1]
	}
	return false
}

// oomTimes reads the sample's files for the entries the OOM rule counts:
// the first line of each OOM entry, by file.
func oomTimes(t *testing.T, logs string, m sample.Manifest) map[string][]time.Time {
	t.Helper()
	out := map[string][]time.Time{}
	for _, f := range m.Files {
		if !strings.HasSuffix(f.Path, "/cosyvoice.log") {
			continue
		}
		fh, err := os.Open(filepath.Join(logs, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "[") || !strings.Contains(line, "CUDA out of memory") {
				continue // tracebacks belong to the entry before them
			}
			fields := strings.Fields(line)
			ts, err := time.Parse(time.RFC3339, fields[1])
			if err != nil {
				t.Fatalf("%s: %q: %v", f.Path, line, err)
			}
			out[f.Path] = append(out[f.Path], ts)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// findBurst finds the evaluation time at which the most OOM entries of one
// file lie in the 5 minutes before, and checks the files against the
// manifest.
func findBurst(t *testing.T, byFile map[string][]time.Time, m sample.Manifest) (time.Time, int) {
	t.Helper()
	total, burst := 0, 0
	var at time.Time
	for _, ts := range byFile {
		total += len(ts)
		for _, x := range ts {
			if n := countIn(ts, x, 5*time.Minute); n > burst {
				burst, at = n, x
			}
		}
	}
	if int64(total) != m.OOMEntries {
		t.Fatalf("found %d OOM entries in the files, the manifest says %d", total, m.OOMEntries)
	}
	if burst <= 5 {
		t.Fatalf("sample seed %d has no burst of more than 5 OOMs in 5 minutes (largest %d): pick a seed that has", sampleSeed, burst)
	}
	return at, burst
}

// findQuiet finds an evaluation time inside the sample with no OOM in the
// 5 minutes before.
func findQuiet(t *testing.T, byFile map[string][]time.Time, m sample.Manifest) time.Time {
	t.Helper()
	for at := m.Start.Add(5 * time.Minute); at.Before(m.End); at = at.Add(time.Minute) {
		n := 0
		for _, ts := range byFile {
			n += countIn(ts, at, 5*time.Minute)
		}
		if n == 0 {
			return at
		}
	}
	t.Fatal("the sample has no 5 minutes without OOM")
	return time.Time{}
}

// countIn counts times in Loki's window (at-w, at].
func countIn(ts []time.Time, at time.Time, w time.Duration) int {
	n := 0
	for _, x := range ts {
		if x.After(at.Add(-w)) && !x.After(at) {
			n++
		}
	}
	return n
}

func TestAlertRulesOnSample(t *testing.T) {
	s := newSampleStore(t)
	oom := findRule(t, s.p, oomRuleTitle)
	byFile := oomTimes(t, s.logs, s.m)
	burstAt, burst := findBurst(t, byFile, s.m)
	t.Logf("sample: %d entries, %d OOM entries, largest burst %d in 5 minutes at %s", s.m.TotalEntries, s.m.OOMEntries, burst, burstAt.Format(time.RFC3339))

	t.Run("fires on a burst", func(t *testing.T) {
		values, firing := s.evalRule(t, oom, burstAt)
		if len(values) != 1 {
			t.Fatalf("at %s: %d series %v, want the one stream with the burst", burstAt.Format(time.RFC3339), len(values), values)
		}
		for k, v := range values {
			if v != float64(burst) || !firing[k] {
				t.Errorf("at %s: %s = %v (firing %v), want %d and firing", burstAt.Format(time.RFC3339), k, v, firing[k], burst)
			}
			ls, err := syntax.ParseMatchers(k)
			if err != nil {
				t.Fatalf("series %s: %v", k, err)
			}
			if !hasLabel(ls, "instance") {
				t.Errorf("series %s has no instance label for the annotations' {{ $labels.instance }}", k)
			}
		}
	})

	t.Run("every evaluation agrees with the files", func(t *testing.T) {
		// Each minute of the sample, as the rule group's interval would.
		for at := s.m.Start; !at.After(s.m.End.Add(6 * time.Minute)); at = at.Add(time.Minute) {
			values, firing := s.evalRule(t, oom, at)
			want := 0
			for _, ts := range byFile {
				if n := countIn(ts, at, 5*time.Minute); n > 0 {
					want++
				}
			}
			if len(values) != want {
				t.Fatalf("at %s: %d series, want %d", at.Format(time.RFC3339), len(values), want)
			}
			for k, v := range values {
				if firing[k] != (v > 5) {
					t.Fatalf("at %s: %s = %v, firing %v", at.Format(time.RFC3339), k, v, firing[k])
				}
			}
		}
	})

	t.Run("no OOM is no series, and noDataState OK keeps it normal", func(t *testing.T) {
		quiet := findQuiet(t, byFile, s.m)
		values, _ := s.evalRule(t, oom, quiet)
		if len(values) != 0 {
			t.Fatalf("at %s: %v, want no series (a count over no lines is no series, not 0)", quiet.Format(time.RFC3339), values)
		}
		if oom.NoDataState != "OK" {
			t.Errorf("noDataState %q: no OOM would not be the normal state", oom.NoDataState)
		}
	})

	silent := findRule(t, s.p, silentRuleTitle)
	t.Run("silence rule", func(t *testing.T) {
		values, firing := s.evalRule(t, silent, s.m.End)
		if len(values) != 1 {
			t.Fatalf("while logging: %v, want one series", values)
		}
		for k, v := range values {
			if v < 1 || firing[k] {
				t.Errorf("while logging: %s = %v firing %v, want >= 1 and not firing", k, v, firing[k])
			}
		}
		// Half an hour after the last line: the sum alone is no series;
		// `or vector(0)` makes it 0, which fires.
		after := s.m.End.Add(30 * time.Minute)
		values, firing = s.evalRule(t, silent, after)
		if len(values) != 1 || values["{}"] != 0 || !firing["{}"] {
			t.Errorf("after the logs stop: %v firing %v, want {} = 0 firing", values, firing)
		}
		q := mustQuery(t, silent, "A")
		bare := strings.TrimSuffix(modelString(q.Model, "expr"), " or vector(0)")
		if res := s.instant(t, bare, after.Add(-10*time.Minute), after); len(res.Vector) != 0 {
			t.Errorf("%s over no lines: %v, want no series", bare, res.Vector)
		}
	})
}

func hasLabel(ms []*labels.Matcher, name string) bool {
	for _, m := range ms {
		if m.Name == name && m.Value != "" {
			return true
		}
	}
	return false
}

// ---- the dashboard ----

// cosyvoiceDashboard returns the CosyVoice3 dashboard's panels by id and its
// variables.
func cosyvoiceDashboard(t *testing.T, p *provisioned) (map[int]panel, map[string]variable) {
	t.Helper()
	d, ok := p.dashboards["provisioning/dashboards/cosyvoice3.json"]
	if !ok {
		t.Fatal("no provisioning/dashboards/cosyvoice3.json")
	}
	ps := map[int]panel{}
	for _, pn := range allPanels(d.Panels) {
		ps[pn.ID] = pn
	}
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	return ps, vars
}

var textLenRE = regexp.MustCompile(`Generating audio: text_len=(\d+),`)

// textLenBuckets counts run.sh's generation lines by the dashboard's buckets.
func textLenBuckets(t *testing.T, logs string, m sample.Manifest) (map[string]int, int) {
	t.Helper()
	out := map[string]int{}
	n := 0
	for _, f := range m.Files {
		if !strings.HasSuffix(f.Path, "/run.log") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(logs, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		for _, mm := range textLenRE.FindAllStringSubmatch(string(b), -1) {
			v, _ := strconv.Atoi(mm[1])
			lo := v / 100 * 100
			out[fmt.Sprintf("%03d-%03d", lo, lo+99)]++
			n++
		}
	}
	return out, n
}

func TestDashboardOnSample(t *testing.T) {
	s := newSampleStore(t)
	panels, vars := cosyvoiceDashboard(t, s.p)
	from, to := s.window()
	ctx := context.Background()

	// The instance variable's options come from the store's label values.
	inst, ok := vars["instance"]
	if !ok {
		t.Fatal("no instance variable")
	}
	m := labelValuesRE.FindStringSubmatch(fmt.Sprint(inst.Query))
	if m == nil {
		t.Fatalf("instance variable query %v", inst.Query)
	}
	ms, err := syntax.ParseMatchers(m[1])
	if err != nil {
		t.Fatal(err)
	}
	options, err := s.st.LabelValues(ctx, m[2], ms, from.UnixNano(), to.UnixNano())
	if err != nil || len(options) == 0 {
		t.Fatalf("instance variable: values %v, err %v", options, err)
	}

	// Every panel query answers with data, with "All" instances (the
	// variable's allValue) and with each single instance.
	step := 5 * time.Minute
	choices := append([]string{inst.AllValue}, options...)
	for _, pn := range panels {
		for _, q := range pn.Targets {
			for _, instance := range choices {
				expr := substituteVars(q.Expr, map[string]string{"instance": instance, "search": ""})
				var res engine.Result
				if q.QueryType == "instant" {
					res = s.instant(t, expr, from, to)
				} else {
					res = s.rangeQuery(t, expr, from, to, step, 1000)
				}
				if len(res.Streams)+len(res.Matrix)+len(res.Vector) == 0 {
					t.Errorf("panel %q query %s with instance=%q: no data", pn.Title, q.RefID, instance)
				}
			}
		}
	}

	all := map[string]string{"instance": inst.AllValue, "search": ""}
	target := func(id int, ref string) string {
		pn, ok := panels[id]
		if !ok {
			t.Fatalf("no panel %d", id)
		}
		for _, q := range pn.Targets {
			if q.RefID == ref {
				return substituteVars(q.Expr, all)
			}
		}
		t.Fatalf("panel %q has no query %s", pn.Title, ref)
		return ""
	}
	one := func(res engine.Result) float64 {
		t.Helper()
		if len(res.Vector) != 1 {
			t.Fatalf("want one value, got %v", res.Vector)
		}
		return res.Vector[0].V
	}

	t.Run("log rate by level", func(t *testing.T) {
		// Lines without a timestamp (access.log, startup.log) are stored at
		// their read time: the rate leaves them out and panel 8 draws them
		// apart. The rate's entries and theirs add up to the manifest's.
		untimed := map[string]int64{}
		var untimedTotal int64
		for _, smp := range s.instant(t, `sum by (level) (count_over_time({job="cosyvoice3", filename=~".*/(access|startup)\\.log"}[$__range]))`, from, to).Vector {
			untimed[smp.Metric.Get("level")] = int64(smp.V)
			untimedTotal += int64(smp.V)
		}
		if untimedTotal == 0 {
			t.Fatal("the sample has no access.log lines: nothing tests that the rate leaves them out")
		}
		// With the step as the window the windows tile the range, so
		// rate × step (or the count) summed over the points counts every
		// entry once.
		got := map[string]int64{}
		for _, ser := range s.rangeQuery(t, target(1, "A"), from, to, step, 0).Matrix {
			sum := 0.0
			for _, pt := range ser.Points {
				sum += pt.V * step.Seconds()
			}
			got[ser.Metric.Get("level")] += int64(math.Round(sum))
		}
		for level, n := range s.m.EntriesByLevel {
			if got[level]+untimed[level] != n {
				t.Errorf("level %q: %d entries with a timestamp and %d without, the manifest says %d in all", level, got[level], untimed[level], n)
			}
		}
		var apart float64
		for _, ser := range s.rangeQuery(t, target(8, "A"), from, to, step, 0).Matrix {
			for _, pt := range ser.Points {
				apart += pt.V
			}
		}
		if int64(apart) != untimedTotal {
			t.Errorf("panel 8 counts %v lines without a timestamp, want %d", apart, untimedTotal)
		}
	})
	t.Run("error and OOM counts", func(t *testing.T) {
		wantErr := s.m.EntriesByLevel["error"] + s.m.EntriesByLevel["critical"]
		if got := one(s.instant(t, target(2, "A"), from, to)); got != float64(wantErr) {
			t.Errorf("errors: %v, want %d", got, wantErr)
		}
		if got := one(s.instant(t, target(3, "A"), from, to)); got != float64(s.m.OOMEntries) {
			t.Errorf("OOMs: %v, want %d", got, s.m.OOMEntries)
		}
		// Over a range without lines both show 0, not "no data". The
		// range is in the future: access.log lines carry no time and are
		// stored at the time they were read, i.e. now.
		later := time.Now().Add(3 * time.Hour)
		for _, id := range []int{2, 3} {
			if got := one(s.instant(t, target(id, "A"), later.Add(-time.Hour), later)); got != 0 {
				t.Errorf("panel %d over an empty hour: %v, want 0", id, got)
			}
		}
	})
	t.Run("OOM per 5 minutes", func(t *testing.T) {
		res := s.rangeQuery(t, target(4, "A"), from, to, step, 0)
		sum := 0.0
		for _, ser := range res.Matrix {
			for _, pt := range ser.Points {
				sum += pt.V
			}
		}
		if sum != float64(s.m.OOMEntries) {
			t.Errorf("5-minute counts sum to %v, want %d", sum, s.m.OOMEntries)
		}
	})
	t.Run("generation requests by text_len", func(t *testing.T) {
		want, n := textLenBuckets(t, s.logs, s.m)
		if n == 0 {
			t.Fatal("the sample has no run.sh generation lines")
		}
		res := s.instant(t, target(5, "A"), from, to)
		got := map[string]int{}
		for _, smp := range res.Vector {
			got[smp.Metric.Get("text_len_bucket")] = int(smp.V)
		}
		if fmt.Sprint(sortedCounts(got)) != fmt.Sprint(sortedCounts(want)) {
			t.Errorf("buckets %v, want %v", sortedCounts(got), sortedCounts(want))
		}
	})
	t.Run("generated text length", func(t *testing.T) {
		for _, ref := range []string{"A", "B"} {
			res := s.rangeQuery(t, target(6, ref), from, to, step, 0)
			pts := 0
			for _, ser := range res.Matrix {
				if ser.Metric.Has("__error__") {
					t.Errorf("%s: series %s: the regexp did not extract a number", ref, ser.Metric)
				}
				for _, pt := range ser.Points {
					pts++
					if pt.V < 1 || pt.V > 450 {
						t.Errorf("%s: text_len %v outside run.sh's 1..450", ref, pt.V)
					}
				}
			}
			if pts == 0 {
				t.Errorf("%s: no points", ref)
			}
		}
	})
	t.Run("logs panel search", func(t *testing.T) {
		pn := panels[7]
		q := pn.Targets[0]
		limit, err := strconv.Atoi(string(q.MaxLines))
		if err != nil {
			t.Fatalf("maxLines %s: %v", q.MaxLines, err)
		}
		res := s.rangeQuery(t, substituteVars(q.Expr, all), from, to, step, limit)
		if n := entries(res); n != limit || !res.LimitReached {
			t.Errorf("empty search: %d lines (limit reached %v), want the limit %d", n, res.LimitReached, limit)
		}
		res = s.rangeQuery(t, substituteVars(q.Expr, map[string]string{"instance": inst.AllValue, "search": "CUDA out of memory"}), from, to, step, limit)
		if n := entries(res); int64(n) != s.m.OOMEntries {
			t.Errorf("search for OOMs: %d lines, want %d", n, s.m.OOMEntries)
		}
		for _, st := range res.Streams {
			for _, e := range st.Entries {
				if !strings.Contains(e.Line, "CUDA out of memory") {
					t.Errorf("search returned %q", e.Line)
				}
			}
		}
		// What people paste from a JSON line, quotes and all, is searched
		// literally.
		needle := `"event":"model_loaded"`
		want := countLines(t, s.logs, s.m, needle)
		if want == 0 || want > limit {
			t.Fatalf("the sample has %d lines with %s; want 1..%d", want, needle, limit)
		}
		res = s.rangeQuery(t, substituteVars(q.Expr, map[string]string{"instance": inst.AllValue, "search": needle}), from, to, step, limit)
		if n := entries(res); n != want {
			t.Errorf("search for %s: %d lines, the files have %d", needle, n, want)
		}
	})
}

// substituteVars replaces dashboard variables only: the query's
// evaluation expands Grafana's time variables for its own range and step.
func substituteVars(expr string, vals map[string]string) string {
	return replaceTemplateVars(expr, vals)
}

// countLines counts the sample's lines containing s.
func countLines(t *testing.T, logs string, m sample.Manifest, s string) int {
	t.Helper()
	n := 0
	for _, f := range m.Files {
		b, err := os.ReadFile(filepath.Join(logs, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, s) {
				n++
			}
		}
	}
	return n
}

func entries(res engine.Result) int {
	n := 0
	for _, st := range res.Streams {
		n += len(st.Entries)
	}
	return n
}

func sortedCounts(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return out
}
