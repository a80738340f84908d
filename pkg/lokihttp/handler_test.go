package lokihttp_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/lokihttp"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

// t0 is the fixture's first entry.
var t0 = time.Date(2024, 12, 17, 0, 0, 0, 0, time.UTC)

// fixture stores two streams of three lines each, a second apart.
func fixture(t testing.TB) *memstore.Store {
	t.Helper()
	mem := memstore.New()
	var b store.AppendBatch
	for _, app := range []string{"api", "worker"} {
		s := store.StreamEntries{Labels: labels.FromStrings("app", app, "level", "info")}
		for i := range 3 {
			s.Entries = append(s.Entries, store.Entry{Ts: t0.Add(time.Duration(i) * time.Second).UnixNano(), Seq: uint64(i),
				Line: app + " line " + string(rune('a'+i))})
		}
		b.Streams = append(b.Streams, s)
	}
	if err := mem.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return mem
}

func fixtureServer(t testing.TB) *httptest.Server {
	t.Helper()
	opts := staticBackend(fixture(t))
	opts.Now = func() time.Time { return t0.Add(time.Hour) }
	opts.Version = "test"
	srv := httptest.NewServer(lokihttp.New(opts))
	t.Cleanup(srv.Close)
	return srv
}

func TestEndpoints(t *testing.T) {
	srv := fixtureServer(t)
	start := url.QueryEscape(t0.Format(time.RFC3339))
	end := url.QueryEscape(t0.Add(3 * time.Second).Format(time.RFC3339))
	all := url.QueryEscape(`{app=~".+"}`)
	tests := []struct {
		name, path string
		code       int
		want       string // the body, or its prefix when it ends with "…"
	}{
		{"labels", "/loki/api/v1/labels", 200, `{"status":"success","data":["app","level"]}`},
		{"labels of a selector", "/loki/api/v1/labels?query=" + url.QueryEscape(`{app="api"}`), 200, `{"status":"success","data":["app","level"]}`},
		{"labels out of range", "/loki/api/v1/labels?since=1m", 200, `{"status":"success","data":[]}`},
		{"label values", "/loki/api/v1/label/app/values", 200, `{"status":"success","data":["api","worker"]}`},
		{"label values of a selector", "/loki/api/v1/label/app/values?query=" + url.QueryEscape(`{app=~"w.*"}`), 200, `{"status":"success","data":["worker"]}`},
		{"series", "/loki/api/v1/series?match[]=" + url.QueryEscape(`{app="api"}`), 200, `{"status":"success","data":[{"app":"api","level":"info"}]}`},
		{"series without match", "/loki/api/v1/series", 400, "0 matchers given: series needs at least one match[] selector, e.g. match[]={job=\"varlogs\"}\n"},
		{"query_range forward limit", "/loki/api/v1/query_range?direction=forward&limit=2&query=" + url.QueryEscape(`{app="api"}`) + "&start=" + start + "&end=" + end,
			200, `{"status":"success","data":{"resultType":"streams","result":[{"stream":{"app":"api","level":"info"},"values":[["1734393600000000000","api line a"],["1734393601000000000","api line b"]]}],"stats":…`},
		{"query_range backward default", "/loki/api/v1/query_range?limit=1&query=" + url.QueryEscape(`{app="api"}`),
			200, `{"status":"success","data":{"resultType":"streams","result":[{"stream":{"app":"api","level":"info"},"values":[["1734393602000000000","api line c"]]}],"stats":…`},
		{"query_range interval", "/loki/api/v1/query_range?direction=forward&interval=2s&query=" + url.QueryEscape(`{app="api"}`) + "&start=" + start + "&end=" + end,
			200, `{"status":"success","data":{"resultType":"streams","result":[{"stream":{"app":"api","level":"info"},"values":[["1734393600000000000","api line a"],["1734393602000000000","api line c"]]}],"stats":…`},
		{"query_range metric step", "/loki/api/v1/query_range?step=1&query=" + url.QueryEscape(`count_over_time({app="api"}[1s])`) + "&start=1734393600&end=1734393602",
			200, `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"app":"api","level":"info"},"values":[[1734393600,"1"],[1734393601,"1"],[1734393602,"1"]]}],"stats":…`},
		{"query instant", "/loki/api/v1/query?time=1734393603&query=" + url.QueryEscape(`sum(count_over_time({app=~".+"}[1m]))`),
			200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1734393603,"6"]}],"stats":…`},
		// Grafana's health check sends 4 s in ns, which has 10 digits: Loki reads it as seconds.
		{"health check query", "/loki/api/v1/query?time=4000000000&step=1s&query=" + url.QueryEscape(`vector(1)+vector(1)`),
			200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[4000000000,"2"]}],"stats":…`},
		{"index/stats", "/loki/api/v1/index/stats?query=" + all, 200, `{"streams":2,"chunks":2,"bytes":69,"entries":6}`},
		{"index/stats without query", "/loki/api/v1/index/stats", 400, "query parameter is required, e.g. query={job=\"varlogs\"}\n"},
		{"index/volume", "/loki/api/v1/index/volume?query=" + all, 200,
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"app":"worker"},"value":[1734397200,"39"]},{"metric":{"app":"api"},"value":[1734397200,"30"]}],"stats":…`},
		{"index/volume by labels", "/loki/api/v1/index/volume?aggregateBy=labels&query=" + all, 200,
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"app":""},"value":[1734397200,"69"]}],"stats":…`},
		{"index/volume bad aggregateBy", "/loki/api/v1/index/volume?aggregateBy=x&query=" + all, 400, "invalid aggregation option \"x\": want series or labels\n"},
		{"index/volume_range", "/loki/api/v1/index/volume_range?step=60&query=" + all, 200,
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"app":"worker"},"values":[[1734393600,"39"]]},{"metric":{"app":"api"},"values":[[1734393600,"30"]]}],"stats":…`},
		{"detected_labels", "/loki/api/v1/detected_labels?query=" + all, 200, `{"detectedLabels":[{"label":"app","cardinality":2}]}`},
		{"detected_fields", "/loki/api/v1/detected_fields?query=" + all, 200, `{"fields":[],"limit":1000}`},
		{"detected_fields line_limit over max", "/loki/api/v1/detected_fields?line_limit=100001&query=" + all, 400, "line_limit 100001: at most 100000\n"},
		{"detected_field values", "/loki/api/v1/detected_field/app/values?limit=5&query=" + all, 200, `{"values":[],"limit":5}`},
		{"patterns", "/loki/api/v1/patterns?query=" + url.QueryEscape(`{app="api"}`), 200,
			`{"status":"success","data":[{"pattern":"api line a","level":"info","samples":[[1734393600,1]]},{"pattern":"api line b","level":"info","samples":[[1734393600,1]]},{"pattern":"api line c","level":"info","samples":[[1734393600,1]]}]}`},
		{"patterns zero step", "/loki/api/v1/patterns?step=0&query=" + all, 400, "zero or negative query resolution step widths are not accepted. Try a positive integer\n"},
		{"format_query", "/loki/api/v1/format_query?query=" + url.QueryEscape(`{app="api"}|="x"`), 200, `{"status":"success","data":"{app=\"api\"} |= \"x\""}`},
		{"format_query pretty", "/loki/api/v1/format_query?query=" + url.QueryEscape(`sum by (app) (rate({app="api", namespace="production", container="nginx-ingress-controller"} |= "error" | json [5m]))`), 200,
			`{"status":"success","data":"sum by (app) (\n  rate(\n    {app=\"api\", namespace=\"production\", container=\"nginx-ingress-controller\"} |= \"error\" | json [5m]\n  )\n)"}`},
		{"buildinfo", "/loki/api/v1/status/buildinfo", 200, `{"branch":"lokal","buildUser":"lokal","goVersion":…`},
		{"ready", "/ready", 200, "ready\n"},
		{"push not enabled", "/loki/api/v1/push", 404, "push is not enabled here\n"},
		{"tail not enabled", "/loki/api/v1/tail?query=%7Bapp%3D%22api%22%7D", 400, "tail is not enabled here\n"},
		{"unknown path", "/loki/api/v1/nope", 404, "404 page not found: /loki/api/v1/nope is not part of Loki's API as Lokal serves it\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, srv.URL+tt.path)
			if code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, body)
			}
			if prefix, ok := strings.CutSuffix(tt.want, "…"); ok {
				if !strings.HasPrefix(body, prefix) {
					t.Errorf("body\n got: %s\nwant: %s…", body, prefix)
				}
			} else if body != tt.want {
				t.Errorf("body\n got: %s\nwant: %s", body, tt.want)
			}
		})
	}
}

// TestParameterErrors checks Loki's 400 answers to bad parameters.
func TestParameterErrors(t *testing.T) {
	srv := fixtureServer(t)
	q := "query=" + url.QueryEscape(`{app="api"}`)
	m := "query=" + url.QueryEscape(`rate({app="api"}[1m])`)
	tests := []struct{ name, path, want string }{
		{"no query", "/loki/api/v1/query_range", `query parameter is required, e.g. query={job="varlogs"}`},
		{"parse error", "/loki/api/v1/query_range?query=%7Bapp", `parse error at line 1, col 5: syntax error: unexpected $end, expecting EQ, NEQ, RE or NRE`},
		{"bad start", "/loki/api/v1/query_range?" + q + "&start=yesterday", `cannot parse "yesterday" to a valid timestamp`},
		{"bad end", "/loki/api/v1/query_range?" + q + "&end=x", `cannot parse "x" to a valid timestamp`},
		{"end before start", "/loki/api/v1/query_range?" + q + "&start=1734393600&end=1734393500", "end timestamp must not be before or equal to start time"},
		{"zero limit", "/loki/api/v1/query_range?" + q + "&limit=0", "limit must be a positive value"},
		{"bad limit", "/loki/api/v1/query_range?" + q + "&limit=ten", `cannot parse "ten" to a valid limit`},
		{"limit over max", "/loki/api/v1/query_range?" + q + "&limit=5001", "max entries limit per query exceeded, limit > max_entries_limit_per_query (5001 > 5000)"},
		{"bad direction", "/loki/api/v1/query_range?" + q + "&direction=sideways", "invalid direction 'sideways'"},
		{"bad step", "/loki/api/v1/query_range?" + m + "&step=often", `cannot parse "often" to a valid duration`},
		{"zero step", "/loki/api/v1/query_range?" + m + "&step=0", "zero or negative query resolution step widths are not accepted. Try a positive integer"},
		{"too many points", "/loki/api/v1/query_range?" + m + "&start=0&end=1734393600&step=1", "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"},
		{"negative interval", "/loki/api/v1/query_range?" + q + "&interval=-1", "negative query interval widths are not accepted. Try a positive integer"},
		{"bad time", "/loki/api/v1/query?" + m + "&time=soon", `cannot parse "soon" to a valid timestamp`},
		{"log query as instant", "/loki/api/v1/query?" + q, "log queries are not supported as an instant query type, please change your query to a range query type"},
		{"bad label selector", "/loki/api/v1/label/app/values?query=%7Bapp", `parse error at line 1, col 5: syntax error: unexpected $end, expecting EQ, NEQ, RE or NRE`},
		{"bad since", "/loki/api/v1/labels?since=long", `cannot parse "long" to a valid duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, srv.URL+tt.path)
			if code != 400 {
				t.Fatalf("status %d, want 400: %s", code, body)
			}
			if body != tt.want+"\n" {
				t.Errorf("body\n got: %s\nwant: %s", body, tt.want)
			}
		})
	}
}
