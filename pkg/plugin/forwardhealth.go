package plugin

import (
	"fmt"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/forward"
)

// forwardHealth is one client of the settings (clients:) in the health
// check's details: what Lokal forwarded to it and how far behind it is.
type forwardHealth struct {
	URL            string  `json:"url"`
	EntriesSent    int64   `json:"entriesSent"`
	BytesSent      int64   `json:"bytesSent"`
	BatchesSent    int64   `json:"batchesSent"`
	BatchesRetried int64   `json:"batchesRetried"`
	BatchesDropped int64   `json:"batchesDropped"`
	EntriesDropped int64   `json:"entriesDropped"`
	EntriesLost    int64   `json:"entriesLost"`
	LagEntries     int64   `json:"lagEntries"`
	LagSeconds     float64 `json:"lagSeconds"`
	Failing        bool    `json:"failing"`
	LastError      string  `json:"lastError,omitempty"`
}

// describeForward turns the ingester's forward status into the details'
// entries, one summary line each, and the problems a user should act on.
func describeForward(ss []forward.Status) (out []forwardHealth, lines, problems []string) {
	for _, s := range ss {
		out = append(out, forwardHealth{URL: s.URL, EntriesSent: s.EntriesSent, BytesSent: s.BytesSent,
			BatchesSent: s.BatchesSent, BatchesRetried: s.BatchesRetried, BatchesDropped: s.BatchesDropped,
			EntriesDropped: s.EntriesDropped, EntriesLost: s.EntriesLost, LagEntries: s.LagEntries,
			LagSeconds: s.Lag.Seconds(), Failing: s.Failing, LastError: s.LastError})
		lines = append(lines, fmt.Sprintf("forwarding to %s: %d entries (%s) sent in %d batches, %d retried; lag %s, %d entries",
			s.URL, s.EntriesSent, config.HumanBytes(s.BytesSent), s.BatchesSent, s.BatchesRetried, s.Lag.Round(100*time.Millisecond), s.LagEntries))
		if s.Failing {
			problems = append(problems, fmt.Sprintf("forwarding to %s keeps failing (%s); nothing is lost, the store keeps the entries and sending goes on", s.URL, s.LastError))
		}
		if s.BatchesDropped > 0 {
			problems = append(problems, fmt.Sprintf("forwarding to %s: the remote refused %d batches (%d entries), last: %s", s.URL, s.BatchesDropped, s.EntriesDropped, s.LastDrop))
		}
		if s.EntriesLost > 0 {
			problems = append(problems, fmt.Sprintf("forwarding to %s: %d entries were deleted before they were sent: the store's max_bytes limit forced retention (raise storage.max_bytes, or fix the remote sooner)", s.URL, s.EntriesLost))
		}
	}
	return out, lines, problems
}
