package syntax

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// GrafanaVars are the values of Grafana's time variables for one query.
type GrafanaVars struct {
	// Interval is $__interval: Grafana's suggested interval for the panel.
	Interval time.Duration
	// Range is the query's time range: $__range, $__range_s, $__range_ms.
	Range time.Duration
	// Auto is $__auto. Grafana's Loki datasource makes it the step for a
	// range query and the whole range for an instant query; the caller
	// knows which. Zero means Interval.
	Auto time.Duration
}

// minGrafanaInterval is the smallest interval Grafana hands out; a zero
// interval would make `[$__interval]` an invalid range.
const minGrafanaInterval = time.Millisecond

// ExpandGrafanaVariables replaces Grafana's time variables in a query, in
// both the `$__name` and `${__name}` forms, as Grafana's Loki datasource
// does: $__interval and $__auto as LogQL durations (`5m`, `1m30s`),
// $__interval_ms in milliseconds, $__range as whole seconds with an `s`
// (`3600s`), $__range_s in seconds and $__range_ms in milliseconds.
// Seconds are rounded to the nearest second. Other text, including unknown
// variables, is left alone. Unlike Grafana, which prints $__interval in its
// largest whole unit (90s becomes 1m), durations are printed exactly, and
// ${__auto} is accepted too.
func ExpandGrafanaVariables(q string, v GrafanaVars) string {
	if !strings.Contains(q, "$") {
		return q
	}
	interval := max(v.Interval, minGrafanaInterval)
	auto := v.Auto
	if auto <= 0 {
		auto = interval
	}
	auto = max(auto, minGrafanaInterval)
	rangeS := strconv.FormatInt(int64(math.Round(v.Range.Seconds())), 10)
	vals := []struct{ name, val string }{
		// Longer names first: a Replacer tries its pairs in order at each
		// position, and $__interval is a prefix of $__interval_ms.
		{"__interval_ms", strconv.FormatInt(v.Interval.Milliseconds(), 10)},
		{"__interval", FormatDuration(interval.Truncate(time.Millisecond))},
		{"__range_ms", strconv.FormatInt(v.Range.Milliseconds(), 10)},
		{"__range_s", rangeS},
		{"__range", rangeS + "s"},
		{"__auto", FormatDuration(auto.Truncate(time.Millisecond))},
	}
	pairs := make([]string, 0, 4*len(vals))
	for _, x := range vals {
		pairs = append(pairs, "${"+x.name+"}", x.val, "$"+x.name, x.val)
	}
	return strings.NewReplacer(pairs...).Replace(q)
}
