package syntax

import (
	"strings"
	"testing"
)

// prettyQueries exercise every layout rule of Prettify; the golden file
// holds their output.
var prettyQueries = []struct{ name, query string }{
	{"short selector stays whole", `{app="api"}`},
	{"short pipeline stays whole", `{app="api"} |= "error" | json | level="error"`},
	{"short metric stays whole", `sum by (level) (rate({app="api"}[5m]))`},
	{"long pipeline", `{job="loki", namespace="loki-prod", container="nginx-ingress"} |= "error" != "timeout" | json | duration > 10s | line_format "{{.status}} {{.path}}"`},
	{"long range aggregation", `count_over_time({job="loki", namespace="loki-prod", container="nginx-ingress"} |= "error" != "timeout" | logfmt [5m] offset 1h)`},
	{"unwrap", `quantile_over_time(0.99, {job="loki", namespace="loki-prod", container="nginx-ingress"} | logfmt | unwrap duration(latency) | __error__="" [5m]) by (path)`},
	{"vector aggregation", `sum by (namespace, container) (rate({job="loki", namespace="loki-prod", container="nginx-ingress"} |= "error" [5m]))`},
	{"topk", `topk(10, sum by (path) (rate({job="loki", namespace="loki-prod", container="nginx-ingress"} | json | status >= 500 [1m])))`},
	{"binary operation", `sum by (job) (rate({job="loki", namespace="loki-prod"} |= "error" [5m])) / sum by (job) (rate({job="loki", namespace="loki-prod"}[5m]))`},
	{"binary modifiers", `sum by (job, instance) (count_over_time({job="loki", namespace="loki-prod"} |= "error" [5m])) > bool on (job) group_left (instance) sum by (job) (count_over_time({job="loki", namespace="loki-prod"}[5m]))`},
	{"parenthesised operand", `(sum(rate({job="loki", namespace="loki-prod", container="nginx-ingress"}[5m])) + sum(rate({job="loki", namespace="loki-prod", container="other"}[5m]))) * 100`},
	{"label_replace", `label_replace(sum by (container) (rate({job="loki", namespace="loki-prod", container="nginx-ingress"}[5m])), "c", "$1", "container", "(.*)-ingress")`},
}

// TestPrettifyGolden pins Prettify's layout.
func TestPrettifyGolden(t *testing.T) {
	var b strings.Builder
	for _, tt := range prettyQueries {
		e, err := ParseExpr(tt.query)
		if err != nil {
			t.Fatalf("%s: parse %q: %v", tt.name, tt.query, err)
		}
		b.WriteString("# " + tt.name + "\n" + tt.query + "\n=>\n" + Prettify(e) + "\n\n")
	}
	golden(t, "pretty.golden", b.String())
}

// TestPrettifyRoundTrip: Prettify's output parses back to the same tree,
// and its lines stay within PrettyLineWidth unless one node is wider.
func TestPrettifyRoundTrip(t *testing.T) {
	all := append([]string{}, queries...)
	for _, tt := range prettyQueries {
		all = append(all, tt.query)
	}
	for _, q := range all {
		t.Run(q, func(t *testing.T) {
			e, err := ParseExpr(q)
			if err != nil {
				t.Fatal(err)
			}
			pretty, canonical := Prettify(e), e.String()
			if fits(canonical, 0) && pretty != canonical {
				t.Errorf("a query that fits was split:\n%s", pretty)
			}
			back, err := ParseExpr(pretty)
			if err != nil {
				t.Fatalf("parse pretty form %q: %v", pretty, err)
			}
			// equalTrees rewrites NaN literals: compare last.
			if !equalTrees(e, back) {
				t.Errorf("pretty form %q parses to %s, want %s", pretty, back, canonical)
			}
		})
	}
}
