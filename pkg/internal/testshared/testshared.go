// Package testshared finds the team's shared test material (Loki's
// conformance answers, loggen), which lives in ../shared beside the
// repository and is absent from a user's clone: tests that need it skip.
package testshared

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the module's root: the nearest directory above the
// test's working directory that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod) not found above the test's directory")
		}
		dir = parent
	}
}

// Path returns ../shared/rel from the repository root, or skips the test
// with a message naming what is missing.
func Path(t testing.TB, rel string) string {
	t.Helper()
	dir, err := RepoRoot()
	if err != nil {
		t.Skipf("%v: cannot locate ../shared", err)
	}
	p := filepath.Join(filepath.Dir(dir), "shared", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s is absent (../shared beside the repository holds the team's test material; a user's clone has none): skipping", p)
	}
	return p
}
