package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// How a figure may grow with the data in a scaling run.
const (
	// ExpectFlat figures must not grow with the store: idle RSS, restart,
	// peak RSS, the needle, windowed queries. Past FlatLimit they are flagged.
	ExpectFlat = "flat"
	// ExpectLinear figures may grow as fast as the data, no faster: past
	// LinearSlack times the data's growth they are flagged.
	ExpectLinear = "linear"
	// ExpectDay figures read a fixed time window (24 h): they may grow as
	// fast as the data per day, not with the store's total. Over equal
	// spans that is the data's growth; past LinearSlack times it they are
	// flagged.
	ExpectDay = "day"

	FlatLimit   = 2.0
	LinearSlack = 1.25
)

// ScaleFigure is one figure measured at every size of a scaling run.
type ScaleFigure struct {
	Name   string    `json:"name"`
	Unit   string    `json:"unit"`
	Expect string    `json:"expect"`
	Values []float64 `json:"values"`
	// Growth is each value over the first size's (NaN-free: 0 when the
	// first value is 0).
	Growth []float64 `json:"growth"`
	// Flag says why the figure grows more than it should ("" when it does not).
	Flag string `json:"flag,omitempty"`
}

// ScaleResults is a run over several corpus sizes, smallest first.
type ScaleResults struct {
	// Names label the sizes in the table (e.g. the --size arguments); the
	// corpus sizes when empty.
	Names []string   `json:"names,omitempty"`
	Sizes []*Results `json:"sizes"`
	// DataGrowth is each corpus's bytes over the first one's.
	DataGrowth []float64 `json:"data_growth"`
	// DayGrowth is each corpus's bytes per hour over the first one's
	// (DataGrowth when a span is unknown).
	DayGrowth []float64     `json:"day_growth"`
	Figures   []ScaleFigure `json:"figures"`
}

// Scale lines up the figures of runs at growing sizes, with each one's
// growth factor against the first run and a flag where it grows more than
// its expectation allows.
func Scale(runs []*Results) *ScaleResults {
	s := &ScaleResults{Sizes: runs}
	if len(runs) == 0 {
		return s
	}
	for _, r := range runs {
		g := ratio(float64(r.Corpus.Bytes), float64(runs[0].Corpus.Bytes))
		s.DataGrowth = append(s.DataGrowth, g)
		if h0, h := runs[0].Corpus.SpanHours, r.Corpus.SpanHours; h0 > 0 && h > 0 {
			g *= h0 / h
		}
		s.DayGrowth = append(s.DayGrowth, g)
	}
	add := func(name, unit, expect string, get func(*Results) (float64, bool)) {
		f := ScaleFigure{Name: name, Unit: unit, Expect: expect}
		for _, r := range runs {
			v, ok := get(r)
			if !ok {
				return // a figure some run lacks is no figure to compare
			}
			f.Values = append(f.Values, v)
		}
		for i, v := range f.Values {
			g := ratio(v, f.Values[0])
			f.Growth = append(f.Growth, g)
			switch {
			case f.Flag != "" || i == 0:
			case expect == ExpectFlat && g > FlatLimit:
				f.Flag = fmt.Sprintf("grows %.1f× where it should stay flat", g)
			case expect == ExpectLinear && g > LinearSlack*s.DataGrowth[i]:
				f.Flag = fmt.Sprintf("grows %.1f× for %.1f× the data", g, s.DataGrowth[i])
			case expect == ExpectDay && g > LinearSlack*s.DayGrowth[i]:
				f.Flag = fmt.Sprintf("grows %.1f× for %.1f× the data per day", g, s.DayGrowth[i])
			}
		}
		s.Figures = append(s.Figures, f)
	}
	always := func(f func(*Results) float64) func(*Results) (float64, bool) {
		return func(r *Results) (float64, bool) { return f(r), true }
	}
	add("ingest wall", "s", ExpectLinear, always(func(r *Results) float64 { return r.Ingest.WallSeconds }))
	add("ingest CPU", "s", ExpectLinear, always(func(r *Results) float64 { return r.Ingest.CPUSeconds }))
	add("ingest peak RSS", "MB", ExpectFlat, always(func(r *Results) float64 { return r.Ingest.PeakRSSMB }))
	add("store after compact", "MB", ExpectLinear, always(func(r *Results) float64 { return float64(r.Compact.StoreBytes) / 1e6 }))
	add("compact wall", "s", ExpectLinear, always(func(r *Results) float64 { return r.Compact.WallSeconds }))
	add("compact peak RSS", "MB", ExpectFlat, always(func(r *Results) float64 { return r.Compact.PeakRSSMB }))
	add("restart to 1st query", "ms", ExpectFlat, always(func(r *Results) float64 { return r.Restart.FirstQueryMs }))
	add("idle RSS", "MB", ExpectFlat, always(func(r *Results) float64 { return r.Idle.RSSMB }))
	add("idle CPU", "%", ExpectFlat, always(func(r *Results) float64 { return r.Idle.CPUPercent }))
	add("query set peak RSS", "MB", ExpectFlat, always(func(r *Results) float64 { return r.QueryPeakRSSMB }))
	for i, q := range runs[0].Queries {
		expect := ExpectLinear
		switch {
		case q.Name == "needle" || q.Kind == "logs" && q.Window > 0 && q.Window <= time.Hour:
			// token filters, and a first page that needs only the newest blocks
			expect = ExpectFlat
		case q.Window > 0:
			expect = ExpectDay
		}
		byName := func(r *Results) (QueryResult, bool) {
			if i < len(r.Queries) && r.Queries[i].Name == q.Name && r.Queries[i].Error == "" {
				return r.Queries[i], true
			}
			return QueryResult{}, false
		}
		add(q.Name+" warm", "ms", expect, func(r *Results) (float64, bool) {
			qr, ok := byName(r)
			return qr.Warm.Median, ok
		})
		add(q.Name+" first", "ms", expect, func(r *Results) (float64, bool) {
			qr, ok := byName(r)
			return qr.FirstMs, ok && qr.FirstMs > 0
		})
		add(q.Name+" first CPU", "ms", expect, func(r *Results) (float64, bool) {
			qr, ok := byName(r)
			return qr.FirstCPUMs, ok && qr.FirstCPUMs > 0
		})
		add(q.Name+" cold", "ms", expect, func(r *Results) (float64, bool) {
			qr, ok := byName(r)
			return coldMedian(qr), ok && qr.Cold != nil
		})
		add(q.Name+" peak RSS", "MB", ExpectFlat, func(r *Results) (float64, bool) {
			qr, ok := byName(r)
			return qr.PeakRSSMB, ok && qr.PeakRSSMB > 0
		})
	}
	return s
}

func coldMedian(q QueryResult) float64 {
	if q.Cold == nil {
		return 0
	}
	return q.Cold.Median
}

func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	return a / b
}

// WriteScaleTable prints each size's table, then every figure at every
// size with its growth factor against the first size.
func WriteScaleTable(w io.Writer, s *ScaleResults) {
	for _, r := range s.Sizes {
		WriteTable(w, r)
		fmt.Fprintln(w)
	}
	if len(s.Sizes) < 2 {
		return
	}
	fmt.Fprintf(w, "Scaling (growth against the %s corpus; flat figures are flagged past %.0f×, linear ones past %.2f× the data's growth, day ones past %.2f× the growth of the data per day)\n",
		s.name(0), FlatLimit, LinearSlack, LinearSlack)
	fmt.Fprintf(w, "Wall times follow the machine's load, which changes between sizes; CPU times much less.\n\n")
	head := fmt.Sprintf("%-34s %-6s", "figure", "expect")
	for i := range s.Sizes {
		head += fmt.Sprintf(" %11s", s.name(i))
	}
	for i := 1; i < len(s.Sizes); i++ {
		head += fmt.Sprintf(" %7s", fmt.Sprintf("×%.1f", s.DataGrowth[i]))
	}
	fmt.Fprintln(w, head+"  flag")
	for _, f := range s.Figures {
		line := fmt.Sprintf("%-34s %-6s", f.Name+" ("+f.Unit+")", f.Expect)
		for _, v := range f.Values {
			line += fmt.Sprintf(" %11s", num(v))
		}
		for _, g := range f.Growth[1:] {
			line += fmt.Sprintf(" %7s", fmt.Sprintf("%.2f", g))
		}
		if f.Flag != "" {
			line += "  ⚠ " + f.Flag
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

func (s *ScaleResults) name(i int) string {
	if i < len(s.Names) && s.Names[i] != "" {
		return s.Names[i]
	}
	return sizeName(s.Sizes[i].Corpus.Bytes)
}

// sizeName prints a corpus size in GiB, or MiB below 1 GiB.
func sizeName(n int64) string {
	if n < 1<<30-1<<26 {
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

// num prints a figure with three significant digits or so.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
