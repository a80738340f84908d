package engine

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

func TestLineScanEach(t *testing.T) {
	for _, tc := range []struct {
		name    string
		filters []string // the literals of `|=` filters
		lines   []string
	}{
		{"one literal", []string{"oom"}, []string{"a oom", "b", "oomoom", "", "c oo", "m d", "oom"}},
		{"hit across a line boundary", []string{"ab"}, []string{"xa", "by", "a", "b", "ab"}},
		{"several literals, longest searched", []string{"a", "bcd"}, []string{"bcd", "a bcd", "bcd a", "abc", "bcda"}},
		{"empty literal keeps every line", []string{""}, []string{"x", "", "y"}},
		{"no lines", []string{"x"}, nil},
		{"empty lines only", []string{"x"}, []string{"", "", ""}},
		{"the literal is a whole line", []string{"xy"}, []string{"xy", "xy", "x", "y", "xy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newLineScan(tc.filters, false)
			var text []byte
			var sizes []uint32
			for _, l := range tc.lines {
				text = append(text, l...)
				sizes = append(sizes, uint32(len(l)))
			}
			var want, got []int
			for i, l := range tc.lines {
				keep := true
				for _, f := range tc.filters {
					keep = keep && strings.Contains(l, f)
				}
				if keep {
					want = append(want, i)
				}
			}
			s.each(text, sizes, func(i, start, end int) {
				if !bytes.Equal(text[start:end], []byte(tc.lines[i])) {
					t.Errorf("line %d given as %q, is %q", i, text[start:end], tc.lines[i])
				}
				got = append(got, i)
			})
			if !slices.Equal(got, want) {
				t.Errorf("lines %v, want %v", got, want)
			}
		})
	}
}

func TestLineScanFor(t *testing.T) {
	for _, tc := range []struct {
		query string
		scans bool
	}{
		{`count_over_time({a="b"} |= "x" [5m])`, true},
		{`bytes_over_time({a="b"} |= "x" |= "yz" [5m])`, true},
		{`rate({a="b"} |= "" [5m])`, true},
		{`count_over_time({a="b"} [5m])`, false}, // no lines read at all
		{`count_over_time({a="b"} != "x" [5m])`, false},
		{`count_over_time({a="b"} |~ "x" [5m])`, false},
		{`count_over_time({a="b"} |= "x" or "y" [5m])`, false},
		{`count_over_time({a="b"} |= ip("1.2.3.4") [5m])`, false},
		{`count_over_time({a="b"} |= "x" | logfmt [5m])`, false},
		{`count_over_time({a="b"} |= "x" | level="error" [5m])`, false},
	} {
		t.Run(tc.query, func(t *testing.T) {
			e, err := syntax.ParseExpr(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			x := e.(*syntax.RangeAggregationExpr)
			sel, err := New(nil, Options{}).compileSelector(x.Left.Left)
			if err != nil {
				t.Fatal(err)
			}
			ex, err := sampleExtractor(x, sel.pipeline)
			if err != nil {
				t.Fatal(err)
			}
			if got := lineScanFor(x, ex) != nil; got != tc.scans {
				t.Errorf("scans %v, want %v", got, tc.scans)
			}
		})
	}
}
