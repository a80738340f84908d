package lokihttp

import (
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"1734393600", time.Unix(1734393600, 0), false},                   // 10 digits: seconds
		{"4000000000", time.Unix(4000000000, 0), false},                   // still seconds (Grafana's health check)
		{"1734393600000000000", time.Unix(0, 1734393600000000000), false}, // nanoseconds
		{"1734393600.5", time.Unix(1734393600, 500*int64(time.Millisecond)), false},
		{"1734393600.1234567", time.Unix(1734393600, 123*int64(time.Millisecond)), false}, // Loki keeps ms
		{"2024-12-17T00:00:00Z", time.Unix(1734393600, 0), false},
		{"2024-12-17T00:00:00.25+01:00", time.Unix(1734390000, 250*int64(time.Millisecond)), false},
		{"yesterday", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseTimestamp(tt.in)
		if (err != nil) != tt.err || !got.Equal(tt.want) {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseSecondsOrDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"15", 15 * time.Second, false},
		{"0.5", 500 * time.Millisecond, false},
		{"60000ms", time.Minute, false}, // Grafana's Loki datasource sends steps so
		{"1m30s", 90 * time.Second, false},
		{"1d", 24 * time.Hour, false},
		{"often", 0, true},
		{"1e300", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSecondsOrDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseSecondsOrDuration(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}
