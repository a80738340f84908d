// Package golden compares test outputs with golden files under testdata.
// Run a package's tests with -update to rewrite its golden files after an
// intended change, then review the diff.
package golden

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// Check compares got with the file at path. With -update it first writes
// got there, creating the directory.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update after checking):\n%s", path, got)
	}
}

// JSON checks that got is JSON and compares it, indented by indent and
// ending in a newline, with the file at path as Check does.
func JSON(t testing.TB, path string, got []byte, indent string) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", indent); err != nil {
		t.Fatalf("invalid JSON (%v): %s", err, got)
	}
	pretty.WriteByte('\n')
	Check(t, path, pretty.Bytes())
}
