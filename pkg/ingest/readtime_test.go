package ingest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

const accessLines = `INFO:     127.0.0.1:35014 - "GET /health HTTP/1.1" 200 OK
INFO:     127.0.0.1:38131 - "POST /inference_instruct HTTP/1.1" 422 Unprocessable Entity
INFO:     127.0.0.1:42294 - "GET /health HTTP/1.1" 200 OK
`

const stampedLines = `2026-01-02 03:04:05,000 INFO stamped one
2026-01-02 03:04:06,000 INFO stamped two
`

// TestReadTimeStampedCatchUp: a catch-up counts the entries of each file
// that keep their read time, the counts survive a restart (they are a
// store cursor) and add up.
func TestReadTimeStampedCatchUp(t *testing.T) {
	e := newEnv(t, "*.log")
	clock := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	e.opts.Now = func() time.Time { return clock }
	e.write("access.log", accessLines)
	e.write("app.log", stampedLines)
	e.catchUp()

	clock = clock.Add(time.Hour)
	e.write("access.log", accessLines)
	in := e.ingester()
	if got := in.ReadTimeStamped(); len(got) != 1 || got[0].Entries != 3 {
		t.Fatalf("before the second run: %+v, want the first run's 3 entries", got)
	}
	if err := in.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := in.ReadTimeStamped()
	if len(got) != 1 {
		t.Fatalf("stats %+v, want one stream", got)
	}
	s := got[0]
	wantFrom, wantTo := clock.Add(-time.Hour), clock
	if s.Path != e.path("access.log") || s.Entries != 6 || !s.From.Equal(wantFrom) || !s.To.Equal(wantTo) ||
		s.Labels.Get("filename") != e.path("access.log") {
		t.Errorf("stat %+v, want 6 entries of access.log read %s..%s", s, wantFrom, wantTo)
	}
	fromCursors, err := ReadTimeStatsFrom(e.st.Cursors())
	if err != nil || len(fromCursors) != 1 || fromCursors[0].Entries != 6 {
		t.Errorf("from the store's cursors: %+v, %v", fromCursors, err)
	}
	d := DescribeReadTime(got)
	if len(d) != 1 || !strings.HasPrefix(d[0], "6 entries from access.log carry their read time (no timestamp in the line), read between 2026-03-01 10:00:00Z and 2026-03-01 11:00:00Z") {
		t.Errorf("description %q", d)
	}
}

// TestReadTimeStampedFollow: lines of a backlog are counted, lines read
// as they are written are not.
func TestReadTimeStampedFollow(t *testing.T) {
	e := newEnv(t, "*.log")
	e.write("access.log", accessLines)
	in := e.ingester()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	waitFor(t, "the backlog", func() bool { return e.st.count() == 3 })
	e.write("access.log", accessLines)
	waitFor(t, "the live lines", func() bool { return e.st.count() == 6 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := in.ReadTimeStamped()
	if len(got) != 1 || got[0].Entries != 3 {
		t.Errorf("stats %+v, want the 3 backlog entries only", got)
	}
}

func TestReadTimeWarnings(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	access := labels.FromStrings("job", "cosyvoice3", "filename", "/logs/access.log", "level", "info")
	stats := []ReadTimeStat{{Path: "/logs/access.log", Labels: access, Entries: 500, From: t0, To: t0.Add(2 * time.Minute)}}
	sel := func(ms ...*labels.Matcher) [][]*labels.Matcher { return [][]*labels.Matcher{ms} }
	job := labels.MustNewMatcher(labels.MatchEqual, "job", "cosyvoice3")
	tests := []struct {
		name       string
		selectors  [][]*labels.Matcher
		start, end time.Time
		want       string
	}{
		{"overlaps", sel(job), t0.Add(-time.Hour), t0.Add(time.Hour),
			"500 entries in this range carry the time they were read, not a time from the line (none was found in it), because they were caught up on from a backlog: 500 from access.log, read 2026-03-01 10:00:00Z to 2026-03-01 10:02:00Z."},
		{"range before", sel(job), t0.Add(-2 * time.Hour), t0.Add(-time.Hour), ""},
		{"range after", sel(job), t0.Add(3 * time.Minute), t0.Add(time.Hour), ""},
		{"other stream", sel(job, labels.MustNewMatcher(labels.MatchNotRegexp, "filename", ".*/access.log")), t0, t0.Add(time.Hour), ""},
		{"second selector matches", [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchEqual, "job", "x")}, {job}}, t0, t0.Add(time.Hour), "500 entries"},
		{"no selector", nil, t0, t0.Add(time.Hour), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(readTimeWarnings(stats, tc.selectors, tc.start, tc.end), "\n")
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestShortNames(t *testing.T) {
	tests := []struct {
		paths []string
		want  []string
	}{
		{[]string{"/logs/access.log"}, []string{"access.log"}},
		{[]string{"/logs/host-1/access.log", "/logs/host-2/access.log", "/logs/host-1/startup.log"},
			[]string{"host-1/access.log", "host-2/access.log", "startup.log"}},
		{[]string{"/a/x/app.log", "/b/x/app.log"}, []string{"a/x/app.log", "b/x/app.log"}},
		{[]string{"app.log", "/x/app.log"}, []string{"app.log", "x/app.log"}},
	}
	for _, tc := range tests {
		var stats []ReadTimeStat
		for _, p := range tc.paths {
			stats = append(stats, ReadTimeStat{Path: p})
		}
		got := shortNames(stats)
		for i, p := range tc.paths {
			if got[p] != tc.want[i] {
				t.Errorf("%v: %s is named %q, want %q", tc.paths, p, got[p], tc.want[i])
			}
		}
	}
}

func TestFmtSpan(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		from, to time.Time
		and      string
		want     string
	}{
		{t0, t0.Add(300 * time.Millisecond), "and", "at 2026-03-01 10:00:00Z"},
		{t0, t0.Add(time.Minute), "and", "between 2026-03-01 10:00:00Z and 2026-03-01 10:01:00Z"},
		{t0, t0.Add(time.Minute), "to", "2026-03-01 10:00:00Z to 2026-03-01 10:01:00Z"},
	}
	for _, tc := range tests {
		if got := fmtSpan(tc.from, tc.to, tc.and); got != tc.want {
			t.Errorf("fmtSpan(%s, %s, %q) = %q, want %q", tc.from, tc.to, tc.and, got, tc.want)
		}
	}
}
