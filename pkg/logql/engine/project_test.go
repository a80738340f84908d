package engine

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

// projectionStore has streams whose lines mix logfmt (some malformed, some
// with values a label filter cannot convert), JSON and free text, and a
// stream label (level, pod) that parsed keys collide with.
func projectionStore(t *testing.T) *memstore.Store {
	t.Helper()
	st := memstore.New()
	for s := 0; s < 4; s++ {
		ls := labels.FromStrings("app", "a", "pod", fmt.Sprintf("p%d", s))
		if s == 3 {
			ls = labels.FromStrings("app", "a", "level", "stream", "pod", "p3")
		}
		es := make([]store.Entry, 300)
		for i := range es {
			var line string
			switch i % 7 {
			case 0, 1:
				line = fmt.Sprintf(`level=info duration=%dms pod=q%d n=%d msg="hello world" path=/api/%d`, i%40, i%3, i, i%5)
			case 2:
				line = fmt.Sprintf(`level=error duration=bad n=%d path=/api/%d`, i, i%2)
			case 3:
				line = fmt.Sprintf(`{"level":"warn","n":%d,"nested":{"a":"x%d"},"duration":"%ds"}`, i, i%2, i%20)
			case 4:
				line = fmt.Sprintf(`level=debug n=%d broken="unterminated`, i)
			case 5:
				line = fmt.Sprintf(`text_len=%d Generating audio level=info`, 37*i%400)
			default:
				line = fmt.Sprintf(`level=warn n=%d 9key=v =odd pod=%d`, i, i%2)
			}
			es[i] = store.Entry{Ts: int64(time.Duration(i) * time.Second), Seq: uint64(i), Line: line}
		}
		if err := st.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{Labels: ls, Entries: es}}}); err != nil {
			t.Fatal(err)
		}
	}
	// app="b" has a parsed key named like the error label.
	es := make([]store.Entry, 300)
	for i := range es {
		line := fmt.Sprintf("level=info n=%d", i)
		if i%10 == 3 {
			line += " __error__=oops __error_details__=why"
		}
		es[i] = store.Entry{Ts: int64(time.Duration(i) * time.Second), Seq: uint64(i), Line: line}
	}
	if err := st.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{Labels: labels.FromStrings("app", "b"), Entries: es}}}); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestProjectionMatchesFull runs queries with parsers extracting only the
// labels the query observes (and prefiltering log queries) and with every
// label extracted: results and errors must be identical, including the
// series a pipeline error names and queries where nothing may be projected.
func TestProjectionMatchesFull(t *testing.T) {
	st := projectionStore(t)
	metric := []string{
		`sum by (level) (count_over_time({app="a"} | logfmt [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt --strict [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt --strict | __error__="" [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt --keep-empty | __error__="" [1m]))`,
		`sum by (audio, pod) (count_over_time({app="a"} | logfmt --keep-empty [1m]))`,
		`sum by (x, level) (count_over_time({app="a"} | label_format x="" [1m]))`,
		`sum by (level) (count_over_time({app="a"} |= "level=info" [1m]))`,
		`sum by (level) (count_over_time({app="b"} | logfmt [1m]))`,
		`sum by (level) (count_over_time({app="b"} | logfmt | drop __error__ [1m]))`,
		`sum by (level) (count_over_time({app="b"} | logfmt | __error__="" [1m]))`,
		`sum by (level) (rate({app="a"} | logfmt | duration > 10ms [1m]))`,
		`sum by (level) (rate({app="a"} | logfmt | duration > 10ms | __error__="" [1m]))`,
		`sum by (level) (rate({app="a"} | logfmt | duration > 10ms | drop __error__, __error_details__ [1m]))`,
		`sum by (level) (rate({app="a"} | logfmt | duration > 10ms | drop __error__ [1m]))`,
		`sum by (pod) (count_over_time({app="a"} | logfmt [1m]))`,
		`sum by (pod_extracted) (count_over_time({app="a"} | logfmt [1m]))`,
		`sum by (level_extracted, level) (count_over_time({app="a"} | logfmt [1m]))`,
		`sum by (_9key) (count_over_time({app="a"} | logfmt [1m]))`,
		`sum by (level) (count_over_time({app="a"} | json [1m]))`,
		`sum by (level) (count_over_time({app="a"} | json | __error__="" [1m]))`,
		`sum by (nested_a) (count_over_time({app="a"} | json | __error__="" [1m]))`,
		`sum by (__error__) (count_over_time({app="a"} | json [1m]))`,
		`sum by (__error_details__) (count_over_time({app="a"} | logfmt --strict [1m]))`,
		`avg_over_time({app="a"} | logfmt | unwrap n [1m]) by (level)`,
		`avg_over_time({app="a"} | logfmt | unwrap duration(duration) | __error__="" [1m]) by (level)`,
		`avg_over_time({app="a"} | logfmt | unwrap duration(duration) [1m]) by (level)`,
		`quantile_over_time(0.9, {app="a"} | logfmt | unwrap n | path="/api/1" [1m]) by (pod)`,
		`sum_over_time({app="a"} | logfmt | unwrap n [1m]) without (path)`,
		`sum by (text_len_bucket) (count_over_time({app="a"} |= "Generating" | regexp "text_len=(?P<text_len>\\d+)" | label_format text_len_bucket="{{ div .text_len 100 }}" [1m]))`,
		`avg_over_time({app="a"} |= "Generating" | regexp "text_len=(?P<text_len>\\d+) (?P<what>\\w+)" | unwrap text_len [1m]) by (pod)`,
		`sum by (b) (count_over_time({app="a"} | logfmt | label_format b=level [1m]))`,
		`sum by (b) (count_over_time({app="a"} | logfmt | label_format b="{{.level}}-{{.path}}" [1m]))`,
		`sum by (b) (count_over_time({app="a"} | logfmt | label_format b="{{ range $k, $v := . }}{{$k}}{{end}}" [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt | line_format "{{.msg}}" | msg="hello world" [1m]))`,
		`sum by (level) (bytes_over_time({app="a"} | logfmt | line_format "{{.path}} {{.n}}" [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt | line_format "{{ . }}" [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt | drop level [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt | drop path="/api/1" [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt | keep path, level="info" [1m]))`,
		`sum by (level, nn) (count_over_time({app="a"} | logfmt | pattern "<_> n=<nn> <_>" [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt | json | __error__="" [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt level, n | n > 10 [1m]))`,
		`max by (level) (max_over_time({app="a"} | logfmt | unwrap n [1m]))`,
		`sum by (level) (avg_over_time({app="a"} | logfmt | unwrap n [1m]))`,
		`sum without (path) (count_over_time({app="a"} | logfmt [1m]))`,
		`count_over_time({app="a"} | logfmt [1m])`,
		`sum(count_over_time({app="a"} | logfmt | level="info" [1m]))`,
		`topk(2, sum by (path) (rate({app="a"} | logfmt [1m])))`,
		`sum by (level) (count_over_time({app="a"} | logfmt | level=~"info|error" or n > 250 [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt | duration > 10ms or duration < 1ms [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt | unpack [1m]))`,
		`sum by (level) (count_over_time({app="a"} | logfmt | decolorize | path!="" [1m]))`,
	}
	logs := []string{
		`{app="a"} | logfmt | duration > 10ms`,
		`{app="a"} | logfmt | duration > 10ms | __error__=""`,
		`{app="a"} | logfmt | level="error"`,
		`{app="a"} | logfmt | level="info"`,
		`{app="a"} | logfmt --strict | level="debug"`,
		`{app="a"} | logfmt --keep-empty | broken=""`,
		`{app="a"} | json | level="warn"`,
		`{app="a"} | json | nested_a="x1"`,
		`{app="a"} | logfmt | n > 100 | line_format "{{.path}}"`,
		`{app="a"} | logfmt | line_format "{{.path}}" |= "api/1"`,
		`{app="a"} |= "Generating" | regexp "text_len=(?P<text_len>\\d+)" | text_len > 150`,
		`{app="a"} | logfmt | level="info" | drop path`,
		`{app="a"} | logfmt | pod_extracted="q1"`,
		`{app="a"} | logfmt`,
		`{app="b"} | logfmt | n > 50`,
	}
	var ps []Params
	for _, q := range metric {
		ps = append(ps,
			Params{Query: q, Start: at(0), End: at(5 * time.Minute), Step: 30 * time.Second},
			Params{Query: q, Start: at(4 * time.Minute), Instant: true})
	}
	for _, q := range logs {
		ps = append(ps,
			Params{Query: q, Start: at(0), End: at(5 * time.Minute), Limit: 5000, Direction: store.Forward},
			Params{Query: q, Start: at(0), End: at(5 * time.Minute), Limit: 7, Direction: store.Backward})
	}
	for _, p := range ps {
		got, gotErr := New(st, Options{}).Query(context.Background(), p)
		full := New(st, Options{})
		full.noProject = true
		want, wantErr := full.Query(context.Background(), p)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%s (instant %v): error\n got %v\nwant %v", p.Query, p.Instant, gotErr, wantErr)
			continue
		}
		if wantErr != nil {
			continue
		}
		got.Stats, want.Stats = Stats{}, Stats{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s (instant %v): projected result differs\n got %+v\nwant %+v", p.Query, p.Instant, got, want)
		}
		if len(want.Matrix)+len(want.Vector)+len(want.Streams) == 0 {
			t.Errorf("%s (instant %v): empty result proves nothing", p.Query, p.Instant)
		}
	}
}
