package testshared

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLogBytes(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"a.log": "abc", "notes.txt": "ignored", "sub/c.log": "defg", "sub/d.log.gz": "zz"}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		dir  string
		want int64
	}{
		{dir, 7},
		{filepath.Join(dir, "sub"), 4},
		{t.TempDir(), 0},
	}
	for _, tt := range tests {
		if got := LogBytes(t, tt.dir); got != tt.want {
			t.Errorf("LogBytes(%s) = %d, want %d", tt.dir, got, tt.want)
		}
	}
}

func TestEnvDir(t *testing.T) {
	t.Setenv("LOKAL_TESTSHARED_DIR", "/some/dir")
	if got := EnvDir(t, "LOKAL_TESTSHARED_DIR", "unset"); got != "/some/dir" {
		t.Errorf("EnvDir = %q, want /some/dir", got)
	}
}
