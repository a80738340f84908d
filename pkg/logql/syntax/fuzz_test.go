package syntax

import (
	"errors"
	"testing"
)

// FuzzParseExpr checks that the parser never panics and that whatever it
// accepts prints to a query that parses back to the same text. Seeds come
// from testdata/fuzz/FuzzParseExpr and the round-trip table.
func FuzzParseExpr(f *testing.F) {
	for _, q := range queries {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		e, err := ParseExpr(q)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("%q: error %v does not match ErrParse", q, err)
			}
			return
		}
		s := e.String()
		e2, err := ParseExpr(s)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", q, s, err)
		}
		if s2 := e2.String(); s2 != s {
			t.Fatalf("%q: printing is not stable:\n%s\n%s", q, s, s2)
		}
	})
}

// FuzzParseDuration checks that durations and byte sizes never panic and
// that what parses prints back to the same value.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"5m", "1h30m", "1.5s", "100µs", "1y2w3d", "20MB", "1.5KiB", "42B", "0", "-5m", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil && d > 0 {
			back, err := ParseDuration(FormatDuration(d))
			if err != nil || back != d {
				t.Fatalf("%q = %v prints as %q, which parses to %v, %v", s, d, FormatDuration(d), back, err)
			}
		}
		if n, err := ParseBytes(s); err == nil {
			back, err := ParseBytes(FormatBytes(n))
			if err != nil || back != n {
				t.Fatalf("%q = %d prints as %q, which parses to %d, %v", s, n, FormatBytes(n), back, err)
			}
		}
	})
}
