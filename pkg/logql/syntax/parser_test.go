package syntax

import (
	"errors"
	"flag"
	"github.com/lokal-logs/lokal/pkg/internal/testshared"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lokal-logs/lokal/pkg/labels"
)

var update = flag.Bool("update", false, "rewrite golden files")

// queries covers every construct of the language; each must parse, print
// canonically and re-parse to an equal tree.
var queries = []string{
	// selectors
	`{app="api"}`,
	`{app="api", env!="dev", pod=~"api-.+", zone!~"us-.*"}`,
	`{ app = "api" , }`,
	"{app=`raw\\str`}",
	`{app="quote\"d", nl="a\nb", uni="日本"}`,
	`({app="api"})`,
	`{app="api"} # a comment`,
	"{app=\"api\"}\n|= \"x\" # trailing\n| json",
	`{json="x", by="y", offset="z"}`,
	`{app!=""}`,
	`{app!~".*"}`,
	`{app="api"} | JSON | LOGFMT --STRICT | Level="x" AND b="y" OR c="z"`,
	`Max_Over_Time({app="api"} | Unwrap Bytes(x) [5m]) BY (a)`,
	// line filters
	`{app="api"} |= "error"`,
	`{app="api"} != "debug" |~ "time(out)?" !~ "(?i)health" |> "<_> GET <_>" !> "<_>/metrics<_>"`,
	`{app="api"} |= "a" or "b" or "c"`,
	`{app="api"} != "a" or "b"`,
	`{app="api"} |= ip("10.0.0.0/8")`,
	`{app="api"} != ip("192.168.0.1-192.168.0.255")`,
	`{app="api"} |= ip("::1") or ip("127.0.0.1")`,
	"{app=\"api\"} |~ `\\d+ms`",
	`{app="api"} |= ""`,
	// parsers
	`{app="api"} | json`,
	`{app="api"} | json first="servers[0]", ua="request.headers[\"User-Agent\"]", status`,
	`{app="api"} | logfmt`,
	`{app="api"} | logfmt --strict`,
	`{app="api"} | logfmt --keep-empty --strict`,
	`{app="api"} | logfmt --strict host, dur="duration"`,
	`{app="api"} | logfmt level`,
	`{app="api"} | regexp "(?P<method>\\w+) (?P<path>\\S+)"`,
	`{app="api"} | pattern "<ip> - - <_> \"<method> <uri> <_>\" <status> <size>"`,
	`{app="api"} | unpack`,
	// label filters
	`{app="api"} | json | status == 200`,
	`{app="api"} | json | status = 200`,
	`{app="api"} | json | status != 500 and status >= 200 and status < 300`,
	`{app="api"} | json | latency > 250ms or latency <= 1.5s`,
	`{app="api"} | json | latency > 1h30m`,
	`{app="api"} | json | latency > -1m`,
	`{app="api"} | json | a="1", b="2" or c="3", d="4" and e="5"`,
	`{app="api"} | json | a="1" b="2" or c="3"`,
	`{app="api"} | json | (a="1", b="2") or c="3"`,
	`{app="api"} | json | size > 20MB and size < 1.5KiB, size >= 42B`,
	`{app="api"} | json | size > 1GiB`,
	`{app="api"} | json | level="error" or level=~"warn.*" and msg!~"ignore.*"`,
	`{app="api"} | json | (level="error" or level="warn") and duration > 10s`,
	`{app="api"} | json | level="error" or (level="warn" or level="info")`,
	`{app="api"} | json | level="error" and (a="1" and b="2")`,
	`{app="api"} | json | level="error" status="500"`,
	`{app="api"} | json | level="error" | status="500"`,
	`{app="api"} | json | a="1" offset="2" ip="3"`,
	`{app="api"} | json | addr = ip("10.0.0.0/8")`,
	`{app="api"} | json | addr != ip("10.0.0.1")`,
	`{app="api"} | json | temp > -5.5`,
	`{app="api"} | json | ratio < 1e-3`,
	`{app="api"} | json | big > 2.5e+06`,
	`{app="api"} | __error__=""`,
	`{app="api"} | json | level == "error"`,
	// formatting and label stages
	`{app="api"} | line_format "{{.status}} {{.msg | upper}}"`,
	"{app=\"api\"} | line_format `{{ __line__ }}`",
	`{app="api"} | label_format dst=src`,
	`{app="api"} | label_format a=b, c="{{.d}}-{{.e}}"`,
	`{app="api"} | drop a, b, c`,
	`{app="api"} | drop level="debug", pod=~"x.*", d`,
	`{app="api"} | keep level, app`,
	`{app="api"} | keep level!="info"`,
	`{app="api"} | decolorize`,
	`{app="api"} |= "x" | json | line_format "{{.a}}" |= "y" | label_format b=a | decolorize | drop a | keep b`,
	// range aggregations
	`count_over_time({app="api"}[5m])`,
	`rate({app="api"} |= "error" [1m])`,
	`bytes_over_time({app="api"}[1h])`,
	`bytes_rate({app="api"}[30s])`,
	`absent_over_time({app="api"}[10m])`,
	`count_over_time({app="api"}[5m] offset 1h)`,
	`count_over_time({app="api"}[5m] offset -1h30m)`,
	`count_over_time(({app="api"} | json [5m]))`,
	`count_over_time((({app="api"} | json)[5m] offset 1m))`,
	`count_over_time(({app="api"} | json | (a="1" or b="2") [5m]))`,
	`max_over_time(({app="api"} | unwrap v)[5m])`,
	`max_over_time({app="api"}[5m] | unwrap v | v > 1)`,
	`count_over_time({app="api"} | json [1d])`,
	`count_over_time({app="api"}[5m] | json | level="error")`,
	`count_over_time({app="api"}[5m] |= "x")`,
	`count_over_time(({app="api"} |= "x")[5m])`,
	`count_over_time({app="api"}[1w])`,
	`count_over_time({app="api"}[1y])`,
	`count_over_time({app="api"}[90s])`,
	`count_over_time({app="api"}[1500ms])`,
	`count_over_time({app="api"}[1.5h])`,
	`sum_over_time({app="api"} | json | unwrap bytes [5m])`,
	`sum_over_time({app="api"} | json | unwrap bytes(size) [5m])`,
	`avg_over_time({app="api"} | logfmt | unwrap duration(latency) [5m]) by (host)`,
	`max_over_time({app="api"} | logfmt | unwrap duration_seconds(latency) | __error__="" [5m]) without (pod)`,
	`min_over_time({app="api"} | logfmt | unwrap latency | __error__="" | latency > 0 [5m] offset 10m) by ()`,
	`first_over_time({app="api"} | json | unwrap v [5m]) by (a, b)`,
	`last_over_time({app="api"} | json | unwrap v [5m])`,
	`stddev_over_time({app="api"} | json | unwrap v [5m])`,
	`stdvar_over_time({app="api"} | json | unwrap v [5m])`,
	`quantile_over_time(0.99, {app="api"} | json | unwrap latency [5m]) by (route)`,
	`rate({app="api"} | json | unwrap bytes_sent [1m])`,
	`rate_counter({app="api"} | json | unwrap total [1m])`,
	`absent_over_time({app="api"} | json | unwrap v [5m])`,
	`sum_over_time({app="api"}[5m] | json | unwrap v)`,
	// vector aggregations
	`sum(count_over_time({app="api"}[5m]))`,
	`sum by (level) (count_over_time({app="api"}[5m]))`,
	`sum(count_over_time({app="api"}[5m])) by (level)`,
	`avg without (pod, level) (rate({app="api"}[5m]))`,
	`min(rate({app="api"}[5m]))`,
	`max(rate({app="api"}[5m]))`,
	`count(rate({app="api"}[5m]))`,
	`stddev(rate({app="api"}[5m]))`,
	`stdvar(rate({app="api"}[5m]))`,
	`topk(3, sum by (route) (rate({app="api"}[5m])))`,
	`bottomk by (host) (1, rate({app="api"}[5m]))`,
	`topk(5, rate({app="api"}[5m])) by (host)`,
	`sort(sum by (a) (rate({app="api"}[5m])))`,
	`sort_desc(sum by (a) (rate({app="api"}[5m])))`,
	`sum by () (rate({app="api"}[5m]))`,
	`sum by (a,) (rate({app="api"}[5m]))`,
	`sum(sum by (a) (rate({app="api"}[5m])))`,
	// binary operators
	`sum(rate({app="api"}[5m])) * 100`,
	`sum(rate({app="api"} |= "error" [5m])) / sum(rate({app="api"}[5m]))`,
	`1 + 2 * 3`,
	`(1 + 2) * 3`,
	`2 ^ 3 ^ 2`,
	`(2 ^ 3) ^ 2`,
	`1 - 2 - 3`,
	`1 - (2 - 3)`,
	`-1 + +2`,
	`2 * -3`,
	`10 % 3`,
	`1 > bool 2`,
	`1 > 2`,
	`1 / 0`,
	`0 / 0 + 1`,
	`1 % 0 * -1`,
	`NaN`,
	`-Inf`,
	`sum(rate({a="b"}[1m])) + bool 1`,
	`sum(rate({a="b"}[1m])) or on (a) group_left sum(rate({a="b"}[1m]))`,
	`1 == bool 1`,
	`sum(rate({a="b"}[1m])) > 10`,
	`sum(rate({a="b"}[1m])) >= bool 10`,
	`sum(rate({a="b"}[1m])) < 10 and sum(rate({a="b"}[1m])) > 1`,
	`sum(rate({a="b"}[1m])) or vector(0)`,
	`sum(rate({a="b"}[1m])) unless sum(rate({c="d"}[1m]))`,
	`sum by (a) (rate({a="b"}[1m])) / on (a) sum by (a) (rate({c="d"}[1m]))`,
	`sum by (a, b) (rate({a="b"}[1m])) / on (a) group_left sum by (a) (rate({c="d"}[1m]))`,
	`sum by (a) (rate({a="b"}[1m])) * on (a) group_right (b, c) sum by (a, b) (rate({c="d"}[1m]))`,
	`sum by (a) (rate({a="b"}[1m])) + ignoring (b) sum by (a) (rate({c="d"}[1m]))`,
	`sum by (a, b) (rate({a="b"}[1m])) / on (a) group_left (sum by (a) (rate({c="d"}[1m])))`,
	`sum by (a, b) (rate({a="b"}[1m])) / on (a) group_left () (sum by (a) (rate({c="d"}[1m])))`,
	`sum by (a, b) (rate({a="b"}[1m])) / on (a) group_right (vector(1))`,
	`sum by (a) (rate({a="b"}[1m])) + ignoring () sum by (a) (rate({c="d"}[1m]))`,
	`sum by (a) (rate({a="b"}[1m])) == bool on (a) sum by (a) (rate({c="d"}[1m]))`,
	`sum(rate({a="b"}[1m])) or sum(rate({c="d"}[1m])) and sum(rate({e="f"}[1m]))`,
	`(sum(rate({a="b"}[1m])) or sum(rate({c="d"}[1m]))) and sum(rate({e="f"}[1m]))`,
	`1 + sum(rate({a="b"}[1m])) * 2 > 3 and sum(rate({a="b"}[1m])) or vector(1)`,
	`((sum(rate({a="b"}[1m]))))`,
	// functions
	`vector(0)`,
	`vector(-1.5)`,
	`label_replace(rate({a="b"}[1m]), "dst", "$1", "src", "(.*)")`,
	`label_replace(sum by (instance) (rate({job="x"}[5m])), "host", "$1", "instance", "(.*):.*")`,
	`label_replace(rate({a="b"}[1m]), "dst", "v", "", "")`,
	`sum(count_over_time({a="b"}[1m])) + vector(1)`,
	// shapes from Loki's documentation
	`{container="query-frontend",namespace="loki-dev"} |= "metrics.go" | logfmt | duration > 10s and throughput_mb < 500`,
	`{job="mysql"} |= "error" != "timeout"`,
	`{name="kafka"} |~ "tsdb-ops.*io:2003"`,
	`{cluster="ops-tools1", name="querier"} |= "metrics.go" |~ "(?i)peaceful"`,
	`{app="foo"} |= "bar" or "baz"`,
	`{job="nginx"} |= ip("192.168.4.5/16")`,
	`{app="foo"} | json first_server="servers[0]", ua="request.headers[\"User-Agent\"]"`,
	"{job=\"nginx\"} | pattern `<_> - - <_> \"<method> <url> <protocol>\" <status> <_> <_> \"<_>\" <_>`",
	`{app="foo"} | logfmt | duration >= 20ms or method="GET" and size <= 20KB`,
	`{app="foo"} | drop __error__, __error_details__`,
	`{app="foo"} | json | label_format foo=bar, bar="{{.baz}}"`,
	`{job="loki"} | json | line_format "{{.log}}" | logfmt`,
	`quantile_over_time(0.99, {cluster="ops-tools1",container="ingress-nginx"} | json | __error__ = "" | unwrap request_time [1m]) by (path)`,
	`sum by (org_id) (sum_over_time({cluster="ops-tools1",container="loki-dev"} |= "metrics.go" | logfmt | unwrap bytes_processed [1m]))`,
	`sum by (host) (rate({job="mysql"} |= "error" != "timeout" | json | duration > 10s [1m]))`,
	`topk(10,sum(rate({region="us-east1"}[5m])) by (name))`,
	`sum(rate({app="foo", level="warn"}[1m])) / sum(rate({app="foo", level="error"}[1m]))`,
	`sum(count_over_time({foo="bar"}[1m])) by (bar) > 3 and on(bar) group_left(foo) sum(count_over_time({foo="bar"}[1m])) by (bar, foo)`,
	`label_replace(rate({job="api-server",service="a:c"} |= "err" [1m]), "foo", "$1", "service", "(.*):.*")`,
	// numbers
	`0.5`,
	`1e3`,
	`.5 * 2`,
}

func TestRoundTrip(t *testing.T) {
	checkRoundTrip(t, queries)
}

// TestRoundTripConformance round-trips every query Loki accepted in the
// shared conformance sample.
func TestRoundTripConformance(t *testing.T) {
	qs := conformanceQueries(t, false)
	if len(qs) == 0 {
		t.Skip("no Loki conformance sample at ../shared/loki-conformance (relative to the repository root)")
	}
	checkRoundTrip(t, qs)
}

func checkRoundTrip(t *testing.T, qs []string) {
	t.Helper()
	for _, q := range qs {
		e1, err := ParseExpr(q)
		if err != nil {
			t.Errorf("parse %q: %v", q, err)
			continue
		}
		s1 := e1.String()
		e2, err := ParseExpr(s1)
		if err != nil {
			t.Errorf("re-parse of %q printed as %q: %v", q, s1, err)
			continue
		}
		if s2 := e2.String(); s2 != s1 {
			t.Errorf("print not stable for %q:\n first %s\nsecond %s", q, s1, s2)
		}
		if !equalTrees(e1, e2) {
			t.Errorf("tree changed in round trip of %q (printed %q)", q, s1)
		}
	}
}

// equalTrees is reflect.DeepEqual with NaN literals equal to each other.
func equalTrees(a, b Expr) bool {
	for _, e := range []Expr{a, b} {
		Walk(e, func(n Expr) bool {
			switch x := n.(type) {
			case *LiteralExpr:
				if math.IsNaN(x.Val) {
					x.Val = math.MaxFloat64
				}
			case *VectorExpr:
				if math.IsNaN(x.Val) {
					x.Val = math.MaxFloat64
				}
			}
			return true
		})
	}
	return reflect.DeepEqual(a, b)
}

// TestCanonicalGolden pins the printer's output for the whole table.
func TestCanonicalGolden(t *testing.T) {
	var b strings.Builder
	for _, q := range queries {
		e, err := ParseExpr(q)
		if err != nil {
			t.Fatalf("parse %q: %v", q, err)
		}
		b.WriteString(q)
		b.WriteString("\n=> ")
		b.WriteString(e.String())
		b.WriteString("\n\n")
	}
	golden(t, "canonical.golden", b.String())
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the printer's output; run go test -update and review the diff", path)
	}
}

// conformanceQueries returns the queries of the Loki conformance sample
// that Loki accepted (or, with rejected, those it rejected at parse time).
func conformanceQueries(t *testing.T, rejected bool) []string {
	t.Helper()
	b, err := os.ReadFile(testshared.Path(t, "loki-conformance/queries.tsv"))
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Split(line, "\t")
		if len(f) < 10 {
			continue
		}
		// Row 132 is rejected for its limit, not its syntax.
		isParseErr := f[8] == "400" && !strings.Contains(f[12], "limit")
		if isParseErr == rejected {
			out = append(out, f[2])
		}
	}
	return out
}

// TestConformanceRejections checks that queries Loki rejected at parse time
// are rejected with Loki's message.
func TestConformanceRejections(t *testing.T) {
	qs := conformanceQueries(t, true)
	if len(qs) == 0 {
		t.Skip("no Loki conformance sample at ../shared/loki-conformance (relative to the repository root)")
	}
	b, _ := os.ReadFile(testshared.Path(t, "loki-conformance/queries.tsv"))
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Split(line, "\t")
		if len(f) < 10 || f[8] != "400" || strings.Contains(f[12], "limit") {
			continue
		}
		ans, err := os.ReadFile(filepath.Join(testshared.Path(t, "loki-conformance/answers"), f[0]+".json"))
		if err != nil {
			t.Fatal(err)
		}
		_, perr := ParseExpr(f[2])
		if perr == nil {
			t.Errorf("%s: %q parsed, Loki rejected it", f[0], f[2])
			continue
		}
		// The answer holds the message JSON-escaped; compare unescaped.
		want := strings.ReplaceAll(string(ans), `\"`, `"`)
		if !strings.Contains(want, perr.Error()) {
			t.Errorf("%s: got %q, Loki said %s", f[0], perr.Error(), ans)
		}
	}
}

func mustMatcher(t labels.MatchType, n, v string) *labels.Matcher {
	return labels.MustNewMatcher(t, n, v)
}

func ptr[T any](v T) *T { return &v }

func TestParseTree(t *testing.T) {
	sel := &MatcherExpr{Mts: []*labels.Matcher{mustMatcher(labels.MatchEqual, "a", "b")}}
	rate := func() *RangeAggregationExpr {
		return &RangeAggregationExpr{Operation: OpRangeTypeRate, Left: &LogRangeExpr{Left: sel, Interval: time.Minute}}
	}
	tests := []struct {
		q    string
		want Expr
	}{
		{`{a="b"}`, sel},
		{`{a="b"} |= "x" or ip("1.2.3.4")`, &PipelineExpr{Left: sel, Stages: []StageExpr{
			&LineFilterExpr{Op: LineContains, Value: "x", Or: []*LineFilterExpr{{Op: LineContains, Value: "1.2.3.4", IP: true}}},
		}}},
		{`{a="b"} | x="1" or y > 2 and z < 3s, w >= 4KB`, &PipelineExpr{Left: sel, Stages: []StageExpr{
			&LabelFilterExpr{Filter: &BinaryLabelFilter{
				Left: &StringLabelFilter{Matcher: mustMatcher(labels.MatchEqual, "x", "1")},
				// Loki's grammar: the comma joins z with everything after it.
				Right: &BinaryLabelFilter{And: true,
					Left: &NumericLabelFilter{Name: "y", Op: CmpGt, Value: 2},
					Right: &BinaryLabelFilter{And: true,
						Left:  &DurationLabelFilter{Name: "z", Op: CmpLt, Value: 3 * time.Second},
						Right: &BytesLabelFilter{Name: "w", Op: CmpGte, Value: 4000}}},
			}},
		}}},
		{`{a="b"} | x="1", y="2" or z="3"`, &PipelineExpr{Left: sel, Stages: []StageExpr{
			&LabelFilterExpr{Filter: &BinaryLabelFilter{And: true,
				Left: &StringLabelFilter{Matcher: mustMatcher(labels.MatchEqual, "x", "1")},
				Right: &BinaryLabelFilter{
					Left:  &StringLabelFilter{Matcher: mustMatcher(labels.MatchEqual, "y", "2")},
					Right: &StringLabelFilter{Matcher: mustMatcher(labels.MatchEqual, "z", "3")}}}},
		}}},
		{`{a="b"} | x="1" y="2" or z="3"`, &PipelineExpr{Left: sel, Stages: []StageExpr{
			&LabelFilterExpr{Filter: &BinaryLabelFilter{And: true,
				Left: &StringLabelFilter{Matcher: mustMatcher(labels.MatchEqual, "x", "1")},
				Right: &BinaryLabelFilter{
					Left:  &StringLabelFilter{Matcher: mustMatcher(labels.MatchEqual, "y", "2")},
					Right: &StringLabelFilter{Matcher: mustMatcher(labels.MatchEqual, "z", "3")}}}},
		}}},
		{`{a="b"} | x="1" and y="2" or z="3"`, &PipelineExpr{Left: sel, Stages: []StageExpr{
			&LabelFilterExpr{Filter: &BinaryLabelFilter{
				Left: &BinaryLabelFilter{And: true,
					Left:  &StringLabelFilter{Matcher: mustMatcher(labels.MatchEqual, "x", "1")},
					Right: &StringLabelFilter{Matcher: mustMatcher(labels.MatchEqual, "y", "2")}},
				Right: &StringLabelFilter{Matcher: mustMatcher(labels.MatchEqual, "z", "3")}}},
		}}},
		{`{a="b"} | d > -5s`, &PipelineExpr{Left: sel, Stages: []StageExpr{
			&LabelFilterExpr{Filter: &DurationLabelFilter{Name: "d", Op: CmpGt, Value: -5 * time.Second}},
		}}},
		{`SUM BY (x) (RATE({a="b"}[1m]))`, &VectorAggregationExpr{Operation: OpTypeSum,
			Grouping: &Grouping{Groups: []string{"x"}}, Left: rate()}},
		{`rate({a="b"}[1m] offset -5m)`, &RangeAggregationExpr{Operation: OpRangeTypeRate,
			Left: &LogRangeExpr{Left: sel, Interval: time.Minute, Offset: -5 * time.Minute}}},
		{`rate((({a="b"})[1m]))`, rate()},
		{`{a="b"} | logfmt --strict x, y="z"`, &PipelineExpr{Left: sel, Stages: []StageExpr{
			&LogfmtExpressionParserExpr{Strict: true, Params: []LabelExtraction{{Name: "x", Expr: "x", Bare: true}, {Name: "y", Expr: "z"}}},
		}}},
		{`{a="b"} | drop x, y="1"`, &PipelineExpr{Left: sel, Stages: []StageExpr{
			&DropLabelsExpr{Labels: []LabelRef{{Name: "x"}, {Name: "y", Matcher: mustMatcher(labels.MatchEqual, "y", "1")}}},
		}}},
		{`quantile_over_time(0.9, {a="b"} | unwrap duration(d) | __error__="" [1m] offset 5m) by (x)`, &RangeAggregationExpr{
			Operation: OpRangeTypeQuantile, Params: ptr(0.9), Grouping: &Grouping{Groups: []string{"x"}},
			Left: &LogRangeExpr{Left: sel, Interval: time.Minute, Offset: 5 * time.Minute, Unwrap: &UnwrapExpr{
				Identifier: "d", Operation: UnwrapDuration,
				PostFilters: []*LabelFilterExpr{{Filter: &StringLabelFilter{Matcher: mustMatcher(labels.MatchEqual, "__error__", "")}}},
			}},
		}},
		{`rate({a="b"}[1m] |= "x")`, &RangeAggregationExpr{Operation: OpRangeTypeRate, Left: &LogRangeExpr{
			Left: &PipelineExpr{Left: sel, Stages: []StageExpr{&LineFilterExpr{Op: LineContains, Value: "x"}}}, Interval: time.Minute}}},
		{`topk(2, rate({a="b"}[1m])) by (x)`, &VectorAggregationExpr{Operation: OpTypeTopK, Params: 2,
			Grouping: &Grouping{Groups: []string{"x"}}, Left: rate()}},
		{`sum without () (rate({a="b"}[1m]))`, &VectorAggregationExpr{Operation: OpTypeSum,
			Grouping: &Grouping{Groups: []string{}, Without: true}, Left: rate()}},
		{`rate({a="b"}[1m]) + vector(1) * 2`, &BinOpExpr{Op: OpTypeAdd, LHS: rate(),
			RHS: &BinOpExpr{Op: OpTypeMul, LHS: &VectorExpr{Val: 1}, RHS: &LiteralExpr{Val: 2}}}},
		{`vector(2) ^ vector(3) ^ 2`, &BinOpExpr{Op: OpTypePow, LHS: &VectorExpr{Val: 2},
			RHS: &BinOpExpr{Op: OpTypePow, LHS: &VectorExpr{Val: 3}, RHS: &LiteralExpr{Val: 2}}}},
		{`vector(1) - vector(2) - 3`, &BinOpExpr{Op: OpTypeSub, RHS: &LiteralExpr{Val: 3},
			LHS: &BinOpExpr{Op: OpTypeSub, LHS: &VectorExpr{Val: 1}, RHS: &VectorExpr{Val: 2}}}},
		// Literal operands fold as in Loki.
		{`rate({a="b"}[1m]) + 1 * 2`, &BinOpExpr{Op: OpTypeAdd, LHS: rate(), RHS: &LiteralExpr{Val: 2}}},
		{`2 ^ 3 ^ 2`, &LiteralExpr{Val: 512}},
		{`(2 ^ 3) ^ 2`, &LiteralExpr{Val: 64}},
		{`1 - 2 - 3`, &LiteralExpr{Val: -4}},
		{`1 > 2`, &LiteralExpr{Val: 0}},
		{`2 >= bool 2`, &LiteralExpr{Val: 1}},
		{`-1 ^ 2`, &LiteralExpr{Val: 1}},
		{`rate({a="b"}[1m]) or rate({a="b"}[1m]) and rate({a="b"}[1m])`, &BinOpExpr{Op: OpTypeOr, LHS: rate(),
			RHS: &BinOpExpr{Op: OpTypeAnd, LHS: rate(), RHS: rate()}}},
		{`rate({a="b"}[1m]) > bool on (x) group_left (y) rate({a="b"}[1m])`, &BinOpExpr{Op: OpTypeGT, LHS: rate(), RHS: rate(),
			Opts: &BinOpOptions{ReturnBool: true, VectorMatching: &VectorMatching{On: true, MatchingLabels: []string{"x"}, Card: CardManyToOne, Include: []string{"y"}}}}},
		{`rate({a="b"}[1m]) * on () group_left (rate({a="b"}[1m]))`, &BinOpExpr{Op: OpTypeMul, LHS: rate(), RHS: rate(),
			Opts: &BinOpOptions{VectorMatching: &VectorMatching{On: true, MatchingLabels: []string{}, Card: CardManyToOne}}}},
		{`label_replace(rate({a="b"}[1m]), "d", "$1", "s", "(.*)")`, &LabelReplaceExpr{Left: rate(), Dst: "d", Replacement: "$1", Src: "s", Regex: "(.*)"}},
		{`vector(2)`, &VectorExpr{Val: 2}},
		{`-3`, &LiteralExpr{Val: -3}},
	}
	for _, tt := range tests {
		got, err := ParseExpr(tt.q)
		if err != nil {
			t.Errorf("%q: %v", tt.q, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q:\n got %s\nwant %s", tt.q, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	// span is the text that the error's Range covers: the token at the
	// error's line and column, the node a validation error is about.
	tests := []struct {
		q, want, span string
	}{
		{``, `parse error at line 1, col 1: syntax error: unexpected $end`, ``},
		{`{app=~".*"}`, `parse error : ` + errEmptyCompatible, `{app=~".*"}`},
		{`{app!="x"}`, `parse error : ` + errEmptyCompatible, `{app!="x"}`},
		{`{app=~"x|"}`, `parse error : ` + errEmptyCompatible, `{app=~"x|"}`},
		{`{}`, `parse error : ` + errEmptyCompatible, `{}`},
		{`count_over_time({a=""}[1m])`, `parse error : ` + errEmptyCompatible, `{a=""}`},
		{`sum_over_time({job="x"}[5m])`, `parse error : invalid aggregation sum_over_time without unwrap`, `sum_over_time({job="x"}[5m])`},
		{`count_over_time({job="x"} | unwrap v [5m])`, `parse error : invalid aggregation count_over_time with unwrap`, `count_over_time({job="x"} | unwrap v [5m])`},
		{`bytes_rate({job="x"} | unwrap v [5m])`, `parse error : invalid aggregation bytes_rate with unwrap`, `bytes_rate({job="x"} | unwrap v [5m])`},
		{`count_over_time({job="x"}[5m]) by (a)`, `parse error : grouping not allowed for count_over_time aggregation`, `count_over_time({job="x"}[5m]) by (a)`},
		{`sum_over_time({job="x"} | unwrap v [5m]) by (a)`, `parse error : grouping not allowed for sum_over_time aggregation`, `sum_over_time({job="x"} | unwrap v [5m]) by (a)`},
		{`{app=5}`, `parse error at line 1, col 6: syntax error: unexpected NUMBER, expecting STRING`, `5`},
		{`{app="x"`, `parse error at line 1, col 9: syntax error: unexpected $end, expecting COMMA or CLOSE_BRACE`, ``},
		{`{app="x" |= "y"`, `parse error at line 1, col 10: syntax error: unexpected PIPE_EXACT, expecting COMMA or CLOSE_BRACE`, `|=`},
		{`{app="x"} |= 5`, `parse error at line 1, col 14: syntax error: unexpected NUMBER, expecting STRING or IP`, `5`},
		{"{app=\"x\"}\n  | json |", `parse error at line 2, col 11: syntax error: unexpected $end, expecting a parser, a label filter, line_format, label_format, drop, keep or decolorize`, ``},
		{`{app="x"} | json | status > "x"`, `parse error at line 1, col 29: syntax error: unexpected STRING, expecting NUMBER, DURATION or BYTES`, `"x"`},
		{`{app="x"} | unwrap v`, `parse error at line 1, col 13: syntax error: unexpected UNWRAP: unwrap is only allowed in a range aggregation`, `unwrap`},
		{`{app="x"} |~ "a(b"`, "parse error at line 1, col 14: invalid regular expression \"a(b\" in line filter: missing closing ): `a(b`", `"a(b"`},
		{`{app=~"a(b"}`, "parse error at line 1, col 5: invalid regular expression \"a(b\" for label app: error parsing regexp: missing closing ): `^(?s:a(b)$`", `=~"a(b"`},
		{`{app="x"} | regexp "(\\d+)"`, `parse error at line 1, col 20: at least one named capture must be supplied`, `"(\\d+)"`},
		{`{app="x"} | pattern "<_> foo"`, `parse error at line 1, col 21: invalid pattern "<_> foo": at least one capture is required`, `"<_> foo"`},
		{`{app="x"} | pattern "<a><b>"`, `parse error at line 1, col 21: invalid pattern "<a><b>": found consecutive capture '<a><b>': invalid expression`, `"<a><b>"`},
		{`{app="x"} |> ""`, `parse error at line 1, col 14: invalid pattern: empty pattern`, `""`},
		{`{app="x"} |> "<a> <a>"`, `parse error at line 1, col 14: invalid pattern "<a> <a>": duplicate capture name (a): invalid expression`, `"<a> <a>"`},
		{`{app="x"} |= ip("not-an-ip")`, `parse error at line 1, col 17: invalid ip pattern "not-an-ip": expecting an address, a CIDR or a range a-b`, `"not-an-ip"`},
		{`{app="x"} |~ ip("1.2.3.4")`, `parse error at line 1, col 14: ip() line filter only supports |= and !=, not |~`, `ip`},
		{`{app="x"} | logfmt --bogus`, `parse error at line 1, col 20: syntax error: unknown logfmt flag --bogus, expecting --strict or --keep-empty`, `--bogus`},
		{`{app="x"} | label_format a=b, a="c"`, `parse error at line 1, col 31: multiple label name 'a' not allowed in a single format operation`, `a`},
		{`count_over_time({app="x"})`, `parse error at line 1, col 26: syntax error: unexpected CLOSE_PARENTHESIS, expecting RANGE`, `)`},
		{`count_over_time({app="x"}[5])`, `parse error at line 1, col 27: syntax error: unexpected NUMBER, expecting DURATION`, `5`},
		{`count_over_time({app="x"}[0s])`, `parse error at line 1, col 27: range must be greater than zero`, `0s`},
		{`quantile_over_time({app="x"} | unwrap v [5m])`, `parse error : parameter required for operation quantile_over_time`, `quantile_over_time`},
		{`rate(0.5, {app="x"}[5m])`, `parse error : parameter 0.5 not supported for operation rate`, `0.5`},
		{`rate({app="x"}[5m]) by (a)`, `parse error : grouping not allowed for rate aggregation`, `rate({app="x"}[5m]) by (a)`},
		{`topk(0, rate({app="x"}[5m]))`, `parse error : invalid parameter (must be greater than 0) topk(0`, `0`},
		{`topk(1.5, rate({app="x"}[5m]))`, `parse error : invalid parameter topk(1.5,`, `1.5`},
		{`topk(rate({app="x"}[5m]))`, `parse error : parameter required for operation topk`, `topk`},
		{`sum(3, rate({app="x"}[5m]))`, `parse error : unsupported parameter for operation sum(3,`, `3`},
		{`sum by (a) (rate({app="x"}[5m])) by (b)`, `parse error at line 1, col 34: syntax error: unexpected BY: grouping given twice`, `by`},
		{`sum({app="x"})`, `parse error at line 1, col 5: syntax error: unexpected OPEN_BRACE, expecting a metric expression`, `{`},
		{`rate({app="x"}[5m]) + {app="y"}`, `parse error at line 1, col 23: syntax error: unexpected OPEN_BRACE, expecting a metric expression`, `{`},
		{`1 and rate({app="x"}[5m])`, `parse error : unexpected literal for left leg of logical/set binary operation (and): 1.000000`, `1 and rate({app="x"}[5m])`},
		{`rate({app="x"}[5m]) unless (1 + 1)`, `parse error : unexpected literal for right leg of logical/set binary operation (unless): 2.000000`, `rate({app="x"}[5m]) unless (1 + 1)`},
		{`label_replace(rate({app="x"}[5m]), "1bad", "", "a", "")`, `parse error at line 1, col 36: invalid destination label name in label_replace(): 1bad`, `"1bad"`},
		{`label_replace(rate({app="x"}[5m]), "d", "", "a", "(")`, "parse error : invalid regex in label_replace: error parsing regexp: missing closing ): `^(?:()$`", `"("`},
		{`{app="x"} |= "unterminated`, `parse error at line 1, col 14: literal not terminated`, `"unterminated`},
		{`{app="x"} |= "bad \q"`, `parse error at line 1, col 14: invalid string literal "bad \q": invalid syntax`, `"bad \q"`},
		{`{app="x"} | json | a > 12xyz`, `parse error at line 1, col 24: syntax error: invalid number, duration or byte size "12xyz"`, `12xyz`},
		{`{app="x"} $`, `parse error at line 1, col 11: syntax error: unexpected character '$'`, `$`},
		{`foo(1)`, `parse error at line 1, col 1: syntax error: unexpected IDENTIFIER`, `foo`},
		{`{app="x"} {app="y"}`, `parse error at line 1, col 11: syntax error: unexpected OPEN_BRACE`, `{`},
		{`rate({app="x"} | unwrap v | json [5m])`, `parse error at line 1, col 29: syntax error: unexpected JSON: only label filters may follow unwrap`, `json`},
		{`sort by (a) (rate({app="x"}[5m]))`, `parse error : sort and sort_desc doesn't allow grouping by`, `sort by (a) (rate({app="x"}[5m]))`},
		{"{app=\"\xff\"}", `parse error at line 1, col 6: invalid UTF-8 rune`, "\"\xff\""},
		{`vector(x)`, `parse error at line 1, col 8: syntax error: unexpected IDENTIFIER, expecting NUMBER`, `x`},
		{`- rate({app="x"}[5m])`, `parse error at line 1, col 3: syntax error: unexpected RATE, expecting NUMBER`, `rate`},
		{strings.Repeat("(", 1100) + "1" + strings.Repeat(")", 1100), `parse error at line 1, col 1001: query nested too deeply (more than 1000 levels)`, `(`},
		{`1e999`, `parse error at line 1, col 1: syntax error: invalid number, duration or byte size "1e999"`, `1e999`},
	}
	for _, tt := range tests {
		_, err := ParseExpr(tt.q)
		checkParseError(t, tt.q, err, tt.want, tt.span)
	}
}

// checkParseError asserts that parsing q failed with the message want and
// a range over span.
func checkParseError(t *testing.T, q string, err error, want, span string) {
	t.Helper()
	if err == nil {
		t.Errorf("%q: parsed, want error %q", q, want)
		return
	}
	if !errors.Is(err, ErrParse) {
		t.Errorf("%q: errors.Is(err, ErrParse) is false for %v", q, err)
	}
	if err.Error() != want {
		t.Errorf("%q:\n got %s\nwant %s", q, err, want)
	}
	checkErrorRange(t, q, err, span)
}

// checkErrorRange asserts that err's Range covers span, that its ends
// agree with the text before them, that it starts at the line and column
// the message prints, and that exactly the errors printed without a
// position are ValidationErrors.
func checkErrorRange(t *testing.T, q string, err error, span string) {
	t.Helper()
	r, ok := ErrorRange(err)
	if !ok {
		t.Errorf("%q: %v carries no range", q, err)
		return
	}
	if r.Start.Offset < 0 || r.Start.Offset > r.End.Offset || r.End.Offset > len(q) {
		t.Errorf("%q: range %+v outside the query", q, r)
		return
	}
	if got := q[r.Start.Offset:r.End.Offset]; got != span {
		t.Errorf("%q: range covers %q, want %q", q, got, span)
	}
	for _, p := range []Position{r.Start, r.End} {
		if want := positionOf(q, p.Offset); p != want {
			t.Errorf("%q: position %+v, want %+v", q, p, want)
		}
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Errorf("%q: %T is not a *ParseError", q, err)
		return
	}
	if pe.Line != 0 && (pe.Line != r.Start.Line || pe.Col != r.Start.Col) {
		t.Errorf("%q: message at line %d, col %d, range starts at %+v", q, pe.Line, pe.Col, r.Start)
	}
	var ve *ValidationError
	if isValidation := errors.As(err, &ve); isValidation != (pe.Line == 0) {
		t.Errorf("%q: ValidationError is %v for %v", q, isValidation, err)
	}
}

// positionOf counts lines and characters up to byte offset off, on its
// own, to check the parser's arithmetic.
func positionOf(q string, off int) Position {
	before := q[:off]
	line := 1 + strings.Count(before, "\n")
	if i := strings.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return Position{Offset: off, Line: line, Col: 1 + utf8.RuneCountInString(before)}
}

// TestErrorRangeMultiline covers ranges that start or end on a later line
// and after multi-byte characters, where offsets and columns differ.
func TestErrorRangeMultiline(t *testing.T) {
	tests := []struct {
		q, want, span string
		start, end    Position
	}{
		{"{app=\"é\"}\n| json\n| status > \"x\"", `parse error at line 3, col 12: syntax error: unexpected STRING, expecting NUMBER, DURATION or BYTES`, `"x"`,
			Position{Offset: 29, Line: 3, Col: 12}, Position{Offset: 32, Line: 3, Col: 15}},
		{"sum by (a) (\n  rate({app=\"é\"}[5m])\n) and 1", `parse error : unexpected literal for right leg of logical/set binary operation (and): 1.000000`, "sum by (a) (\n  rate({app=\"é\"}[5m])\n) and 1",
			Position{Offset: 0, Line: 1, Col: 1}, Position{Offset: 43, Line: 3, Col: 8}},
		{"{app=\"é\"} |= \"a\nb\"", `parse error at line 1, col 14: literal not terminated`, `"a`,
			Position{Offset: 14, Line: 1, Col: 14}, Position{Offset: 16, Line: 1, Col: 16}},
		{"{app=\"é\"} |= `a\nb", `parse error at line 1, col 14: literal not terminated`, "`a\nb",
			Position{Offset: 14, Line: 1, Col: 14}, Position{Offset: 18, Line: 2, Col: 2}},
		{"# comment\n{a=~\".*\",\n b=\"\"}", `parse error : ` + errEmptyCompatible, "{a=~\".*\",\n b=\"\"}",
			Position{Offset: 10, Line: 2, Col: 1}, Position{Offset: 26, Line: 3, Col: 7}},
	}
	for _, tt := range tests {
		_, err := ParseExpr(tt.q)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q: error %v, want %s", tt.q, err, tt.want)
			continue
		}
		checkErrorRange(t, tt.q, err, tt.span)
		if r, _ := ErrorRange(err); r.Start != tt.start || r.End != tt.end {
			t.Errorf("%q: range %+v, want %+v to %+v", tt.q, r, tt.start, tt.end)
		}
	}
}

// TestEntryPointErrorRange: a query of the wrong kind is wrong as a whole.
func TestEntryPointErrorRange(t *testing.T) {
	metric, log := "rate({app=\"api\"}\n[1m])", "{app=\"api\"}\n|= \"x\""
	for _, tt := range []struct {
		q     string
		parse func(string) error
		want  string
	}{
		{metric, func(q string) error { _, err := ParseLogSelector(q); return err }, "only log queries are supported here, got a metric query"},
		{log, func(q string) error { _, err := ParseSampleExpr(q); return err }, "only metric queries are supported here, got a log query"},
		{log, func(q string) error { _, err := ParseMatchers(q); return err }, "only label matchers are supported"},
	} {
		err := tt.parse(tt.q)
		if err == nil || err.Error() != "parse error : "+tt.want {
			t.Errorf("%q: error %v, want %s", tt.q, err, tt.want)
			continue
		}
		checkErrorRange(t, tt.q, err, tt.q)
	}
	if _, ok := ErrorRange(errors.New("other")); ok {
		t.Error("ErrorRange found a range in an unrelated error")
	}
	if _, ok := ErrorRange(&ParseError{Msg: "internal parser error: x"}); ok {
		t.Error("ErrorRange found a range in an error without one")
	}
}

func TestParseEntryPoints(t *testing.T) {
	ms, err := ParseMatchers(`{app="api", env=~"prod|staging"}`)
	if err != nil || len(ms) != 2 || ms[1].String() != `env=~"prod|staging"` {
		t.Errorf("ParseMatchers = %v, %v", ms, err)
	}
	if _, err := ParseMatchers(`{app="api"} |= "x"`); err == nil || !errors.Is(err, ErrParse) {
		t.Errorf("ParseMatchers with a pipeline: %v", err)
	}
	if _, err := ParseMatchers(`{app=""}`); err == nil {
		t.Error("ParseMatchers accepted an empty-compatible selector")
	}
	ls, err := ParseLogSelector(`{app="api"} | json`)
	if err != nil || len(ls.Matchers()) != 1 {
		t.Errorf("ParseLogSelector = %v, %v", ls, err)
	}
	if _, err := ParseLogSelector(`rate({app="api"}[1m])`); !errors.Is(err, ErrParse) {
		t.Errorf("ParseLogSelector of a metric query: %v", err)
	}
	se, err := ParseSampleExpr(`rate({app="api"}[1m])`)
	if err != nil || se.String() != `rate({app="api"} [1m])` {
		t.Errorf("ParseSampleExpr = %v, %v", se, err)
	}
	if _, err := ParseSampleExpr(`{app="api"}`); !errors.Is(err, ErrParse) {
		t.Errorf("ParseSampleExpr of a log query: %v", err)
	}
}

func TestWalk(t *testing.T) {
	e, err := ParseExpr(`sum(rate({a="b"} |= "x" or "y" | json [1m])) / on () max_over_time({c="d"} | unwrap v | v > 1 [1m])`)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	Walk(e, func(n Expr) bool {
		kinds = append(kinds, reflect.TypeOf(n).Elem().Name())
		return true
	})
	want := []string{"BinOpExpr", "VectorAggregationExpr", "RangeAggregationExpr", "LogRangeExpr", "PipelineExpr",
		"MatcherExpr", "LineFilterExpr", "LabelParserExpr", "RangeAggregationExpr", "LogRangeExpr", "MatcherExpr",
		"UnwrapExpr", "LabelFilterExpr"}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("walk order\n got %v\nwant %v", kinds, want)
	}
	// Returning false prunes the subtree.
	n := 0
	Walk(e, func(x Expr) bool { n++; _, isBin := x.(*BinOpExpr); return isBin })
	if n != 3 {
		t.Errorf("pruned walk visited %d nodes, want 3", n)
	}
}
