package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/lokal-logs/lokal/pkg/host"
	"github.com/lokal-logs/lokal/pkg/ingest"
)

// firstScanWait bounds how long a health check right after start waits for
// the ingester's first look at the disk, so "Save & test" on a new
// datasource reports the files instead of "0 files".
const firstScanWait = 3 * time.Second

// healthDetails are the health check's JSON details, for the config editor.
type healthDetails struct {
	FilesMatched  int                 `json:"filesMatched"`
	FilesTracked  int                 `json:"filesTracked"`
	FilesRejected []ingest.FileReject `json:"filesRejected,omitempty"`
	LinesIngested int64               `json:"linesIngested"`
	BytesRead     int64               `json:"bytesRead"`
	Store         host.Summary        `json:"store"`
	Paused        bool                `json:"paused"`
	Problems      []string            `json:"problems"`
	Forward       []forwardHealth     `json:"forward,omitempty"` // clients: (forwardhealth.go)
	forwardLines  []string
}

// CheckHealth reports what the datasource reads and stores, and every
// problem a user should fix, each with what to do about it.
func (ds *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	d := healthDetails{Problems: []string{}}
	fatal := false
	if err := ds.host.Options().OperatorErr; err != nil {
		d.Problems = append(d.Problems, "operator settings: "+err.Error())
	}
	if err := ds.unavailable(); err != nil {
		d.Problems = append(d.Problems, err.Error())
		return healthResult(d, true), nil
	}
	run, ingestErr := ds.ingestion()
	if ingestErr != nil {
		d.Problems = append(d.Problems, "ingestion stopped: "+ingestErr.Error())
		fatal = true
	}
	var h ingest.Health
	if r := run; r != nil {
		h = waitFirstScan(ctx, r.Ingester())
		if running, err := r.Running(); !running && ds.shared.Current() == r {
			msg := "ingestion stopped"
			if err != nil {
				msg += ": " + err.Error()
			}
			d.Problems = append(d.Problems, msg)
			fatal = true
		}
	}
	d.FilesMatched, d.FilesTracked, d.FilesRejected = h.FilesMatched, h.FilesTracked, h.FilesRejected
	d.LinesIngested, d.BytesRead, d.Paused = h.Lines, h.Bytes, h.Paused
	for _, r := range h.FilesRejected {
		d.Problems = append(d.Problems, fmt.Sprintf("%s: %s", r.Path, r.Reason))
		fatal = true
	}
	if h.Paused {
		d.Problems = append(d.Problems, "ingestion paused, nothing is lost and queries still work: "+h.PausedReason)
		fatal = true
	}
	if h.TimestampFailures > 0 {
		d.Problems = append(d.Problems, fmt.Sprintf("%d lines had a timestamp that could not be parsed; the time they were read was used instead (check the timestamp stage's format)", h.TimestampFailures))
	}
	if h.TruncatedLines > 0 {
		d.Problems = append(d.Problems, fmt.Sprintf("%d lines were longer than max_line_bytes and were truncated", h.TruncatedLines))
	}
	d.Problems = append(d.Problems, h.LabelCapWarnings...)
	d.Problems = append(d.Problems, h.Problems...)
	var fwdProblems []string
	d.Forward, d.forwardLines, fwdProblems = describeForward(h.Forward)
	d.Problems = append(d.Problems, fwdProblems...)
	if run != nil && h.FilesMatched == 0 && len(h.FilesRejected) == 0 {
		d.Problems = append(d.Problems, "no file matches the __path__ globs yet: check the paths (new files are picked up as they appear)")
		fatal = true
	}
	st, _, done := ds.shared.Use()
	sum, err := host.Summarize(st)
	d.Problems = append(d.Problems, ingest.DescribeReadTime(ds.readTimeStats(st))...)
	done()
	if err != nil {
		d.Problems = append(d.Problems, "store: "+err.Error())
		fatal = true
	}
	d.Store = sum
	st, _, done = ds.shared.Use()
	in := st.Info()
	done()
	if in.CorruptBlocks > 0 {
		d.Problems = append(d.Problems, "store: `lokal repair` (run while Grafana is stopped) moves corrupt blocks into the store's quarantine folder and reports the entries lost")
	}
	if in.Quarantined > 0 {
		d.Problems = append(d.Problems, fmt.Sprintf("store: %d blocks or segment files it could not read or account for are kept, not deleted, in %s/quarantine", in.Quarantined, in.Dir))
	}
	return healthResult(d, fatal), nil
}

// waitFirstScan returns the ingester's health once it has looked at the
// disk (or firstScanWait passed).
func waitFirstScan(ctx context.Context, in *ingest.Ingester) ingest.Health {
	deadline := time.Now().Add(firstScanWait)
	for {
		h := in.Health()
		if h.FilesMatched > 0 || len(h.FilesRejected) > 0 || len(h.Problems) > 0 || h.Lines > 0 || time.Now().After(deadline) {
			return h
		}
		select {
		case <-ctx.Done():
			return h
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func healthResult(d healthDetails, fatal bool) *backend.CheckHealthResult {
	var b strings.Builder
	if d.Store.Streams > 0 || d.FilesMatched > 0 || !fatal {
		fmt.Fprintf(&b, "%d %s matched, %d lines ingested; store: %s.", d.FilesMatched, plural(d.FilesMatched, "file", "files"), d.LinesIngested, d.Store)
	}
	for _, l := range d.forwardLines {
		b.WriteString("\n" + l)
	}
	for _, p := range d.Problems {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(p)
	}
	details, err := json.Marshal(d)
	if err != nil {
		details = nil
	}
	status := backend.HealthStatusOk
	if fatal {
		status = backend.HealthStatusError
	}
	return &backend.CheckHealthResult{Status: status, Message: b.String(), JSONDetails: details}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
