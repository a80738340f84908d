package plugin

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// TestLokiAPIResources: Loki's HTTP API answers under the resource path,
// as Grafana's Loki datasource calls it (path and URL without a leading
// slash, parameters in the URL).
func TestLokiAPIResources(t *testing.T) {
	ds, start := newFixture(t).storedLines(t, 5, "hello")
	rng := url.Values{"start": {start.Add(-time.Second).Format(time.RFC3339)}, "end": {time.Now().Add(time.Minute).Format(time.RFC3339)}}
	with := func(kv ...string) string {
		v := url.Values{}
		for k, vs := range rng {
			v[k] = vs
		}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	tests := []struct {
		name, path, query string
		code              int
		want              string
	}{
		{"query_range", "loki/api/v1/query_range", with("query", `{job="app"} |= "hello 4"`), 200, `"values":[["`},
		{"metric", "loki/api/v1/query_range", with("query", `sum(count_over_time({job="app"}[1h]))`, "step", "60"), 200, `"resultType":"matrix"`},
		{"labels", "loki/api/v1/labels", with(), 200, `"job"`},
		{"label values", "loki/api/v1/label/job/values", with(), 200, `{"status":"success","data":["app"]}`},
		{"series", "loki/api/v1/series", with("match[]", `{job="app"}`), 200, `"job":"app"`},
		{"ready", "ready", "", 200, "ready\n"},
		{"bad parameter", "loki/api/v1/query_range", with("query", `{job="app"}`, "limit", "0"), 400, "limit must be a positive value\n"},
		{"tail", "loki/api/v1/tail", with("query", `{job="app"}`), 400, "tail needs a websocket"},
		{"pushed entry", "loki/api/v1/query_range", with("query", `{host="remote"}`), 200, `"pushed line"`},
	}
	// Writing needs Grafana's Editor or Admin role; Viewers may only query.
	for _, pt := range []struct {
		name string
		user *backend.User
		code int
		want string
	}{
		{"no user", nil, 403, "needs a signed-in user or service account with the Editor or Admin role"},
		{"viewer", &backend.User{Login: "sa-reader", Role: "Viewer"}, 403, "sa-reader has Viewer"},
		{"no role", &backend.User{Login: "nobody"}, 403, "nobody has no role"},
		{"editor", &backend.User{Login: "sa-shipper", Role: "Editor"}, 204, ""},
		{"admin, the same entry again (stored once)", &backend.User{Login: "admin", Role: "Admin"}, 204, ""},
	} {
		push := fmt.Sprintf(`{"streams":[{"stream":{"job":"app","host":"remote"},"values":[["%d","pushed line"]]}]}`, start.UnixNano())
		var pushed *backend.CallResourceResponse
		err := ds.CallResource(context.Background(), &backend.CallResourceRequest{Path: "loki/api/v1/push", Method: "POST", URL: "loki/api/v1/push",
			PluginContext: backend.PluginContext{User: pt.user},
			Headers:       map[string][]string{"Content-Type": {"application/json"}}, Body: []byte(push)},
			backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { pushed = r; return nil }))
		if err != nil || pushed.Status != pt.code || !strings.Contains(string(pushed.Body), pt.want) {
			t.Fatalf("push as %s: %v status %d %s; want %d %q", pt.name, err, pushed.Status, pushed.Body, pt.code, pt.want)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *backend.CallResourceResponse
			u := tt.path
			if tt.query != "" {
				u += "?" + tt.query
			}
			err := ds.CallResource(context.Background(), &backend.CallResourceRequest{Path: tt.path, Method: "GET", URL: u},
				backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { got = r; return nil }))
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.code {
				t.Fatalf("status %d, want %d: %s", got.Status, tt.code, got.Body)
			}
			if !strings.Contains(string(got.Body), tt.want) {
				t.Errorf("body %s\nwant it to contain %s", got.Body, tt.want)
			}
		})
	}
}
