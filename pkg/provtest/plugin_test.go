package provtest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/lokal-logs/lokal/pkg/plugin"
)

// pluginOnSample fills a store from the sample, closes it, and opens it
// again through the plugin with the provisioned datasource's uid and
// settings, as Grafana would after provisioning. The plugin's ingester
// resumes where the filling stopped, so the data is there at once.
func pluginOnSample(t *testing.T) (*sampleStore, *plugin.Datasource) {
	t.Helper()
	s := buildSampleStore(t)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	host := plugin.NewHost(plugin.HostOptions{Operator: s.op, Logger: log.NewWithLevel(log.Warn)})
	t.Cleanup(host.Close)
	inst, err := host.NewDatasource(context.Background(), backend.DataSourceInstanceSettings{UID: s.uid, JSONData: s.jsonData})
	if err != nil {
		t.Fatal(err)
	}
	ds := inst.(*plugin.Datasource)
	t.Cleanup(ds.Dispose)
	return s, ds
}

// alertQuery sends a rule's Lokal query as Grafana's alert scheduler does:
// the model as JSON, the rule's relative time range ending at `at`, and
// the FromAlert header.
func alertQuery(t *testing.T, ds *plugin.Datasource, q ruleQuery, at time.Time) backend.DataResponse {
	t.Helper()
	b, err := json.Marshal(q.Model)
	if err != nil {
		t.Fatal(err)
	}
	tr := backend.TimeRange{
		From: at.Add(-time.Duration(q.RelativeTimeRange.From) * time.Second),
		To:   at.Add(-time.Duration(q.RelativeTimeRange.To) * time.Second),
	}
	resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{
		Headers: map[string]string{backend.FromAlertHeaderName: "true"},
		Queries: []backend.DataQuery{{RefID: q.RefID, QueryType: q.QueryType, JSON: b, TimeRange: tr, Interval: time.Second, MaxDataPoints: 43200}},
	})
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	return resp.Responses[q.RefID]
}

// numericValues reads numeric-multi frames as series labels -> value; a
// frame without fields is Grafana's "no data".
func numericValues(t *testing.T, r backend.DataResponse) map[string]float64 {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("query error: %v", r.Error)
	}
	out := map[string]float64{}
	for _, f := range r.Frames {
		if f.Meta == nil || f.Meta.Type != data.FrameTypeNumericMulti {
			t.Fatalf("frame type %v, want numeric-multi (what Grafana's alerting reads)", f.Meta)
		}
		for _, fld := range f.Fields {
			if fld.Type() != data.FieldTypeFloat64 && fld.Type() != data.FieldTypeNullableFloat64 {
				continue
			}
			v, ok := fld.ConcreteAt(0)
			if !ok {
				continue
			}
			out[fld.Labels.String()] = v.(float64)
		}
	}
	return out
}

func TestAlertRulesThroughPlugin(t *testing.T) {
	s, ds := pluginOnSample(t)
	byFile := oomTimes(t, s.logs, s.m)
	burstAt, burst := findBurst(t, byFile, s.m)
	oom := findRule(t, s.p, oomRuleTitle)
	a := mustQuery(t, oom, "A")

	got := numericValues(t, alertQuery(t, ds, a, burstAt))
	if len(got) != 1 {
		t.Fatalf("at the burst: %v, want one series", got)
	}
	for ls, v := range got {
		if v != float64(burst) {
			t.Errorf("at the burst: %s = %v, want %d", ls, v, burst)
		}
		if !strings.Contains(ls, "instance=") {
			t.Errorf("series %s has no instance label for the annotations", ls)
		}
	}
	if got := numericValues(t, alertQuery(t, ds, a, findQuiet(t, byFile, s.m))); len(got) != 0 {
		t.Errorf("without OOM: %v, want no series (Grafana's no data)", got)
	}

	silent := findRule(t, s.p, silentRuleTitle)
	sa := mustQuery(t, silent, "A")
	got = numericValues(t, alertQuery(t, ds, sa, s.m.End.Add(30*time.Minute)))
	if len(got) != 1 {
		t.Fatalf("silence rule after the logs stop: %v, want one series", got)
	}
	for ls, v := range got {
		if v != 0 {
			t.Errorf("silence rule after the logs stop: %s = %v, want 0", ls, v)
		}
	}
}

func TestDashboardThroughPlugin(t *testing.T) {
	s, ds := pluginOnSample(t)
	panels, vars := cosyvoiceDashboard(t, s.p)
	from, to := s.window()
	vals := map[string]string{"instance": vars["instance"].AllValue, "search": ""}
	wantType := map[string]data.FrameType{
		"logs":       data.FrameTypeLogLines,
		"timeseries": data.FrameTypeTimeSeriesMulti,
		"stat":       data.FrameTypeNumericMulti,
		"bargauge":   data.FrameTypeNumericMulti,
	}
	for _, pn := range panels {
		for _, q := range pn.Targets {
			// The saved target, with the variables the frontend replaces.
			var model map[string]any
			raw, err := json.Marshal(q)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &model); err != nil {
				t.Fatal(err)
			}
			model["expr"] = substituteVars(q.Expr, vals)
			b, err := json.Marshal(model)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{
				Queries: []backend.DataQuery{{RefID: q.RefID, JSON: b, TimeRange: backend.TimeRange{From: from, To: to}, Interval: time.Minute, MaxDataPoints: 1000}},
			})
			if err != nil {
				t.Fatalf("panel %q: QueryData: %v", pn.Title, err)
			}
			r := resp.Responses[q.RefID]
			if r.Error != nil {
				t.Errorf("panel %q query %s: %v", pn.Title, q.RefID, r.Error)
				continue
			}
			rows := 0
			for _, f := range r.Frames {
				if f.Meta == nil || f.Meta.Type != wantType[pn.Type] {
					t.Errorf("panel %q (%s): frame type %v, want %s", pn.Title, pn.Type, f.Meta, wantType[pn.Type])
					break
				}
				if n, err := f.RowLen(); err == nil {
					rows += n
				}
			}
			if rows == 0 {
				t.Errorf("panel %q query %s: no rows", pn.Title, q.RefID)
			}
		}
	}
}
