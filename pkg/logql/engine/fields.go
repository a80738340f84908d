package engine

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

const (
	// DefaultFieldLines is how many recent lines detected fields sample
	// (Loki's line_limit default).
	DefaultFieldLines = 1000
	// maxFieldStreams bounds how many streams a field detection samples
	// (one query each).
	maxFieldStreams = 500
	// maxFieldValues caps the distinct values kept per field: cardinality
	// is reported as "at least" this many beyond it.
	maxFieldValues = 1000
)

// DetectedField is one field a json or logfmt parser extracts from the
// sampled lines of a query (an entry of Loki's /detected_fields body).
type DetectedField struct {
	Label       string
	Type        string // string, int, float, boolean, duration or bytes
	Cardinality uint64
	Parsers     []string // json, logfmt
}

// fieldAcc accumulates one field's values.
type fieldAcc struct {
	values  map[string]struct{}
	types   map[string]int
	parsers map[string]struct{}
}

// DetectedFields samples up to lineLimit of the newest lines of every
// stream a log query reads and reports the fields a json or logfmt parser
// would extract from them, with their type and cardinality, in name order,
// at most fieldLimit of them (none when fieldLimit <= 0).
func (e *Engine) DetectedFields(ctx context.Context, query string, start, end int64, lineLimit, fieldLimit int) ([]DetectedField, error) {
	acc := map[string]*fieldAcc{}
	err := e.sampleFields(ctx, query, start, end, lineLimit, func(name, value, parser string) {
		a := acc[name]
		if a == nil {
			a = &fieldAcc{values: map[string]struct{}{}, types: map[string]int{}, parsers: map[string]struct{}{}}
			acc[name] = a
		}
		if len(a.values) < maxFieldValues {
			a.values[value] = struct{}{}
		}
		a.types[valueType(value)]++
		a.parsers[parser] = struct{}{}
	})
	if err != nil {
		return nil, err
	}
	out := []DetectedField{}
	for name, a := range acc {
		f := DetectedField{Label: name, Type: fieldType(a.types), Cardinality: uint64(len(a.values))}
		for p := range a.parsers {
			f.Parsers = append(f.Parsers, p)
		}
		sort.Strings(f.Parsers)
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	if len(out) > max(fieldLimit, 0) {
		out = out[:max(fieldLimit, 0)]
	}
	return out, nil
}

// DetectedFieldValues samples the lines as DetectedFields does and returns
// the distinct values of one field, sorted, at most limit of them (Loki's
// /detected_field/<name>/values).
func (e *Engine) DetectedFieldValues(ctx context.Context, query, field string, start, end int64, lineLimit, limit int) ([]string, error) {
	if field == "" {
		return nil, queryErr(ErrBadQuery, "detected field values need a field name")
	}
	seen := map[string]struct{}{}
	err := e.sampleFields(ctx, query, start, end, lineLimit, func(name, value, _ string) {
		if name == field {
			seen[value] = struct{}{}
		}
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	if len(out) > max(limit, 0) {
		out = out[:max(limit, 0)]
	}
	return out, nil
}

// sampleFields samples a log query's lines (see sampleStreams) and calls
// found for every field a json parser (lines starting with '{') or a logfmt
// parser (any other line) extracts, leaving out the labels a line's stream
// already carries and lines the parser fails on.
func (e *Engine) sampleFields(ctx context.Context, query string, start, end int64, lineLimit int, found func(name, value, parser string)) error {
	expr, err := syntax.ParseExpr(strings.TrimSpace(query))
	if err != nil {
		return err
	}
	sel, ok := expr.(syntax.LogSelectorExpr)
	if !ok {
		return fmt.Errorf("detected_fields needs a log query, not a metric query")
	}
	sample, err := e.sampleStreams(ctx, sel, start, end, lineLimit)
	if err != nil {
		return err
	}
	parsers := []struct {
		name  string
		stage log.Stage
	}{
		{"json", log.NewJSONParser()},
		{"logfmt", log.NewLogfmtParser(log.LogfmtOptions{})},
	}
	pipes := map[string][]*log.StreamPipeline{} // by result stream
	for _, s := range sample {
		key := s.labels.String()
		ps := pipes[key]
		if ps == nil {
			ps = make([]*log.StreamPipeline, len(parsers))
			for i, p := range parsers {
				ps[i] = log.NewPipeline(p.stage).ForStream(s.labels)
			}
			pipes[key] = ps
		}
		i := 1
		if t := strings.TrimSpace(s.Line); strings.HasPrefix(t, "{") {
			i = 0
		}
		_, ls, _, ok := ps[i].ProcessString(s.Ts, s.Line)
		if !ok || ls.Has("__error__") {
			continue
		}
		for _, l := range ls {
			if s.labels.Has(l.Name) && s.labels.Get(l.Name) == l.Value {
				continue
			}
			found(l.Name, l.Value, parsers[i].name)
		}
	}
	return nil
}

// sampledEntry is one line of a field sample with the labels of the
// result stream it came out of the query's pipeline in.
type sampledEntry struct {
	Entry
	labels labels.Labels
}

// sampleStreams returns up to limit lines of a log query, shared out among
// the stored streams it reads, newest first within each: a stream of many
// recent plain lines (timestamp-less access lines all stamped at ingest
// time, say) must not hide a quieter structured stream. Every stream gets
// an equal quota; what quieter streams leave unused goes once more to the
// streams that filled theirs, and the lines are taken round-robin by age
// rank. At most maxFieldStreams streams (in label order) are sampled.
func (e *Engine) sampleStreams(ctx context.Context, sel syntax.LogSelectorExpr, start, end int64, limit int) ([]sampledEntry, error) {
	sets, err := e.r.Streams(ctx, sel.Matchers(), start, end)
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
		res, err := e.Query(ctx, Params{Expr: withMatchers(sel, ms), Start: time.Unix(0, start), End: time.Unix(0, end), Limit: min(n, DefaultMaxEntriesLimit), Direction: store.Backward})
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
			if len(s) == quota[i] && quota[i] < DefaultMaxEntriesLimit {
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
	if _, err := log.ParseBytes(v); err == nil && strings.IndexFunc(v, func(r rune) bool { return r >= 'A' && r <= 'z' }) >= 0 {
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
