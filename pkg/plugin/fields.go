package plugin

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	logqllog "github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

const (
	// defaultFieldLines is how many recent lines detected_fields samples
	// (Loki's line_limit default).
	defaultFieldLines = 1000
	// maxFieldLines bounds line_limit so the call stays interactive.
	maxFieldLines = 10000
	// maxFieldStreams bounds how many streams detected_fields samples
	// (one query each).
	maxFieldStreams = 500
	// maxFieldValues caps the distinct values kept per field: cardinality
	// is reported as "at least" this many beyond it.
	maxFieldValues = 1000
)

// indexStats is Loki's /index/stats body: what a query would touch.
type indexStats struct {
	Streams int   `json:"streams"`
	Chunks  int   `json:"chunks"`
	Bytes   int64 `json:"bytes"`
	Entries int64 `json:"entries"`
}

// statsFor counts the streams, blocks, entries and line bytes a query's
// stream selectors touch in [start, end). A metric or binary query
// contributes every selector in it, as Grafana's Loki datasource does; a
// stream two selectors match counts once. It reads timestamps and sizes
// only, never lines.
func statsFor(ctx context.Context, r store.Reader, query string, start, end int64) (indexStats, error) {
	sels, err := querySelectors(query)
	if err != nil {
		return indexStats{}, err
	}
	var col store.StatsCollector
	ctx = store.WithStats(ctx, &col)
	var out indexStats
	seen := map[string]bool{}
	for _, ms := range sels {
		its, err := r.Select(ctx, store.SelectParams{Matchers: ms, Start: start, End: end, Direction: store.Forward})
		if err != nil {
			return indexStats{}, err
		}
		for i, it := range its {
			key := it.Labels().String()
			if seen[key] {
				// Counted under an earlier selector. Closed unread, it
				// adds no block to what was read below.
				if err := it.Close(); err != nil {
					closeIters(its[i+1:])
					return indexStats{}, err
				}
				continue
			}
			seen[key] = true
			out.Streams++
			for it.Next() {
				b := it.At()
				out.Entries += int64(len(b.Ts))
				for _, s := range b.Sizes {
					out.Bytes += int64(s)
				}
			}
			err := it.Err()
			if cerr := it.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				closeIters(its[i+1:])
				return indexStats{}, err
			}
		}
	}
	// With no line filter every block of a stream read to its end is
	// read, or found corrupt, exactly once: that counts the blocks of the
	// streams above, and none of the duplicates closed unread.
	s := col.Snapshot()
	out.Chunks = s.BlocksRead + s.BlocksSkipped + s.BlocksCorrupt
	return out, nil
}

// querySelectors returns the matchers of every stream selector in a log,
// metric or binary query, in source order. A query without any (such as
// vector(1)) has none, and touches nothing.
func querySelectors(query string) ([][]*labels.Matcher, error) {
	query = strings.TrimSpace(query)
	if query == "" {
		return nil, fmt.Errorf("empty query: want a LogQL query such as {job=\"cosyvoice3\"}")
	}
	expr, err := syntax.ParseExpr(query)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	return syntax.Selectors(expr), nil
}

func closeIters(its []store.StreamIterator) {
	for _, it := range its {
		_ = it.Close()
	}
}

// detectedField is one entry of Loki's /detected_fields body.
type detectedField struct {
	Label       string   `json:"label"`
	Type        string   `json:"type"`
	Cardinality int      `json:"cardinality"`
	Parsers     []string `json:"parsers"`
}

type detectedFields struct {
	Fields []detectedField `json:"fields"`
	Limit  int             `json:"limit"`
}

// fieldAcc accumulates one field's values.
type fieldAcc struct {
	values  map[string]struct{}
	types   map[string]int
	parsers map[string]struct{}
}

// detectFields samples the newest lines of every stream a log query reads
// and reports the fields a json or logfmt parser would extract from them,
// with their type and cardinality, for Explore's field browser.
func detectFields(ctx context.Context, eng *engine.Engine, r store.Reader, query string, start, end int64, lineLimit, fieldLimit int) (detectedFields, error) {
	expr, err := syntax.ParseExpr(strings.TrimSpace(query))
	if err != nil {
		return detectedFields{}, err
	}
	sel, ok := expr.(syntax.LogSelectorExpr)
	if !ok {
		return detectedFields{}, fmt.Errorf("detected_fields needs a log query, not a metric query")
	}
	sample, err := sampleStreams(ctx, eng, r, sel, start, end, lineLimit)
	if err != nil {
		return detectedFields{}, err
	}
	parsers := []struct {
		name  string
		stage logqllog.Stage
	}{
		{"json", logqllog.NewJSONParser()},
		{"logfmt", logqllog.NewLogfmtParser(logqllog.LogfmtOptions{})},
	}
	pipes := map[string][]*logqllog.StreamPipeline{} // by result stream
	acc := map[string]*fieldAcc{}
	for _, e := range sample {
		key := e.labels.String()
		ps := pipes[key]
		if ps == nil {
			ps = make([]*logqllog.StreamPipeline, len(parsers))
			for i, p := range parsers {
				ps[i] = logqllog.NewPipeline(p.stage).ForStream(e.labels)
			}
			pipes[key] = ps
		}
		i := 1
		if t := strings.TrimSpace(e.Line); strings.HasPrefix(t, "{") {
			i = 0
		}
		_, ls, _, ok := ps[i].ProcessString(e.Ts, e.Line)
		if !ok || ls.Has("__error__") {
			continue
		}
		for _, l := range ls {
			if e.labels.Has(l.Name) && e.labels.Get(l.Name) == l.Value {
				continue
			}
			a := acc[l.Name]
			if a == nil {
				a = &fieldAcc{values: map[string]struct{}{}, types: map[string]int{}, parsers: map[string]struct{}{}}
				acc[l.Name] = a
			}
			if len(a.values) < maxFieldValues {
				a.values[l.Value] = struct{}{}
			}
			a.types[valueType(l.Value)]++
			a.parsers[parsers[i].name] = struct{}{}
		}
	}
	out := detectedFields{Fields: []detectedField{}, Limit: fieldLimit}
	for name, a := range acc {
		f := detectedField{Label: name, Type: fieldType(a.types), Cardinality: len(a.values)}
		for p := range a.parsers {
			f.Parsers = append(f.Parsers, p)
		}
		sort.Strings(f.Parsers)
		out.Fields = append(out.Fields, f)
	}
	sort.Slice(out.Fields, func(i, j int) bool { return out.Fields[i].Label < out.Fields[j].Label })
	if len(out.Fields) > fieldLimit {
		out.Fields = out.Fields[:fieldLimit]
	}
	return out, nil
}

// sampledEntry is one line of a detected_fields sample with the labels of
// the result stream it came out of the query's pipeline in.
type sampledEntry struct {
	engine.Entry
	labels labels.Labels
}

// sampleStreams returns up to limit lines of a log query, shared out among
// the stored streams it reads, newest first within each: a stream of many
// recent plain lines (timestamp-less access lines all stamped at ingest
// time, say) must not hide a quieter structured stream. Every stream gets
// an equal quota; what quieter streams leave unused goes once more to the
// streams that filled theirs, and the lines are taken round-robin by age
// rank. At most maxFieldStreams streams (in label order) are sampled.
func sampleStreams(ctx context.Context, eng *engine.Engine, r store.Reader, sel syntax.LogSelectorExpr, start, end int64, limit int) ([]sampledEntry, error) {
	sets, err := r.Streams(ctx, sel.Matchers(), start, end)
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 || limit <= 0 {
		return nil, nil
	}
	sort.Slice(sets, func(i, j int) bool { return labels.Compare(sets[i], sets[j]) < 0 })
	if len(sets) > maxFieldStreams {
		sets = sets[:maxFieldStreams]
	}
	// Every label name of the matched streams: a stream's own query rules
	// out the others by requiring the names it lacks to be empty.
	names := map[string]bool{}
	for _, ls := range sets {
		for _, l := range ls {
			names[l.Name] = true
		}
	}
	query := func(ls labels.Labels, n int) ([]sampledEntry, error) {
		ms := append([]*labels.Matcher(nil), sel.Matchers()...)
		for _, l := range ls {
			ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
		}
		for name := range names {
			if !ls.Has(name) {
				ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, name, ""))
			}
		}
		res, err := eng.Query(ctx, engine.Params{Expr: withMatchers(sel, ms), Start: time.Unix(0, start), End: time.Unix(0, end), Limit: min(n, engine.DefaultMaxEntriesLimit), Direction: store.Backward})
		if err != nil {
			return nil, err
		}
		var out []sampledEntry
		for _, s := range res.Streams {
			for _, e := range s.Entries {
				out = append(out, sampledEntry{Entry: e, labels: s.Labels})
			}
		}
		// A pipeline may split one stored stream into several result
		// streams: newest first across them.
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].Ts != out[j].Ts {
				return out[i].Ts > out[j].Ts
			}
			return out[i].Seq > out[j].Seq
		})
		return out, nil
	}
	samples := make([][]sampledEntry, len(sets))
	quota := make([]int, len(sets))
	todo := make([]int, len(sets))
	for i := range sets {
		quota[i], todo[i] = (limit+len(sets)-1)/len(sets), i
	}
	for round := 0; round < 2 && len(todo) > 0; round++ {
		for _, i := range todo {
			if samples[i], err = query(sets[i], quota[i]); err != nil {
				return nil, fmt.Errorf("sample %s: %w", sets[i], err)
			}
		}
		left := limit
		var full []int // streams that may hold more
		for i, s := range samples {
			left -= len(s)
			if len(s) == quota[i] && quota[i] < engine.DefaultMaxEntriesLimit {
				full = append(full, i)
			}
		}
		if left <= 0 || len(full) == 0 {
			break
		}
		for _, i := range full {
			quota[i] += (left + len(full) - 1) / len(full)
		}
		todo = full
	}
	var out []sampledEntry
	for rank := 0; len(out) < limit; rank++ {
		took := false
		for _, s := range samples {
			if rank < len(s) && len(out) < limit {
				out = append(out, s[rank])
				took = true
			}
		}
		if !took {
			break
		}
	}
	return out, nil
}

// withMatchers is sel with its stream selector replaced by ms.
func withMatchers(sel syntax.LogSelectorExpr, ms []*labels.Matcher) syntax.LogSelectorExpr {
	m := &syntax.MatcherExpr{Mts: ms}
	if p, ok := sel.(*syntax.PipelineExpr); ok {
		return &syntax.PipelineExpr{Left: m, Stages: p.Stages}
	}
	return m
}

// valueType classifies one value the way Loki's detected fields do.
func valueType(v string) string {
	if v == "true" || v == "false" {
		return "boolean"
	}
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return "int"
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return "float"
	}
	if _, err := time.ParseDuration(v); err == nil {
		return "duration"
	}
	if _, err := logqllog.ParseBytes(v); err == nil && strings.IndexFunc(v, func(r rune) bool { return r >= 'A' && r <= 'z' }) >= 0 {
		return "bytes"
	}
	return "string"
}

// fieldType is the type every value agrees on; ints mixed with floats are
// floats, anything else mixed is a string.
func fieldType(types map[string]int) string {
	if len(types) == 1 {
		for t := range types {
			return t
		}
	}
	if len(types) == 2 && types["int"] > 0 && types["float"] > 0 {
		return "float"
	}
	return "string"
}
