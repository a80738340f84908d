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
