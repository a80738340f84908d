package testshared

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// EnvDir returns the directory named by the environment variable name, or
// skips the test or benchmark with the message why when it is unset.
func EnvDir(tb testing.TB, name, why string) string {
	tb.Helper()
	dir := os.Getenv(name)
	if dir == "" {
		tb.Skip(why)
	}
	return dir
}

// LogBytes returns the total size of the *.log files under dir (a corpus
// such as loggen writes); it fails tb when dir cannot be walked.
func LogBytes(tb testing.TB, dir string) int64 {
	tb.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".log") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		tb.Fatalf("measure corpus %s: %v", dir, err)
	}
	return n
}
