package testshared

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// LoggenManifest is what loggen writes beside a history: its files with
// their line and entry counts (an entry is a line or a joined traceback).
type LoggenManifest struct {
	Files []struct {
		Path    string `json:"path"`
		Lines   int    `json:"lines"`
		Entries int    `json:"entries"`
	} `json:"files"`
	TotalEntries int `json:"total_entries"`
}

// Loggen writes a loggen history of the given size ("4MiB") and seed into a
// temporary directory and returns the directory and its manifest; the test
// skips when ../shared/bin/loggen is absent.
func Loggen(t testing.TB, size, seed string) (string, LoggenManifest) {
	t.Helper()
	loggen := Path(t, "bin/loggen")
	out := t.TempDir()
	cmd := exec.Command(loggen, "-out", out, "-size", size, "-seed", seed, "-needles", "3")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("loggen: %v\n%s", err, b)
	}
	var m LoggenManifest
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return out, m
}

// LoggenLines reads a loggen history into memory: every file's lines, and
// the total size in bytes, for benchmarks over a realistic corpus.
func LoggenLines(t testing.TB, size, seed string) ([][]string, int64) {
	t.Helper()
	dir, m := Loggen(t, size, seed)
	var files [][]string
	var total int64
	for _, f := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		total += int64(len(data))
		files = append(files, strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"))
	}
	return files, total
}
