package engine

import (
	"testing"

	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// Which vector aggregations stream their range aggregation sample by sample
// (every stream open at once, every sample of a window held) and which fold
// stream by stream: a sum that Loki pushes its grouping into is grouped
// already and must fold, so counting lines that match a filter over a
// whole day holds a block per worker, not the day's samples.
func TestFusesAsWritten(t *testing.T) {
	tests := []struct {
		query string
		fuses bool
	}{
		{`sum(count_over_time({app="a"} |= "error" [24h]))`, false},
		{`sum by (pod) (rate({app="a"} | logfmt [5m]))`, false},
		{`sum(bytes_over_time({app="a"} | json [5m]))`, false},
		{`sum by (pod) (count_over_time({app="a"} [5m]))`, false},
		{`max(count_over_time({app="a"} | logfmt [5m]))`, true},
		{`count by (n) (count_over_time({app="a"} | logfmt [1m]))`, true},
		{`sum(sum_over_time({app="a"} | logfmt | unwrap n [5m]))`, true},
		{`max(count_over_time({app="a"} [5m]))`, false},
		{`topk(3, count_over_time({app="a"} | logfmt [5m]))`, false},
	}
	for _, tt := range tests {
		e, err := syntax.ParseSampleExpr(tt.query)
		if err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		x, ok := e.(*syntax.VectorAggregationExpr)
		if !ok {
			t.Fatalf("%s: %T, want a vector aggregation", tt.query, e)
		}
		if got := fusesInto(x); got != tt.fuses {
			t.Errorf("%s: fuses %v, want %v", tt.query, got, tt.fuses)
		}
	}
}
