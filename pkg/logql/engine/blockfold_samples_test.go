package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// sameCachedAnswers runs each query without the cache and twice with it,
// and wants the same rendered answer every time, the second run with the
// cache taking every block's result from it.
func sameCachedAnswers(t *testing.T, st *store.Store, ps []Params) {
	t.Helper()
	ctx := context.Background()
	off := New(st, Options{BlockCacheBytes: -1})
	on := New(st, Options{})
	answered := 0
	for _, p := range ps {
		name := p.Query
		if p.Instant {
			name += " instant"
		}
		t.Run(name, func(t *testing.T) {
			want, err := off.Query(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(render(want)) > 0 {
				answered++
			}
			for run := 0; run < 2; run++ {
				got, err := on.Query(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				if g, w := render(got), render(want); fmt.Sprint(g) != fmt.Sprint(w) {
					t.Fatalf("run %d with the cache:\n got %v\nwant %v", run, g, w)
				}
				if run == 1 && (got.Stats.Cache.Hits == 0 || got.Stats.Cache.Misses != 0) {
					t.Errorf("repeated run: cache %+v, want only hits", got.Stats.Cache)
				}
			}
		})
	}
	if answered*2 < len(ps) {
		t.Fatalf("only %d of %d queries answered anything: the comparison is mostly vacuous", answered, len(ps))
	}
}

// Unwrapped range functions keep each block's samples and answer as the
// streamed fold does, on windows crossing the blocks' edges.
func TestBlockCacheUnwrapSameAnswers(t *testing.T) {
	st := blockTestStore(t)
	min := func(n int) time.Time { return time.Unix(0, 0).Add(time.Duration(n) * time.Minute).UTC() }
	rangeQ := func(q string, start, end int, step time.Duration) Params {
		return Params{Query: q, Start: min(start), End: min(end), Step: step}
	}
	instant := func(q string, at int) Params { return Params{Query: q, Start: min(at), Instant: true} }
	var ps []Params
	for _, fn := range []string{"sum", "avg", "min", "max", "first", "last", "stddev", "stdvar"} {
		by := " by (level)" // sum_over_time takes no grouping
		if fn == "sum" {
			by = ""
		}
		ps = append(ps,
			rangeQ(fn+`_over_time({app="a"} | logfmt | unwrap n [5m])`, 0, 50, time.Minute),
			rangeQ(fn+`_over_time({app="a"} |= "CUDA" | regexp "n=(?P<n>\\d+)" | unwrap n [150s] offset 30s)`+by, 1, 49, 40*time.Second),
			instant(fn+`_over_time({app="a"} | logfmt | unwrap n [25m])`+by, 40),
		)
	}
	ps = append(ps,
		rangeQ(`quantile_over_time(0.95, {app="a"} | logfmt | unwrap n [4m]) by (level)`, 0, 50, 2*time.Minute),
		instant(`quantile_over_time(0.5, {app="a"} != "retry" | logfmt | unwrap n [17m] offset 1m)`, 33),
		rangeQ(`rate({app="a"} | logfmt | unwrap n [3m])`, 0, 50, 13*time.Second),
		rangeQ(`rate_counter({app="a"} | logfmt | unwrap n [7m])`, 3, 50, 3*time.Minute),
		rangeQ(`avg_over_time({app="a"} | logfmt | unwrap n | __error__="" [10m]) by (msg)`, 0, 50, 7*time.Minute),
		rangeQ(`max_over_time({app="a"} | logfmt | label_format d="{{.n}}ms" | unwrap duration(d) [5m]) by (trace)`, 0, 50, time.Minute),
		rangeQ(`sum_over_time({app="a"} | logfmt | label_format d="{{.n}}ms" | unwrap duration(d) [5m])`, 0, 50, time.Minute),
	)
	sameCachedAnswers(t, st, ps)
}

// A query whose blocks' samples would not fit its share of the cache
// streams as before, with the same answer, keeps none of them, and the next
// one as large streams at once.
func TestBlockCacheUnwrapOverBudget(t *testing.T) {
	st := blockTestStore(t)
	p := Params{Query: `avg_over_time({app="a"} | logfmt | unwrap n [5m])`, Start: time.Unix(0, 0), End: time.Unix(3000, 0), Step: time.Minute}
	want := mustQuery(t, New(st, Options{BlockCacheBytes: -1}), p)
	// The query's samples take 5.6 MB in 10 blocks: over the whole of a
	// 4 KiB cache, and over the share of an 8 MiB one though every block's
	// part would fit it.
	for _, budget := range []int64{4 << 10, 8 << 20} {
		small := New(st, Options{BlockCacheBytes: budget})
		for run := 0; run < 2; run++ {
			got := mustQuery(t, small, p)
			if fmt.Sprint(render(got)) != fmt.Sprint(render(want)) {
				t.Fatalf("budget %d, run %d over the budget:\n got %v\nwant %v", budget, run, render(got), render(want))
			}
			if run == 0 && got.Stats.Cache.Misses == 0 {
				t.Errorf("budget %d, first run: cache %+v, want the samples computed until they were over the budget", budget, got.Stats.Cache)
			}
			if run == 0 && small.cache.len() != 0 {
				// They would sit in the heap beside the streamed windows.
				t.Errorf("budget %d, first run: the cache keeps %d entries (%d bytes) of samples that did not fit, want them dropped", budget, small.cache.len(), small.cache.used)
			}
			if run == 1 && got.Stats.Cache != (CacheStats{}) {
				t.Errorf("budget %d, repeated run: cache %+v, want it skipped: the samples are known not to fit", budget, got.Stats.Cache)
			}
		}
		if small.cache.used > small.cache.budget {
			t.Errorf("cache holds %d bytes, over its budget %d", small.cache.used, small.cache.budget)
		}
	}
}

// dashboardStore holds CosyVoice3-like logs (the labels and lines the
// provisioned dashboard's panels select and parse) in several blocks per
// stream, and a head.
func dashboardStore(t *testing.T) *store.Store {
	t.Helper()
	var streams []labels.Labels
	for _, inst := range []string{"host-1", "host-2"} {
		for _, f := range []string{"cosyvoice.log", "access.log"} {
			for _, lvl := range []string{"info", "error"} {
				streams = append(streams, labels.New(
					labels.Label{Name: "job", Value: "cosyvoice3"}, labels.Label{Name: "instance", Value: inst},
					labels.Label{Name: "filename", Value: "/var/log/cosyvoice/" + f}, labels.Label{Name: "level", Value: lvl}))
			}
		}
	}
	pad := strings.Repeat("p", 15000) // a block per stream and flush
	return flushedStore(t, streams, 5, 41, func(si, n int) store.Entry {
		ts := int64(n)*11*int64(time.Second) + int64(si%3)
		if n%6 == 0 {
			ts = int64(n/6) * int64(time.Minute) // on a window edge, in every stream
		}
		var line string
		switch (n + si) % 4 {
		case 0, 1:
			line = fmt.Sprintf("Generating audio for request %d text_len=%d speed=1.0 %s", n, 17+(n*37+si*11)%480, pad)
		case 2:
			line = "CUDA out of memory. Tried to allocate 2.00 GiB " + pad
		default:
			line = fmt.Sprintf("GET /v1/tts %d 200 %s", n, pad)
		}
		return store.Entry{Ts: ts, Line: line}
	})
}

// Every metric query of the provisioned CosyVoice3 dashboard answers the
// same with the cache as without, as the range query of a panel and as an
// instant query, on a second refresh from the cache alone.
func TestBlockCacheDashboardSameAnswers(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "provisioning", "dashboards", "cosyvoice3.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$instance", ".+", "$search", "CUDA", "$__range", "40m", "$__auto", "2m")
	min := func(n int) time.Time { return time.Unix(0, 0).Add(time.Duration(n) * time.Minute).UTC() }
	var ps []Params
	for _, pn := range d.Panels {
		for _, tg := range pn.Targets {
			q := vars.Replace(tg.Expr)
			if q == "" || strings.HasPrefix(q, "{") {
				continue // log queries keep no per-block results
			}
			ps = append(ps,
				Params{Query: q, Start: min(1), End: min(40), Step: 20 * time.Second},
				Params{Query: q, Start: min(25), Instant: true})
		}
	}
	if len(ps) < 10 {
		t.Fatalf("found %d metric queries in the dashboard", len(ps)/2)
	}
	sameCachedAnswers(t, dashboardStore(t), ps)
}

// An instant query evaluated at a new time each refresh (Grafana's "now")
// reuses what it kept of the blocks straddling its window's edges: each
// block is computed at most twice (whole, and as samples once it
// straddles), not once per evaluation time, and the answers stay the
// uncached ones.
func TestBlockCacheInstantEdges(t *testing.T) {
	for _, tt := range []struct {
		name string
		st   func(*testing.T) *store.Store
		q    string
	}{
		{"parser", blockTestStore, `sum by (msg) (count_over_time({app="a"} | logfmt | n > 3 [17m]))`},
		{"dashboard template", dashboardStore, `sum by (text_len_bucket) (count_over_time({job="cosyvoice3"} |= "Generating audio" | regexp ` +
			"`text_len=(?P<text_len>\\d+)` | label_format text_len_bucket=`{{ printf \"%03d-%03d\" (mul (div .text_len 100) 100) (add (mul (div .text_len 100) 100) 99) }}`" + ` [13m]))`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st(t)
			off := New(st, Options{BlockCacheBytes: -1})
			on := New(st, Options{})
			misses, evals := int64(0), 0
			for at := 20 * time.Minute; at < 37*time.Minute; at += 29 * time.Second {
				p := Params{Query: tt.q, Start: time.Unix(0, 0).Add(at), Instant: true}
				want, got := mustQuery(t, off, p), mustQuery(t, on, p)
				if fmt.Sprint(render(got)) != fmt.Sprint(render(want)) {
					t.Fatalf("at %s with the cache:\n got %v\nwant %v", at, render(got), render(want))
				}
				if len(render(want)) == 0 {
					t.Fatalf("at %s: no answer, the comparison is vacuous", at)
				}
				misses += got.Stats.Cache.Misses
				evals++
			}
			edges := 0
			on.cache.mu.Lock()
			for k := range on.cache.byKey {
				if strings.HasPrefix(k.pipe, "samples ") {
					edges++
				}
			}
			on.cache.mu.Unlock()
			if blocks := int64(st.Info().Blocks); misses > 2*blocks {
				t.Errorf("%d evaluations computed %d block results, more than twice the %d blocks", evals, misses, blocks)
			}
			if edges == 0 {
				t.Error("no window edge straddled a block: the test proves nothing")
			}
		})
	}
}
