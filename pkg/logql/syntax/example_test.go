package syntax_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

func ExampleParseExpr() {
	e, err := syntax.ParseExpr(`SUM BY (level) (count_over_time({job="api"} |= "error" | logfmt | latency > 250ms, status >= 500 or status == 429 [5m]))`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e)
	// Output:
	// sum by (level) (count_over_time({job="api"} |= "error" | logfmt | latency > 250ms and (status >= 500 or status == 429) [5m]))
}

func ExampleParseExpr_error() {
	_, err := syntax.ParseExpr(`{job="api"} | json | status > "500"`)
	fmt.Println(err)
	fmt.Println(errors.Is(err, syntax.ErrParse))
	var pe *syntax.ParseError
	if errors.As(err, &pe) {
		fmt.Println(pe.Line, pe.Col)
	}
	// Output:
	// parse error at line 1, col 31: syntax error: unexpected STRING, expecting NUMBER, DURATION or BYTES
	// true
	// 1 31
}

func ExampleErrorRange() {
	q := `sum(count_over_time({job="api"}[5m])) and 1`
	_, err := syntax.ParseExpr(q)
	fmt.Println(err)
	if r, ok := syntax.ErrorRange(err); ok {
		fmt.Printf("col %d to %d: %s\n", r.Start.Col, r.End.Col, q[r.Start.Offset:r.End.Offset])
	}
	// Output:
	// parse error : unexpected literal for right leg of logical/set binary operation (and): 1.000000
	// col 1 to 44: sum(count_over_time({job="api"}[5m])) and 1
}

func ExampleWalk() {
	e, _ := syntax.ParseExpr(`sum(rate({job="api"}[1m])) / sum(rate({job="db"}[1m]))`)
	syntax.Walk(e, func(n syntax.Expr) bool {
		if m, ok := n.(*syntax.MatcherExpr); ok {
			fmt.Println(m.Matchers())
		}
		return true
	})
	// Output:
	// [job="api"]
	// [job="db"]
}

func ExampleExpandGrafanaVariables() {
	q := `sum(count_over_time({job="api"}[$__auto])) / ($__interval_ms / 1000)`
	fmt.Println(syntax.ExpandGrafanaVariables(q, syntax.GrafanaVars{
		Interval: 30 * time.Second,
		Range:    time.Hour,
		Auto:     90 * time.Second, // the step of a range query
	}))
	// Output:
	// sum(count_over_time({job="api"}[1m30s])) / (30000 / 1000)
}
