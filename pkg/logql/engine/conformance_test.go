package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/lokiapi"
	"github.com/lokal-logs/lokal/pkg/push"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

type conformanceRow struct {
	id, endpoint, query, start, end, step, limit, direction, status, resultType, note, stable string
}

func readRows(t *testing.T, path string) []conformanceRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []conformanceRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	header := true
	for sc.Scan() {
		if header {
			header = false
			continue
		}
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 14 {
			t.Fatalf("queries.tsv: short row %q", sc.Text())
		}
		rows = append(rows, conformanceRow{id: c[0], endpoint: c[1], query: c[2], start: c[3], end: c[4], step: c[5],
			limit: c[6], direction: c[7], status: c[8], resultType: c[9], note: c[12], stable: c[13]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// loadConformance loads entries.push.json with the same code as `lokal
// push` into app.
func loadConformance(t testing.TB, dir string, app store.Appender) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "entries.push.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = push.Read(f, push.Options{}, func(b store.AppendBatch) error {
		return app.Append(context.Background(), b)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// conformanceReaders returns the real store (flushed to blocks on disk)
// and the in-memory reference reader, both loaded with the corpus.
func conformanceReaders(t testing.TB, dir string) map[string]store.Reader {
	t.Helper()
	mem := memstore.New()
	if !raceEnabled {
		loadConformance(t, dir, mem)
	}
	disk, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := disk.Close(); err != nil {
			t.Error(err)
		}
	})
	loadConformance(t, dir, disk)
	if err := disk.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return map[string]store.Reader{"store": disk, "memstore": mem}
}

func (r conformanceRow) params(t *testing.T) engine.Params {
	p := engine.Params{Query: r.query, Direction: store.Backward}
	parse := func(s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatalf("row %s: bad time %q: %v", r.id, s, err)
		}
		return ts
	}
	p.Start, p.End = parse(r.start), parse(r.end)
	if r.endpoint == "/loki/api/v1/query" {
		p.Instant = true
	}
	if r.step != "" {
		d, err := time.ParseDuration(r.step)
		if err != nil {
			t.Fatalf("row %s: bad step %q", r.id, r.step)
		}
		p.Step = d
	}
	if r.limit != "" {
		n, err := strconv.Atoi(r.limit)
		if err != nil {
			t.Fatalf("row %s: bad limit %q", r.id, r.limit)
		}
		p.Limit = n
	}
	if r.direction == "forward" {
		p.Direction = store.Forward
	}
	return p
}

// canonical turns a Loki body into a comparable form: result type and the
// result with streams/series sorted by labels (their order carries no
// meaning), entries and points kept in order.
func canonical(body []byte) (string, error) { return canonicalRounded(body, false) }

// canonicalRounded, with round set, prints sample values with 12
// significant digits: Loki sums the series of a vector aggregation in map
// order, so the last bits of sums and averages vary between its runs.
func canonicalRounded(body []byte, round bool) (string, error) {
	var v struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	var items []json.RawMessage
	if v.Data.ResultType == "scalar" {
		return v.Data.ResultType + " " + string(v.Data.Result), nil
	}
	if err := json.Unmarshal(v.Data.Result, &items); err != nil {
		return "", err
	}
	var out []string
	for _, it := range items {
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(it))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			return "", err
		}
		if round {
			roundValues(m)
		}
		b, _ := json.Marshal(m) // map keys come out sorted
		out = append(out, string(b))
	}
	sort.Strings(out)
	return v.Data.ResultType + "\n" + strings.Join(out, "\n"), nil
}

func TestLokiConformance(t *testing.T) {
	dir := testshared.Path(t, "loki-conformance")
	rows := readRows(t, filepath.Join(dir, "queries.tsv"))
	for name, st := range conformanceReaders(t, dir) {
		if name == "memstore" && raceEnabled {
			// The reference reader only cross-checks the real store.
			continue
		}
		t.Run(name, func(t *testing.T) {
			if hits := runConformance(t, dir, rows, engine.New(st, engine.Options{BlockCacheBytes: -1}), 1); hits != 0 {
				t.Errorf("%d block results reused with the cache off", hits)
			}
		})
		// With the per-block cache, each query twice: the warmed answer
		// must be Loki's too.
		t.Run(name+"/cached", func(t *testing.T) {
			hits := runConformance(t, dir, rows, engine.New(st, engine.Options{}), 2)
			if name == "store" && hits == 0 {
				t.Error("the repeated queries reused no block result")
			}
		})
	}
}

// runConformance evaluates each row repeat times, checking every answer,
// and returns the block results the engine reused.
func runConformance(t *testing.T, dir string, rows []conformanceRow, eng *engine.Engine, repeat int) (hits int64) {
	for _, r := range rows {
		t.Run(r.id, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, "answers", r.id+".json"))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < repeat; i++ {
				res, qerr := eng.Query(context.Background(), r.params(t))
				hits += res.Stats.Cache.Hits
				checkConformance(t, r, want, res, qerr)
			}
		})
	}
	return hits
}

// checkConformance compares one answer with Loki's.
func checkConformance(t *testing.T, r conformanceRow, want []byte, res engine.Result, qerr error) {
	t.Helper()
	if r.status != "200" {
		var ans struct {
			RawBody string `json:"raw_body"`
		}
		if err := json.Unmarshal(want, &ans); err != nil {
			t.Fatal(err)
		}
		if qerr == nil {
			t.Fatalf("%s (%s): Loki rejects it with %q; we answered", r.query, r.note, ans.RawBody)
		}
		if qerr.Error() != ans.RawBody {
			t.Errorf("%s: error message differs\n got: %s\nwant: %s", r.query, qerr, ans.RawBody)
		}
		return
	}
	if qerr != nil {
		t.Fatalf("%s (%s): %v", r.query, r.note, qerr)
	}
	got := lokiapi.Marshal(res)
	cg, err := canonical(got)
	if err != nil {
		t.Fatalf("our body does not decode: %v\n%s", err, got)
	}
	cw, err := canonical(want)
	if err != nil {
		t.Fatalf("Loki's body does not decode: %v", err)
	}
	if cg != cw {
		rg, _ := canonicalRounded(got, true)
		rw, _ := canonicalRounded(want, true)
		if rg != rw {
			t.Errorf("%s (%s) differs from Loki:\n%s", r.query, r.note, diffLines(cg, cw))
			return
		}
		t.Logf("%s: equal to Loki up to float rounding of unordered sums", r.query)
	}
	// The order of streams, series and samples is part of Loki's
	// answer too (label order, or what sort/sort_desc gave).
	if og, ow := resultOrder(got), resultOrder(want); og != ow {
		t.Errorf("%s: result order differs\n got: %s\nwant: %s", r.query, og, ow)
	}
}

// diffLines reports the first differing lines, trimmed, to keep failures
// readable on large results.
func diffLines(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	fmt.Fprintf(&b, "got %d items, want %d\n", len(g)-1, len(w)-1)
	shown := 0
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			fmt.Fprintf(&b, " got[%d]: %.600s\nwant[%d]: %.600s\n", i, gl, i, wl)
			shown++
			if shown >= 3 {
				break
			}
		}
	}
	return b.String()
}

func roundValues(m map[string]any) {
	round := func(p any) {
		pt, ok := p.([]any)
		if !ok || len(pt) != 2 {
			return
		}
		if s, ok := pt[1].(string); ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				pt[1] = strconv.FormatFloat(f, 'g', 12, 64)
			}
		}
	}
	if vs, ok := m["values"].([]any); ok {
		for _, p := range vs {
			round(p)
		}
	}
	if v, ok := m["value"]; ok {
		round(v)
	}
}

// resultOrder lists the labels of a body's streams, series or samples in
// the order given ("" for a scalar).
func resultOrder(body []byte) string {
	var v struct {
		Data struct {
			Result json.RawMessage `json:"result"`
		} `json:"data"`
	}
	var items []struct {
		Metric map[string]string `json:"metric"`
		Stream map[string]string `json:"stream"`
	}
	if json.Unmarshal(body, &v) != nil || json.Unmarshal(v.Data.Result, &items) != nil {
		return ""
	}
	var out []string
	for _, r := range items {
		m := r.Metric
		if m == nil {
			m = r.Stream
		}
		b, _ := json.Marshal(m)
		out = append(out, string(b))
	}
	return strings.Join(out, " ")
}
