// Package testshared finds the team's shared test material (Loki's
// conformance answers, loggen), which lives in ../shared beside the
// repository and is absent from a user's clone: tests that need it skip.
package testshared

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns ../shared/rel from the repository root, or skips the test
// with a message naming what is missing.
func Path(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root (go.mod) not found: cannot locate ../shared")
		}
		dir = parent
	}
	p := filepath.Join(filepath.Dir(dir), "shared", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s is absent (../shared beside the repository holds the team's test material; a user's clone has none): skipping", p)
	}
	return p
}
