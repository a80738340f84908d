// Package conformance reads the shared Loki conformance set
// (../shared/loki-conformance: real Loki answers to LogQL queries over a
// small corpus) and compares bodies with Loki's, for the engine's tests and
// the HTTP API's.
package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/lokal-logs/lokal/pkg/push"
	"github.com/lokal-logs/lokal/pkg/store"
)

// Row is one line of queries.tsv.
type Row struct {
	ID, Endpoint, Query, Start, End, Step, Limit, Direction, Status, ResultType, Note, Stable string
}

// ReadRows reads queries.tsv.
func ReadRows(t testing.TB, path string) []Row {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []Row
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
		rows = append(rows, Row{ID: c[0], Endpoint: c[1], Query: c[2], Start: c[3], End: c[4], Step: c[5],
			Limit: c[6], Direction: c[7], Status: c[8], ResultType: c[9], Note: c[12], Stable: c[13]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// Load stores entries.push.json of dir into app with the same code as
// `lokal push`.
func Load(t testing.TB, dir string, app store.Appender) {
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

// Store opens a store in a temporary directory holding the corpus of dir,
// flushed to blocks on disk; it is closed when the test ends.
func Store(t testing.TB, dir string) *store.Store {
	t.Helper()
	return FlushedStore(t, func(app store.Appender) { Load(t, dir, app) })
}

// FlushedStore opens a store in a temporary directory, lets fill append to
// it and flushes it to blocks on disk, so that block counts are real; it is
// closed when the test ends.
func FlushedStore(t testing.TB, fill func(store.Appender)) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	fill(st)
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// Answer reads Loki's answer to row id; for a rejected query, raw is
// Loki's error message.
func Answer(t testing.TB, dir, id string) (body []byte, raw string) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(dir, "answers", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Status  string `json:"status"`
		RawBody string `json:"raw_body"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		t.Fatalf("answer %s: %v", id, err)
	}
	return body, ans.RawBody
}

// Compare reports how got differs from Loki's body want ("" when equal):
// streams and series as sets, entries and points in order, sums of
// unordered series up to float rounding, and the result's order.
func Compare(got, want []byte) (string, error) {
	cg, err := canonical(got, false)
	if err != nil {
		return "", fmt.Errorf("our body does not decode: %w\n%s", err, got)
	}
	cw, err := canonical(want, false)
	if err != nil {
		return "", fmt.Errorf("loki's body does not decode: %w", err)
	}
	if cg != cw {
		rg, _ := canonical(got, true)
		rw, _ := canonical(want, true)
		if rg != rw {
			return diffLines(cg, cw), nil
		}
	}
	// The order of streams, series and samples is part of Loki's answer
	// too (label order, or what sort/sort_desc gave).
	if og, ow := resultOrder(got), resultOrder(want); og != ow {
		return fmt.Sprintf("result order differs\n got: %s\nwant: %s", og, ow), nil
	}
	return "", nil
}

// canonical turns a Loki body into a comparable form: result type and the
// result with streams/series sorted by labels (their order carries no
// meaning), entries and points kept in order. With round set, sample
// values keep 12 significant digits: Loki sums the series of a vector
// aggregation in map order, so the last bits of sums and averages vary
// between its runs.
func canonical(body []byte, round bool) (string, error) {
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
