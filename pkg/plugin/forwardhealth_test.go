package plugin

import (
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/forward"
)

func TestDescribeForward(t *testing.T) {
	cases := []struct {
		name         string
		in           forward.Status
		wantLine     string
		wantProblems []string
	}{
		{"healthy", forward.Status{URL: "http://loki/push", EntriesSent: 10, BytesSent: 2048, BatchesSent: 2, Lag: 300 * time.Millisecond, LagEntries: 4},
			"forwarding to http://loki/push: 10 entries (2.0 KiB) sent in 2 batches, 0 retried; lag 300ms, 4 entries", nil},
		{"failing, refused and lost", forward.Status{URL: "http://l/p", Failing: true, LastError: "push: HTTP 503: down",
			BatchesDropped: 1, EntriesDropped: 7, LastDrop: "HTTP 400: too old", EntriesLost: 3},
			"forwarding to http://l/p: 0 entries (0 B) sent in 0 batches, 0 retried; lag 0s, 0 entries",
			[]string{"keeps failing (push: HTTP 503: down)", "refused 1 batches (7 entries), last: HTTP 400: too old", "3 entries were deleted before they were sent"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, lines, problems := describeForward([]forward.Status{tc.in})
			if len(d) != 1 || d[0].URL != tc.in.URL || d[0].LagSeconds != tc.in.Lag.Seconds() || d[0].EntriesSent != tc.in.EntriesSent {
				t.Fatalf("details %+v", d)
			}
			if len(lines) != 1 || lines[0] != tc.wantLine {
				t.Fatalf("line %q\nwant %q", lines, tc.wantLine)
			}
			if len(problems) != len(tc.wantProblems) {
				t.Fatalf("problems %q", problems)
			}
			for i, p := range tc.wantProblems {
				if !strings.Contains(problems[i], p) {
					t.Errorf("problem %q lacks %q", problems[i], p)
				}
			}
		})
	}
}
