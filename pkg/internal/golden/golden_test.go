package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// recorder keeps the errors a check reports instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheckAndJSON(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		file    string
		check   func(tb testing.TB, path string)
		wantErr bool
	}{
		{"same bytes", "a\nb\n", func(tb testing.TB, p string) { Check(tb, p, []byte("a\nb\n")) }, false},
		{"other bytes", "a\nb\n", func(tb testing.TB, p string) { Check(tb, p, []byte("a\nc\n")) }, true},
		{"json indented", "{\n  \"a\": [\n    1\n  ]\n}\n", func(tb testing.TB, p string) { JSON(tb, p, []byte(`{"a":[1]}`), "  ") }, false},
		{"json other indent", "{\n  \"a\": 1\n}\n", func(tb testing.TB, p string) { JSON(tb, p, []byte(`{"a":1}`), " ") }, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(fmt.Sprintf("%d.golden", i), tt.file)
			r := &recorder{TB: t}
			tt.check(r, p)
			if got := len(r.errs) > 0; got != tt.wantErr {
				t.Errorf("reported %q, want an error: %v", r.errs, tt.wantErr)
			}
		})
	}
}
