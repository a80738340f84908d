package plugin

import (
	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// errorRangeKey names the frame meta (custom) that carries a query error's
// span to the query editor (src/logql/backendErrors.ts reads it).
const errorRangeKey = "lokalErrorRange"

// errorRangeMeta is a parse or validation error's span: Expr is the text
// the positions refer to (the query after Grafana's variables were
// substituted), Start and End as syntax.Position counts them (byte offsets;
// lines and columns 1-based, columns in characters).
type errorRangeMeta struct {
	Expr    string        `json:"expr"`
	Message string        `json:"message"`
	Start   errorPosition `json:"start"`
	End     errorPosition `json:"end"`
}

type errorPosition struct {
	Offset int `json:"offset"`
	Line   int `json:"line"`
	Col    int `json:"col"`
}

func toErrorPosition(p syntax.Position) errorPosition {
	return errorPosition{Offset: p.Offset, Line: p.Line, Col: p.Col}
}

// queryErrorResponse is the error response of a query that failed with err.
// When err points into the query (a parse or validation error), the
// response also holds an empty frame whose meta carries that span, so the
// editor can underline it: Grafana's error response has only a message.
func queryErrorResponse(status backend.Status, expr string, err error) backend.DataResponse {
	dr := backend.ErrDataResponse(status, err.Error())
	if r, ok := syntax.ErrorRange(err); ok {
		f := data.NewFrame("")
		f.SetMeta(&data.FrameMeta{Custom: map[string]any{
			errorRangeKey: errorRangeMeta{Expr: expr, Message: err.Error(), Start: toErrorPosition(r.Start), End: toErrorPosition(r.End)},
		}})
		dr.Frames = data.Frames{f}
	}
	return dr
}
