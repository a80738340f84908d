package engine

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"
)

// A metric query past the memory budget is refused with ErrMemoryBudget and
// the numbers that show why: what it would hold and the budget, whichever
// way it is evaluated (fused or not, streamed per stream or merged in time
// order), and the same query is answered under a budget that pays for it.
func TestMemoryBudgetRefusalNumbers(t *testing.T) {
	st := testStore(t, 20, 100)
	tests := []struct {
		name   string
		query  string
		budget int64
		want   string // regexp the error must match
	}{
		{"quantile window samples, time ordered", `quantile_over_time(0.5, {app="a", pod="p1"} | regexp "n=(?P<v>\\d+)" | unwrap v [1h])`, 1 << 10,
			`quantile_over_time would hold \d+ series and \d+ samples of its \[1h0m0s\] windows at once \(\d+ MiB\), more than the memory budget of one query \(1 MiB\)`},
		{"quantile window samples under max", `max(quantile_over_time(0.5, {app="a"} | regexp "n=(?P<v>\\d+)" | unwrap v [1h]))`, 2 << 10,
			`quantile_over_time would hold \d+ series and \d+ samples of its \[1h0m0s\] windows at once`},
		{"rate_counter window samples", `rate_counter({app="a", pod="p1"} | regexp "n=(?P<v>\\d+)" | unwrap v [1h])`, 1 << 10,
			`rate_counter would hold \d+ series and \d+ samples`},
		{"parser label sets, streamed", `count_over_time({app="a"} | logfmt [1m])`, 8 << 10,
			`count_over_time would hold more than \d+ series \(\d+ MiB with their labels and \d+ steps\) at once, more than the memory budget of one query \(1 MiB\)`},
		{"parser label sets under max", `max(count_over_time({app="a"} | logfmt [1m]))`, 8 << 10,
			`count_over_time would hold \d+ series and \d+ samples of its \[1m0s\] windows at once`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Params{Query: tt.query, Start: at(0), End: at(100 * time.Second), Step: 10 * time.Second}
			e := New(st, Options{MemoryBudget: tt.budget, MaxSeries: 5000})
			_, err := e.Query(context.Background(), p)
			if !errors.Is(err, ErrMemoryBudget) || !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Fatalf("err = %v, want ErrMemoryBudget matching %q", err, tt.want)
			}
			if _, err := New(st, Options{MaxSeries: 5000}).Query(context.Background(), p); err != nil {
				t.Fatalf("with the default budget: %v", err)
			}
		})
	}
}
