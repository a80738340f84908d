//go:build grafanae2e

package grafanae2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// lokiDSUID is the Grafana Loki datasource the check creates, pointing at
// the Lokal datasource's resources URL.
const lokiDSUID = "lokal-as-loki"

// lokiDatasourceChecks points Grafana's built-in Loki datasource at the
// Lokal datasource's resources URL, authenticated with a service account
// token, and checks what its users do: the health check ("Save & test"),
// Explore's log and metric queries, the query builder's label and value
// look-ups, and the calls Logs Drilldown makes through the Loki
// datasource's resource proxy.
func lokiDatasourceChecks(t *testing.T, g *grafana) {
	// A read-only Loki datasource carries a Viewer's token.
	tok := serviceAccountToken(t, g, "lokal-loki-api", "Viewer")
	ds := map[string]any{
		"name": "Lokal via Loki API", "type": "loki", "uid": lokiDSUID, "access": "proxy",
		"url": g.base + "/api/datasources/uid/" + dsUID + "/resources",
		// Lokal has no Loki ruler: without manageAlerts false, Grafana's
		// alert list asks this datasource for ruler rules (a 404).
		"jsonData":       map[string]any{"httpHeaderName1": "Authorization", "manageAlerts": false},
		"secureJsonData": map[string]any{"httpHeaderValue1": "Bearer " + tok},
	}
	code, raw, err := g.api("POST", "/api/datasources", ds, nil)
	if err != nil || code != 200 {
		t.Fatalf("create the Loki datasource: HTTP %d %v %s", code, err, raw)
	}

	t.Run("health check", func(t *testing.T) {
		var h struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		}
		code, raw, _ := g.api("GET", "/api/datasources/uid/"+lokiDSUID+"/health", nil, &h)
		if code != 200 || h.Status != "OK" {
			t.Fatalf("Loki datasource health: HTTP %d %s", code, raw)
		}
		t.Logf("Loki datasource health: %s", h.Message)
	})

	lokiQuery := func(q map[string]any) (queryResult, error) {
		q["datasource"] = map[string]string{"type": "loki", "uid": lokiDSUID}
		r, _, err := g.query("now-3h", "now", q)
		return r, err
	}
	t.Run("Explore log query", func(t *testing.T) {
		r, err := lokiQuery(map[string]any{"expr": `{job="cosyvoice3"} |= "error"`, "queryType": "range", "maxLines": 50})
		if err != nil {
			t.Fatal(err)
		}
		rows := 0
		for _, f := range r.Frames {
			rows += f.rows()
		}
		if rows != 50 {
			t.Fatalf("log query through the Loki datasource: want 50 lines, got %d in %+v", rows, summary(r))
		}
	})
	t.Run("Explore metric query", func(t *testing.T) {
		r, err := lokiQuery(map[string]any{"expr": `sum by (level) (count_over_time({job="cosyvoice3"}[5m]))`, "queryType": "range", "intervalMs": 60000, "maxDataPoints": 300})
		if err != nil {
			t.Fatal(err)
		}
		levels := 0
		for _, f := range r.Frames {
			for _, fl := range f.Schema.Fields {
				if fl.Labels["level"] != "" && f.rows() > 0 {
					levels++
				}
			}
		}
		if levels < 2 {
			t.Fatalf("metric query through the Loki datasource: want a series per level, got %+v", summary(r))
		}
	})

	// Another host's shipper (Alloy's loki.write) pushes through Grafana
	// to the Lokal datasource's resources URL with an Editor's token (a
	// Viewer's is refused: Viewers may query, not write); the Loki
	// datasource then answers the pushed line.
	t.Run("push through Grafana, then query", func(t *testing.T) {
		body := fmt.Sprintf(`{"streams":[{"stream":{"job":"pushed-remote","host":"far"},"values":[["%d","pushed through grafana"]]}]}`, time.Now().UnixNano())
		push := func(token string) (int, string) {
			req, err := http.NewRequest("POST", g.base+"/api/datasources/uid/"+dsUID+"/resources/loki/api/v1/push", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(raw)
		}
		if code, raw := push(tok); code != http.StatusForbidden || !strings.Contains(raw, "Editor or Admin role") {
			t.Fatalf("push with a Viewer's token: HTTP %d %s, want 403", code, raw)
		}
		if code, raw := push(serviceAccountToken(t, g, "lokal-shipper", "Editor")); code != http.StatusNoContent {
			t.Fatalf("push with an Editor's token: HTTP %d %s", code, raw)
		}
		r, err := lokiQuery(map[string]any{"expr": `{job="pushed-remote"}`, "queryType": "range", "maxLines": 10})
		if err != nil {
			t.Fatal(err)
		}
		if rows := len(r.Frames); rows == 0 || r.Frames[0].rows() != 1 {
			t.Fatalf("pushed line: want one line, got %+v", summary(r))
		}
	})

	end := time.Now()
	start := end.Add(-3 * time.Hour)
	rng := fmt.Sprintf("start=%d&end=%d", start.UnixNano(), end.UnixNano())
	sel := url.QueryEscape(`{job="cosyvoice3"}`)
	res := "/api/datasources/uid/" + lokiDSUID + "/resources/"
	for _, c := range []struct{ name, path, want string }{
		{"query builder: labels", "labels?" + rng, `"job"`},
		{"query builder: label values", "label/level/values?" + rng + "&query=" + sel, `"error"`},
		{"query builder: series", "series?" + rng + "&match[]=" + sel, `"filename"`},
		{"query stats", "index/stats?" + rng + "&query=" + sel, `"entries"`},
		{"Drilldown: volume", "index/volume?" + rng + "&query=" + url.QueryEscape(`{job=~".+"}`) + "&limit=5000&targetLabels=job&aggregateBy=series", `"resultType":"vector"`},
		{"Drilldown: volume_range", "index/volume_range?" + rng + "&query=" + sel + "&step=300&targetLabels=level&aggregateBy=series", `"resultType":"matrix"`},
		{"Drilldown: detected_labels", "detected_labels?" + rng + "&query=" + sel, `"detectedLabels"`},
		{"Drilldown: detected_fields", "detected_fields?" + rng + "&query=" + sel, `"fields"`},
		{"Drilldown: patterns", "patterns?" + rng + "&query=" + sel + "&step=300", `"pattern"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, raw, err := g.api("GET", res+c.path, nil, nil)
			if err != nil || code != 200 || !strings.Contains(string(raw), c.want) {
				t.Errorf("GET %s: HTTP %d %v %.300s (want %s)", c.path, code, err, raw, c.want)
			}
		})
	}
}

// serviceAccountToken creates a Grafana service account with an org role
// and returns a token of it.
func serviceAccountToken(t *testing.T, g *grafana, name, role string) string {
	t.Helper()
	var sa struct {
		ID int64 `json:"id"`
	}
	code, raw, err := g.api("POST", "/api/serviceaccounts", map[string]any{"name": name, "role": role}, &sa)
	if err != nil || code != 201 && code != 200 {
		t.Fatalf("create service account %s: HTTP %d %v %s", name, code, err, raw)
	}
	var tok struct {
		Key string `json:"key"`
	}
	code, raw, err = g.api("POST", fmt.Sprintf("/api/serviceaccounts/%d/tokens", sa.ID), map[string]any{"name": name}, &tok)
	if err != nil || code != 200 || tok.Key == "" {
		t.Fatalf("create a token of %s: HTTP %d %v %s", name, code, err, raw)
	}
	return tok.Key
}
