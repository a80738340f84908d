package lokihttp

import (
	"net/http/httptest"
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

// TestTimeRange: Loki's documented defaults for start, end and since,
// including a future end, from which since counts back from now.
func TestTimeRange(t *testing.T) {
	now := time.Unix(1734393600, 0)
	h := New(Options{Now: func() time.Time { return now }})
	hour := time.Hour
	tests := []struct {
		name       string
		query      string
		def        time.Duration
		start, end time.Time
		err        bool
	}{
		{"defaults", "", hour, now.Add(-hour), now, false},
		{"label default", "", defaultLabelSince, now.Add(-6 * hour), now, false},
		{"since", "since=15m", hour, now.Add(-15 * time.Minute), now, false},
		{"since before a past end", "since=15m&end=1734390000", hour, time.Unix(1734390000, 0).Add(-15 * time.Minute), time.Unix(1734390000, 0), false},
		{"since before now when end is in the future", "since=15m&end=1734397200", hour, now.Add(-15 * time.Minute), time.Unix(1734397200, 0), false},
		{"default before now when end is in the future", "end=1734397200", hour, now.Add(-hour), time.Unix(1734397200, 0), false},
		{"start supersedes since", "since=15m&start=1734300000", hour, time.Unix(1734300000, 0), now, false},
		{"bad since", "since=soon", hour, time.Time{}, time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/loki/api/v1/labels?"+tt.query, nil)
			if err := form(r); err != nil {
				t.Fatal(err)
			}
			start, end, err := h.timeRange(r, tt.def)
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if !tt.err && (!start.Equal(tt.start) || !end.Equal(tt.end)) {
				t.Errorf("got [%v, %v], want [%v, %v]", start, end, tt.start, tt.end)
			}
		})
	}
}
