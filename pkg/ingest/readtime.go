package ingest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
)

// A line with no timestamp of its own (uvicorn's access lines, a startup
// banner) is stored at the time it was read, as Loki and Promtail do. While
// following, that is within a poll of when it was written; while catching
// up on a backlog it is not: hours of such lines land within the minutes
// the catch-up takes, and a rate over them draws a burst that never
// happened. The data keeps Loki's semantics; the ingester counts those
// entries per file and stream, with the span of their read times, so that
// health and every query over that span can say so.

// ReadTimeStat counts the entries of one stream of one file that were read
// from a backlog and carry their read time instead of a time from the line.
type ReadTimeStat struct {
	Path    string        // the file's filename label
	Labels  labels.Labels // the stream the entries are in
	Entries int64
	// From and To bound the read times the entries were given.
	From, To time.Time
}

// readTimeCursor is the store cursor that holds the counts: committed with
// the entries they count, so they survive a restart and never count an
// entry a crash took back.
const readTimeCursor = "ingest/read-time"

// readTimeAcc accumulates one ReadTimeStat; times in Unix ns.
type readTimeAcc struct {
	path     string
	labels   labels.Labels
	n        int64
	from, to int64
}

func (a *readTimeAcc) add(b *readTimeAcc) {
	if a.n == 0 || b.from < a.from {
		a.from = b.from
	}
	if a.n == 0 || b.to > a.to {
		a.to = b.to
	}
	a.n += b.n
}

// noteReadTime counts an entry of stream ls given its read time ts.
func (r *chunkResult) noteReadTime(ls labels.Labels, ts int64) {
	var acc *readTimeAcc
	for _, a := range r.readTime {
		if sameSlice(a.labels, ls) || labels.Equal(a.labels, ls) {
			acc = a
			break
		}
	}
	if acc == nil {
		acc = &readTimeAcc{path: r.tf.name, labels: ls}
		r.readTime = append(r.readTime, acc)
	}
	acc.add(&readTimeAcc{n: 1, from: ts, to: ts})
}

// mergeReadTime takes a result's counts into the pump's.
func (p *pump) mergeReadTime(r *chunkResult) {
	for _, a := range r.readTime {
		k := a.path + "\x00" + a.labels.String()
		have := p.readTime[k]
		if have == nil {
			have = &readTimeAcc{path: a.path, labels: a.labels}
			p.readTime[k] = have
		}
		have.add(a)
		p.readTimeDirty = true
	}
}

// readTimeRecord is the cursor's JSON form of one stat.
type readTimeRecord struct {
	Path    string            `json:"path"`
	Labels  map[string]string `json:"labels"`
	Entries int64             `json:"entries"`
	From    int64             `json:"from"`
	To      int64             `json:"to"`
}

// stageReadTime puts the counts into the batch when they changed, leaving
// out spans retention has dropped.
func (p *pump) stageReadTime() {
	if !p.readTimeDirty {
		return
	}
	p.readTimeDirty = false
	if ret := p.in.settings.Storage.RetentionOrDefault(); ret > 0 {
		cut := p.in.opts.Now().Add(-ret).UnixNano()
		for k, a := range p.readTime {
			if a.to < cut {
				delete(p.readTime, k)
			}
		}
	}
	recs := make([]readTimeRecord, 0, len(p.readTime))
	for _, k := range slices.Sorted(maps.Keys(p.readTime)) {
		a := p.readTime[k]
		recs = append(recs, readTimeRecord{Path: a.path, Labels: a.labels.Map(), Entries: a.n, From: a.from, To: a.to})
	}
	b, _ := json.Marshal(recs) // plain values: cannot fail
	p.batch.cursors[readTimeCursor] = b
	p.batch.readTime = statsOf(recs)
	p.batch.readTimeSet = true
}

// loadReadTime starts the pump's counts from the store's cursor.
func (p *pump) loadReadTime(cursors map[string][]byte) {
	recs, err := decodeReadTime(cursors[readTimeCursor])
	if err != nil {
		p.in.problem("%v: counting them again from here", err)
		return
	}
	for _, r := range recs {
		a := &readTimeAcc{path: r.Path, labels: labels.FromMap(r.Labels), n: r.Entries, from: r.From, to: r.To}
		p.readTime[r.Path+"\x00"+a.labels.String()] = a
	}
}

func decodeReadTime(b []byte) ([]readTimeRecord, error) {
	if b == nil {
		return nil, nil
	}
	var recs []readTimeRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("the counts of entries stored at their read time (cursor %s) are unreadable: %w", readTimeCursor, err)
	}
	return recs, nil
}

func statsOf(recs []readTimeRecord) []ReadTimeStat {
	out := make([]ReadTimeStat, 0, len(recs))
	for _, r := range recs {
		out = append(out, ReadTimeStat{Path: r.Path, Labels: labels.FromMap(r.Labels), Entries: r.Entries,
			From: time.Unix(0, r.From).UTC(), To: time.Unix(0, r.To).UTC()})
	}
	return out
}

// ReadTimeStatsFrom reads the counts from a store's cursors, for a reader
// without an ingester (`lokal query`, a read-only plugin instance).
func ReadTimeStatsFrom(cursors map[string][]byte) ([]ReadTimeStat, error) {
	recs, err := decodeReadTime(cursors[readTimeCursor])
	if err != nil {
		return nil, err
	}
	return statsOf(recs), nil
}

// ReadTimeStamped returns, per file and stream, the entries read from a
// backlog that carry their read time instead of a time from the line, as
// far as they have been handed to the store (and counted since the store
// was created, less spans retention has dropped).
func (in *Ingester) ReadTimeStamped() []ReadTimeStat {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.readTime)
}

// ReadTimeByFile sums stats per file, for a summary such as health's.
func ReadTimeByFile(stats []ReadTimeStat) []ReadTimeStat {
	by := map[string]*ReadTimeStat{}
	for _, s := range stats {
		have := by[s.Path]
		if have == nil {
			cp := s
			cp.Labels = nil
			by[s.Path] = &cp
			continue
		}
		have.Entries += s.Entries
		if s.From.Before(have.From) {
			have.From = s.From
		}
		if s.To.After(have.To) {
			have.To = s.To
		}
	}
	out := make([]ReadTimeStat, 0, len(by))
	for _, p := range slices.Sorted(maps.Keys(by)) {
		out = append(out, *by[p])
	}
	return out
}

// DescribeReadTime says, per file, how many entries carry their read time.
func DescribeReadTime(stats []ReadTimeStat) []string {
	files := ReadTimeByFile(stats)
	names := shortNames(files)
	var out []string
	for _, s := range files {
		out = append(out, fmt.Sprintf("%d entries from %s carry their read time (no timestamp in the line), read %s: counts and rates put them there, not when they were written",
			s.Entries, names[s.Path], fmtSpan(s.From, s.To, "and")))
	}
	return out
}

// shortNames names each file by the fewest trailing path elements that
// tell it from the others (host-1/access.log, host-2/access.log).
func shortNames(files []ReadTimeStat) map[string]string {
	out := make(map[string]string, len(files))
	for depth := 1; len(out) < len(files) && depth <= maxNameDepth; depth++ {
		count := map[string]int{}
		for _, f := range files {
			count[lastElems(f.Path, depth)]++
		}
		for _, f := range files {
			if n := lastElems(f.Path, depth); out[f.Path] == "" && (count[n] == 1 || n == f.Path) {
				out[f.Path] = n
			}
		}
	}
	for _, f := range files {
		if out[f.Path] == "" {
			out[f.Path] = f.Path // the same path twice: cannot happen, by construction
		}
	}
	return out
}

// maxNameDepth bounds shortNames' search.
const maxNameDepth = 64

// lastElems is the last n elements of a slash-separated path (all of it
// when it has fewer).
func lastElems(p string, n int) string {
	i := len(p)
	for ; n > 0; n-- {
		if i = strings.LastIndexByte(p[:max(i, 0)], '/'); i < 0 {
			return p
		}
	}
	return p[i+1:]
}

// ReadTimeWarnings says which files' read-time spans a query over [start,
// end] overlaps, for the streams its selectors match.
func ReadTimeWarnings(stats []ReadTimeStat, expr syntax.Expr, start, end time.Time) []string {
	if len(stats) == 0 {
		return nil
	}
	return readTimeWarnings(stats, syntax.Selectors(expr), start, end)
}

// readTimeWarnings: a stream matches a selector when it satisfies all its
// matchers.
func readTimeWarnings(stats []ReadTimeStat, selectors [][]*labels.Matcher, start, end time.Time) []string {
	var hit []ReadTimeStat
	for _, s := range stats {
		if s.To.Before(start) || s.From.After(end) || !matchesAny(s.Labels, selectors) {
			continue
		}
		hit = append(hit, s)
	}
	if len(hit) == 0 {
		return nil
	}
	files := ReadTimeByFile(hit)
	names := shortNames(files)
	parts := make([]string, 0, len(files))
	var n int64
	for _, f := range files {
		n += f.Entries
		parts = append(parts, fmt.Sprintf("%d from %s, read %s", f.Entries, names[f.Path], fmtSpan(f.From, f.To, "to")))
	}
	return []string{fmt.Sprintf("%d entries in this range carry the time they were read, not a time from the line (none was found in it), because they were caught up on from a backlog: %s. Counts and rates show when they were read, not when they happened.",
		n, strings.Join(parts, "; "))}
}

func matchesAny(ls labels.Labels, selectors [][]*labels.Matcher) bool {
	for _, sel := range selectors {
		ok := true
		for _, m := range sel {
			if !m.Matches(ls.Get(m.Name)) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// fmtSpan is "at T" for a span within one second, else "between A and B"
// (and: "and") or "A to B" (and: "to").
func fmtSpan(from, to time.Time, and string) string {
	a, b := fmtTime(from), fmtTime(to)
	switch {
	case a == b:
		return "at " + a
	case and == "and":
		return "between " + a + " and " + b
	default:
		return a + " " + and + " " + b
	}
}
