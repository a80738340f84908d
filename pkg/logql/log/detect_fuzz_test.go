package log

import (
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/testshared"
)

// FuzzDetectTime: never panics, and a found time agrees with the standard
// library for the plain RFC 3339 prefix it claims to have read.
func FuzzDetectTime(f *testing.F) {
	for _, s := range testshared.FuzzLines {
		f.Add(s)
	}
	ref := time.Date(2024, 12, 20, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, line string) {
		got, found, bad := DetectTime(line, time.UTC, ref)
		if found && bad {
			t.Fatal("found and malformed at once")
		}
		if !found && !got.IsZero() {
			t.Fatal("a time without found")
		}
		// differential check on the strict RFC 3339 shape
		if len(line) >= 20 && line[10] == 'T' && line[19] == 'Z' {
			want, err := time.Parse(time.RFC3339, line[:20])
			if err == nil && (!found || !got.Equal(want)) {
				t.Fatalf("DetectTime(%q) = %s %v, time.Parse says %s", line, got, found, want)
			}
		}
	})
}

// FuzzDetectLevel: never panics; a line that is "[LEVEL] " + anything is
// that level, whatever follows.
func FuzzDetectLevel(f *testing.F) {
	for _, s := range testshared.FuzzLines {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		l := DetectLevel(line)
		if l >= numLevels {
			t.Fatalf("level %d out of range", l)
		}
		if DetectLevel("[ERROR] "+line) != LevelError {
			t.Fatalf("[ERROR] prefix not detected before %q", line)
		}
	})
}
