package ingest

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestFileIdentity: a file keeps its identity through a rename, two files
// never share one, an open file has the identity of its path, and a file
// Lokal reads can still be renamed and deleted by its writer (on Windows
// that needs delete sharing, which os.Open does not ask for).
func TestFileIdentity(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := write("a.log", "first\n"), write("b.log", "second\n")
	_, idA, err := statID(a)
	if err != nil {
		t.Fatal(err)
	}
	_, idB, err := statID(b)
	if err != nil {
		t.Fatal(err)
	}
	if idA == idB {
		t.Fatalf("two files share the identity %+v", idA)
	}

	f, err := openLog(a)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := openedID(f); !ok || got != idA {
		t.Fatalf("open file: identity %+v (%v), path says %+v", got, ok, idA)
	}

	rotated := filepath.Join(dir, "a.log.1")
	steps := []struct {
		name string
		do   func() error
		path string // where the file is afterwards, "" once deleted
	}{
		{"rename while open", func() error { return os.Rename(a, rotated) }, rotated},
		{"new file at the old name", func() error { write("a.log", "third\n"); return nil }, rotated},
		{"delete while open", func() error { return os.Remove(rotated) }, ""},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.path == "" {
			// Windows without POSIX delete semantics keeps the name until
			// the last handle closes; it must still be the same file.
			if _, id, err := statID(rotated); err == nil && id != idA {
				t.Errorf("%s: %s is another file now: %+v", st.name, rotated, id)
			}
			continue
		}
		fi, id, err := statID(st.path)
		if err != nil || id != idA || fi.Size() != int64(len("first\n")) {
			t.Errorf("%s: %s has identity %+v (%v), want %+v", st.name, st.path, id, err, idA)
		}
		if _, idNew, err := statID(a); err == nil && idNew == idA {
			t.Errorf("%s: the new a.log has the rotated file's identity", st.name)
		}
	}
	got, err := io.ReadAll(f)
	if err != nil || string(got) != "first\n" {
		t.Errorf("reading the deleted file through its handle: %q, %v", got, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := statID(rotated); !os.IsNotExist(err) {
		t.Errorf("deleted and closed: stat gives %v, want not-exist", err)
	}
}
