package plugin

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// FuzzParseQuery: any query JSON from Grafana gives a query or an error,
// never a panic, and an accepted query is usable by the engine.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		`{"expr":"{job=\"a\"}"}`,
		`{"expr":"rate({a=\"b\"}[$__auto])","step":"$__interval","resolution":3}`,
		`{"expr":"x","maxLines":"12","direction":"forward","queryType":"stream"}`,
		`{"expr":"x","maxLines":1.5}`,
		`{"expr":"x","step":"1e400"}`,
		`{"expr":"x","step":"-1d"}`,
		`{"expr":"$__range_ms$__range_s$__interval_ms${__auto}","queryType":"instant"}`,
		`[]`, `null`, `{"expr":1}`,
	} {
		f.Add(s, int64(time.Minute), int64(time.Hour))
	}
	from := time.Date(2024, 12, 17, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, js string, interval, rng int64) {
		q := backend.DataQuery{RefID: "A", JSON: json.RawMessage(js), Interval: time.Duration(interval),
			TimeRange: backend.TimeRange{From: from, To: from.Add(time.Duration(rng))}}
		lq, err := parseQuery(q)
		if err != nil {
			return
		}
		if lq.Step <= 0 {
			t.Errorf("accepted query has step %v", lq.Step)
		}
		if lq.Limit <= 0 || lq.Limit > maxLinesLimit {
			t.Errorf("accepted query has limit %d", lq.Limit)
		}
		if strings.Contains(lq.Expr, "$__interval") || strings.Contains(lq.Expr, "$__range") || strings.Contains(lq.Expr, "$__auto") {
			t.Errorf("variables left in %q", lq.Expr)
		}
	})
}
