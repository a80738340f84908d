package lokihttp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/conformance"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/lokihttp"
	"github.com/lokal-logs/lokal/pkg/store"
)

// conformanceServer serves the conformance corpus, stored and flushed to
// blocks on disk, over HTTP.
func conformanceServer(t testing.TB) (dir string, srv *httptest.Server, st *store.Store) {
	t.Helper()
	dir = testshared.Path(t, "loki-conformance")
	st = conformance.Store(t, dir)
	srv = httptest.NewServer(lokihttp.New(staticBackend(st)))
	t.Cleanup(srv.Close)
	return dir, srv, st
}

// staticBackend serves one reader.
func staticBackend(r store.Reader) lokihttp.Options {
	b := lokihttp.Backend{Reader: r, Engine: engine.New(r, engine.Options{})}
	return lokihttp.Options{Acquire: func() (lokihttp.Backend, func(), error) { return b, func() {}, nil }}
}

// rowURL spells a conformance row as the request Loki answered.
func rowURL(t testing.TB, base string, r conformance.Row) string {
	t.Helper()
	v := url.Values{"query": {r.Query}}
	ns := func(s string) string {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatalf("row %s: bad time %q: %v", r.ID, s, err)
		}
		return ts.Format(time.RFC3339Nano)
	}
	if r.Endpoint == "/loki/api/v1/query" {
		v.Set("time", ns(r.Start))
	} else {
		v.Set("start", ns(r.Start))
		v.Set("end", ns(r.End))
	}
	for k, s := range map[string]string{"step": r.Step, "limit": r.Limit, "direction": r.Direction} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return base + r.Endpoint + "?" + v.Encode()
}

func get(t testing.TB, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestConformanceOverHTTP sends every conformance query as Loki received
// it and compares the status and body with Loki's.
func TestConformanceOverHTTP(t *testing.T) {
	dir, srv, _ := conformanceServer(t)
	for _, r := range conformance.ReadRows(t, filepath.Join(dir, "queries.tsv")) {
		t.Run(r.ID, func(t *testing.T) {
			want, raw := conformance.Answer(t, dir, r.ID)
			code, body := get(t, rowURL(t, srv.URL, r))
			if strconv.Itoa(code) != r.Status {
				t.Fatalf("%s (%s): status %d, Loki %s: %s", r.Query, r.Note, code, r.Status, body)
			}
			if r.Status != "200" {
				if got := strings.TrimSuffix(body, "\n"); got != raw {
					t.Errorf("%s: body differs\n got: %s\nwant: %s", r.Query, got, raw)
				}
				return
			}
			diff, err := conformance.Compare([]byte(body), want)
			if err != nil {
				t.Fatal(err)
			}
			if diff != "" {
				t.Errorf("%s (%s) differs from Loki:\n%s", r.Query, r.Note, diff)
			}
		})
	}
}
