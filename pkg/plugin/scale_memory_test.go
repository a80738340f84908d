//go:build linux

package plugin_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestPluginQueryMemory is issue 12's "bounded memory, whatever the query"
// through the plugin: each query, over the whole store (7 days of a
// loggen corpus), runs in a plugin process of its own, whose peak RSS
// (VmHWM) must stay under 100 MB; a query that would need more must be
// refused by the engine's memory budget. Opt-in like the other scale
// tests (LOKAL_SCALE_CORPUS, LOKAL_SCALE_DATA).
func TestPluginQueryMemory(t *testing.T) {
	s := newScaleSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	h := s.caughtUpStore(ctx, t)
	const sel = `{job="cosyvoice3"}`
	tests := []struct {
		name, expr, queryType, step string
	}{
		{"quantile 7d by instance", `quantile_over_time(0.99, ` + sel + ` |= "tts done" | logfmt text_len | unwrap text_len [7d]) by (instance)`, "range", "1h"},
		{"max quantile 7d", `max(quantile_over_time(0.99, ` + sel + ` |= "tts done" | logfmt text_len | unwrap text_len [7d]))`, "instant", ""},
		{"error count 7d", `sum(count_over_time(` + sel + ` |= "error" [7d]))`, "instant", ""},
		{"limit 5000", sel, "range", ""},
		{"logfmt duration", sel + ` |= "duration=" | logfmt | duration > 10s`, "range", ""},
		{"topk over three labels", `topk(10, sum by (instance, filename, level) (rate(` + sel + `[5m])))`, "range", "5m"},
	}
	to := h.Store.To.Add(time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := s.start(t)
			defer p.client.Kill()
			m := map[string]any{"expr": tt.expr, "queryType": tt.queryType, "maxLines": 5000}
			from := to.Add(-8 * 24 * time.Hour)
			if tt.step != "" {
				m["step"] = tt.step
			}
			if tt.queryType == "instant" {
				m["instant"] = true
				from = to.Add(-time.Minute)
			}
			model, _ := json.Marshal(m)
			el, _, rows, err := s.query(ctx, p, string(model), from, to, time.Hour)
			peak := float64(procStatusKB(t, p.pid, "VmHWM")) / 1024
			t.Logf("%d rows in %s, plugin peak RSS %.0f MB, err %v", rows, el.Round(time.Millisecond), peak, err)
			if err != nil && !strings.Contains(err.Error(), "memory budget") {
				t.Errorf("query failed, and not on the memory budget: %v", err)
			}
			if peak >= 100 {
				t.Errorf("plugin peak RSS %.0f MB, want < 100 MB for any single query (or a refusal before it)", peak)
			}
		})
	}
}
