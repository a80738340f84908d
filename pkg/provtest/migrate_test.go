package provtest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/dsmigrate"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// TestMigrateToLoki rewrites every provisioned dashboard and alert rule
// file to a Loki datasource's uid (lokal migrate-dashboards) and checks
// that nothing refers to Lokal any more and that every query, as Grafana
// sends it (variables and time macros expanded), is one our parser accepts:
// the parser checked against Loki's own answers, so these are valid Loki
// queries.
func TestMigrateToLoki(t *testing.T) {
	p := loadProvisioned(t)
	from := p.lokalUID(t)
	const to = "loki-cluster"
	o := dsmigrate.Options{FromUID: from, ToUID: to}
	gv := syntax.GrafanaVars{Interval: 15 * time.Second, Range: 6 * time.Hour}
	isLoki := func(r *dsRef) bool { return r != nil && r.UID == to && r.Type == dsmigrate.LokiType }
	checked := 0
	for _, f := range provisioningFiles(t, p.root) {
		dir := filepath.Base(filepath.Dir(f))
		if dir != "dashboards" && dir != "alerting" || filepath.Ext(f) == ".yaml" && dir == "dashboards" {
			continue // datasources and dashboard providers name no datasource
		}
		t.Run(f, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join(p.root, f))
			if err != nil {
				t.Fatal(err)
			}
			out, n, err := dsmigrate.Rewrite(f, in, o)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte(dsmigrate.LokalType)) {
				t.Errorf("still names %s after %d rewrites", dsmigrate.LokalType, n)
			}
			switch dir {
			case "dashboards":
				var d dashboard
				if err := json.Unmarshal(out, &d); err != nil {
					t.Fatal(err)
				}
				vars := map[string]string{}
				for _, v := range d.Templating.List {
					vars[v.Name] = v.AllValue
					if v.Type != "query" {
						continue
					}
					if !isLoki(v.Datasource) {
						t.Errorf("variable %s: datasource %+v", v.Name, v.Datasource)
					}
					q, _ := v.Query.(string)
					if m := labelValuesRE.FindStringSubmatch(q); m == nil {
						t.Errorf("variable %s: %q is not Loki's label_values([{selector},] label)", v.Name, q)
					} else if m[1] != "" {
						if _, err := syntax.ParseMatchers(m[1]); err != nil {
							t.Errorf("variable %s: %v", v.Name, err)
						}
					}
					checked++
				}
				for _, pn := range allPanels(d.Panels) {
					for _, q := range pn.Targets {
						ref := q.Datasource
						if ref == nil {
							ref = pn.Datasource
						}
						if !isLoki(ref) {
							t.Errorf("panel %q query %s: datasource %+v", pn.Title, q.RefID, ref)
						}
						expr := substitute(q.Expr, vars, gv)
						if _, err := syntax.ParseExpr(expr); err != nil {
							t.Errorf("panel %q query %s: %q: %v", pn.Title, q.RefID, expr, err)
						}
						checked++
					}
				}
			case "alerting":
				var af alertingFile
				if err := decodeYAMLStrict(out, &af); err != nil {
					t.Fatal(err)
				}
				for _, g := range af.Groups {
					for _, r := range g.Rules {
						for _, q := range r.Data {
							if q.DatasourceUID == exprDatasource {
								continue
							}
							if q.DatasourceUID != to {
								t.Errorf("rule %s query %s: datasourceUid %q", r.UID, q.RefID, q.DatasourceUID)
							}
							expr, _ := q.Model["expr"].(string)
							if _, err := syntax.ParseExpr(substitute(expr, nil, gv)); err != nil {
								t.Errorf("rule %s query %s: %q: %v", r.UID, q.RefID, expr, err)
							}
							checked++
						}
					}
				}
				if len(af.Groups) > 0 && n == 0 {
					t.Error("rules but no reference rewritten")
				}
			}
			if strings.Contains(string(out), `"uid": "`+from+`"`) {
				t.Errorf("a reference to uid %q is left", from)
			}
		})
	}
	if checked == 0 {
		t.Fatal("no query checked")
	}
	t.Logf("%d provisioned queries point at the Loki datasource and parse", checked)
}
