package syntax

import (
	"testing"
	"time"
)

func TestExpandGrafanaVariables(t *testing.T) {
	v := GrafanaVars{Interval: 90 * time.Second, Range: 6*time.Hour + 400*time.Millisecond, Auto: 5 * time.Minute}
	tests := []struct {
		q    string
		v    GrafanaVars
		want string
	}{
		{`rate({a="b"}[$__interval])`, v, `rate({a="b"}[1m30s])`},
		{`rate({a="b"}[${__interval}])`, v, `rate({a="b"}[1m30s])`},
		{`sum(count_over_time({a="b"}[$__interval])) / $__interval_ms`, v, `sum(count_over_time({a="b"}[1m30s])) / 90000`},
		{`count_over_time({a="b"}[$__range])`, v, `count_over_time({a="b"}[21600s])`},
		{`x / $__range_s + $__range_ms`, v, `x / 21600 + 21600400`},
		{`${__range_s}${__range_ms}`, v, `2160021600400`},
		{`rate({a="b"}[$__auto])`, v, `rate({a="b"}[5m])`},
		{`rate({a="b"}[$__auto])`, GrafanaVars{Interval: 2 * time.Second}, `rate({a="b"}[2s])`},
		{`rate({a="b"}[$__interval]) / $__interval_ms`, GrafanaVars{}, `rate({a="b"}[1ms]) / 0`},
		{`rate({a="b"}[$__interval])`, GrafanaVars{Interval: 1500 * time.Microsecond}, `rate({a="b"}[1ms])`},
		{`count_over_time({a="b"}[$__range])`, GrafanaVars{Range: 1499 * time.Millisecond}, `count_over_time({a="b"}[1s])`},
		{`{a="$__interval_ms"} |= "$other" |= "$__intervalx"`, v, `{a="90000"} |= "$other" |= "1m30sx"`},
		{`{a="b"} |= "$"`, v, `{a="b"} |= "$"`},
		{`no variables`, v, `no variables`},
	}
	for _, tt := range tests {
		if got := ExpandGrafanaVariables(tt.q, tt.v); got != tt.want {
			t.Errorf("ExpandGrafanaVariables(%q) = %q, want %q", tt.q, got, tt.want)
		}
	}
	// The expanded ranges must parse.
	for _, q := range []string{`rate({a="b"}[$__interval])`, `rate({a="b"}[$__auto] offset $__range)`} {
		if _, err := ParseExpr(ExpandGrafanaVariables(q, v)); err != nil {
			t.Errorf("%q does not parse after expansion: %v", q, err)
		}
	}
}
