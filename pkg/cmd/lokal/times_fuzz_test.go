package main

import (
	"testing"
	"time"
)

// FuzzParseTime: any input gives a time or an error, never a panic, and a
// relative time is exactly now plus its duration.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"now", "now-1h", "now+90s", "now-2d3h", "1734445800", "1734445800.25", "-5", "2024-12-17T14:30:00Z", "2024-12-17 14:30:00", "2024-12-17", "now-", "1e99", "NaN", "now-9999999999999h"} {
		f.Add(s)
	}
	now := time.Date(2024, 12, 17, 15, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTime(s, now)
		if err != nil {
			return
		}
		if len(s) > 4 && s[:4] == "now-" {
			d, derr := parseDuration(s[4:])
			if derr != nil || !got.Equal(now.Add(-d)) {
				t.Errorf("parseTime(%q) = %v, but its duration gives %v (%v)", s, got, now.Add(-d), derr)
			}
		}
	})
}
