package fsync

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	for _, want := range []string{"first", "second, longer", ""} {
		if err := ReplaceFile(p, []byte(want)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Fatalf("after ReplaceFile(%q): %q, %v", want, got, err)
		}
		if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
			t.Fatalf("temporary file left behind: %v", err)
		}
	}
}

func TestWriteFileErrors(t *testing.T) {
	if err := WriteFile(filepath.Join(t.TempDir(), "missing", "f"), nil); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
	if err := Dir(filepath.Join(t.TempDir(), "missing")); err == nil && os.PathSeparator == '/' {
		t.Fatal("syncing a missing directory succeeded")
	}
}
