package syntax

import (
	"reflect"
	"testing"
)

func TestSelectors(t *testing.T) {
	for _, tt := range []struct {
		query string
		want  []string // each selector printed back
	}{
		{`{job="a"}`, []string{`{job="a"}`}},
		{`{job="a"} |= "x" | logfmt`, []string{`{job="a"}`}},
		{`sum by (level) (rate({job="a", level=~"e.*"}[5m]))`, []string{`{job="a", level=~"e.*"}`}},
		{`count_over_time({a="1"}[1m]) / on () count_over_time({b="2"}[1m])`, []string{`{a="1"}`, `{b="2"}`}},
		{`vector(1)`, nil},
	} {
		expr, err := ParseExpr(tt.query)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		var got []string
		for _, ms := range Selectors(expr) {
			got = append(got, (&MatcherExpr{Mts: ms}).String())
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: selectors %q, want %q", tt.query, got, tt.want)
		}
	}
}
