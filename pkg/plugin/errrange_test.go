package plugin

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// TestQueryErrorResponseRange: a parse or validation error's span reaches
// the editor in the error response's frame meta; other errors carry none.
func TestQueryErrorResponseRange(t *testing.T) {
	tests := []struct {
		name, expr string
		err        error // nil: the error of parsing expr
		want       string
	}{
		{name: "grammar error", expr: "{job=\"a\"}\n  |= ",
			want: `{"lokalErrorRange":{"expr":"{job=\"a\"}\n  |= ","message":"parse error at line 2, col 6: syntax error: unexpected $end, expecting STRING or IP","start":{"offset":15,"line":2,"col":6},"end":{"offset":15,"line":2,"col":6}}}`},
		{name: "validation error", expr: `sum(sum_over_time({job="x"}[5m]))`,
			want: `{"lokalErrorRange":{"expr":"sum(sum_over_time({job=\"x\"}[5m]))","message":"parse error : invalid aggregation sum_over_time without unwrap","start":{"offset":4,"line":1,"col":5},"end":{"offset":32,"line":1,"col":33}}}`},
		{name: "not a parse error", expr: `{job="a"}`, err: errors.New("engine failed")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err
			if err == nil {
				if _, err = syntax.ParseExpr(tc.expr); err == nil {
					t.Fatalf("%q parsed", tc.expr)
				}
			}
			dr := queryErrorResponse(backend.StatusBadRequest, tc.expr, err)
			if dr.Error == nil || dr.Error.Error() != err.Error() || dr.Status != backend.StatusBadRequest {
				t.Fatalf("response error %v, status %v", dr.Error, dr.Status)
			}
			if tc.want == "" {
				if len(dr.Frames) != 0 {
					t.Errorf("frames %v, want none", dr.Frames)
				}
				return
			}
			if len(dr.Frames) != 1 || dr.Frames[0].Meta == nil {
				t.Fatalf("frames %v, want one with meta", dr.Frames)
			}
			got, err := json.Marshal(dr.Frames[0].Meta.Custom)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("meta.custom\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}
