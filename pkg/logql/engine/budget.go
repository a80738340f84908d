package engine

import (
	"errors"
	"sync/atomic"

	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// heldBytes counts what one metric query's accumulators hold at once (series
// with their labels and step arrays, window samples), across all the workers
// that fold for it, against Options.MemoryBudget.
type heldBytes struct {
	n   atomic.Int64
	max int64
}

// add counts d more bytes (fewer when negative) and reports whether the
// total is still within the budget.
func (h *heldBytes) add(d int64) bool { return h.n.Add(d) <= h.max }

// mib is b in MiB, rounded up, for error messages.
func mib(b int64) int64 { return (b + 1<<20 - 1) >> 20 }

// tvBytes is what one window sample costs in its buffer.
const tvBytes = 16

// seriesOverhead is what a held series costs besides its labels and its
// arrays: its struct, its map entry and its slot in the series list.
const seriesOverhead = 256

// accBytes is what a range accumulator over n steps costs.
func accBytes(a *rangeAcc) int64 {
	n := int64(labelsBytes(a.ls)) + seriesOverhead
	n += int64(cap(a.v)+cap(a.c)+cap(a.m))*8 + int64(cap(a.ok))
	return n
}

// windowsOverBudget is the error of a range aggregation whose series and
// window samples outgrow the memory budget.
func (ev *evaluator) windowsOverBudget(x *syntax.RangeAggregationExpr, series, samples int) error {
	return queryErr(ErrMemoryBudget, "%s would hold %d series and %d samples of its [%s] windows at once (%d MiB), more than the memory budget of one query (%d MiB); group by fewer labels, drop labels the parser makes, select fewer lines or shorten the range",
		x.Operation, series, samples, x.Left.Interval, mib(ev.held.n.Load()), mib(ev.held.max))
}

// decodedLimit turns the store's refusal of a select whose streams would
// hold too many decoded blocks at once into the engine's memory-budget
// error, with the store's numbers and without the stream it came up in.
func decodedLimit(err error) error {
	var de *store.DecodedLimitError
	if errors.As(err, &de) {
		return queryErr(ErrMemoryBudget, "%s", de.Error())
	}
	return err
}
