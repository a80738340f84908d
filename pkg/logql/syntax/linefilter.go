package syntax

import (
	"fmt"

	"github.com/lokal-logs/lokal/pkg/logql/log"
)

// logOp maps a line filter operator of the grammar onto logql/log's.
func logOp(op LineFilterOp) (log.LineFilterOp, error) {
	switch op {
	case LineContains:
		return log.OpContains, nil
	case LineNotContains:
		return log.OpNotContains, nil
	case LineMatchRegexp:
		return log.OpRegexp, nil
	case LineNotMatchRegexp:
		return log.OpNotRegexp, nil
	case LineMatchPattern:
		return log.OpPattern, nil
	case LineNotMatchPattern:
		return log.OpNotPattern, nil
	}
	return 0, fmt.Errorf("unknown line filter operator %q", op)
}

// Filter builds the line filter e stands for, with its `or` alternatives:
// any of them for a positive operator, none of them for a negative one (as
// Loki reads `!= "a" or "b"`). The engine, the ingest match stage and
// pattern detection all build their filters here.
func (e *LineFilterExpr) Filter() (log.Filter, error) {
	one := func(y *LineFilterExpr) (log.Filter, error) {
		if y.IP {
			if e.Op != LineContains && e.Op != LineNotContains {
				return nil, fmt.Errorf("ip() line filters only support |= and !=")
			}
			f, err := log.NewIPLineFilter(y.Value, e.Op.Negative())
			if err != nil {
				return nil, fmt.Errorf("invalid ip filter %q: %v", y.Value, err)
			}
			return f, nil
		}
		op, err := logOp(e.Op)
		if err != nil {
			return nil, err
		}
		f, err := log.NewLineFilter(op, y.Value)
		if err != nil {
			return nil, fmt.Errorf("invalid line filter %s %q: %v", e.Op, y.Value, err)
		}
		return f, nil
	}
	first, err := one(e)
	if err != nil {
		return nil, err
	}
	if len(e.Or) == 0 {
		return first, nil
	}
	fs := []log.Filter{first}
	for _, alt := range e.Or {
		f, err := one(alt)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	if e.Op.Negative() {
		return log.NewAndFilter(fs...), nil
	}
	return log.NewOrFilter(fs...), nil
}
