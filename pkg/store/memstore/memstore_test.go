package memstore

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// row is one entry as a test reads it back.
type row struct {
	Stream string
	Ts     int64
	Seq    uint64
	Line   string
}

// fixture holds two streams; a's entries arrive out of order and one of
// them only in a second batch.
func fixture(t *testing.T) *Store {
	t.Helper()
	st := New()
	a := labels.FromStrings("job", "app", "file", "a.log")
	b := labels.FromStrings("job", "app", "file", "b.log")
	ctx := context.Background()
	if err := st.Append(ctx, store.AppendBatch{Streams: []store.StreamEntries{
		{Labels: a, Entries: []store.Entry{{Ts: 30, Seq: 3, Line: "a3 error"}, {Ts: 10, Seq: 1, Line: "a1"}}},
		{Labels: b, Entries: []store.Entry{{Ts: 20, Seq: 1, Line: "b1"}}},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Append(ctx, store.AppendBatch{Streams: []store.StreamEntries{
		{Labels: a, Entries: []store.Entry{{Ts: 20, Seq: 2, Line: "a2"}}},
	}}); err != nil {
		t.Fatal(err)
	}
	return st
}

func readAll(t *testing.T, its []store.StreamIterator) []row {
	t.Helper()
	var out []row
	for _, it := range its {
		for it.Next() {
			b := it.At()
			for i := range b.Ts {
				r := row{Stream: it.Labels().Get("file"), Ts: b.Ts[i], Seq: b.Seq[i]}
				if b.Lines != nil {
					r.Line = b.Lines[i]
				}
				out = append(out, r)
			}
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestSelect(t *testing.T) {
	app := labels.MustNewMatcher(labels.MatchEqual, "job", "app")
	onlyB := labels.MustNewMatcher(labels.MatchEqual, "file", "b.log")
	for _, tc := range []struct {
		name string
		p    store.SelectParams
		want []row
	}{
		{"forward, streams in label order", store.SelectParams{Matchers: []*labels.Matcher{app}, Start: 0, End: 100, Lines: true},
			[]row{{"a.log", 10, 1, "a1"}, {"a.log", 20, 2, "a2"}, {"a.log", 30, 3, "a3 error"}, {"b.log", 20, 1, "b1"}}},
		{"backward", store.SelectParams{Matchers: []*labels.Matcher{app}, Start: 0, End: 100, Direction: store.Backward, Lines: true},
			[]row{{"a.log", 30, 3, "a3 error"}, {"a.log", 20, 2, "a2"}, {"a.log", 10, 1, "a1"}, {"b.log", 20, 1, "b1"}}},
		{"half-open range", store.SelectParams{Matchers: []*labels.Matcher{app}, Start: 20, End: 30, Lines: true},
			[]row{{"a.log", 20, 2, "a2"}, {"b.log", 20, 1, "b1"}}},
		{"without lines", store.SelectParams{Matchers: []*labels.Matcher{onlyB}, Start: 0, End: 100},
			[]row{{"b.log", 20, 1, ""}}},
		{"hint prunes blocks without the literal", store.SelectParams{Matchers: []*labels.Matcher{app}, Start: 0, End: 100, Lines: true,
			Hint: &store.LineFilterHint{Groups: [][]string{{"error"}}}},
			[]row{{"a.log", 10, 1, "a1"}, {"a.log", 20, 2, "a2"}, {"a.log", 30, 3, "a3 error"}}},
		{"nothing in range", store.SelectParams{Matchers: []*labels.Matcher{app}, Start: 40, End: 100, Lines: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := fixture(t)
			its, err := st.Select(context.Background(), tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, its); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
			if len(st.SelectCalls) != 1 || !reflect.DeepEqual(st.SelectCalls[0], tc.p) {
				t.Errorf("SelectCalls = %v, want just %v", st.SelectCalls, tc.p)
			}
		})
	}
}

func TestSelectStatsAndBlocks(t *testing.T) {
	st := New()
	es := make([]store.Entry, 2*blockSize+1)
	for i := range es {
		es[i] = store.Entry{Ts: int64(i), Seq: uint64(i), Line: fmt.Sprintf("line %d", i)}
	}
	es[len(es)-1].Line = "needle"
	if err := st.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{Labels: labels.FromStrings("job", "x"), Entries: es}}}); err != nil {
		t.Fatal(err)
	}
	c := &store.StatsCollector{}
	ctx := store.WithStats(context.Background(), c)
	its, err := st.Select(ctx, store.SelectParams{Start: 0, End: int64(len(es)), Lines: true, Hint: &store.LineFilterHint{Groups: [][]string{{"needle"}}}})
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, its)
	if len(got) != 1 || got[0].Line != "needle" {
		t.Errorf("got %v, want the needle's block only", got)
	}
	want := store.Stats{Streams: 1, BlocksTotal: 3, BlocksSkipped: 2, BlocksRead: 1, EntriesScanned: 1, BytesScanned: int64(len("needle"))}
	if s := c.Snapshot(); s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
}

func TestSelectStopsWithContext(t *testing.T) {
	st := fixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	its, err := st.Select(ctx, store.SelectParams{Start: 0, End: 100, Lines: true})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if its[0].Next() {
		t.Fatal("Next after cancel returned a batch")
	}
	if its[0].Err() != context.Canceled {
		t.Errorf("Err = %v, want context.Canceled", its[0].Err())
	}
}

func TestBoundsAndAppendErrors(t *testing.T) {
	st := New()
	if _, _, ok := st.Bounds(); ok {
		t.Error("an empty store has bounds")
	}
	err := st.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{
		{Labels: labels.FromStrings("job", "x"), Entries: []store.Entry{{Ts: 5}}},
		{Entries: []store.Entry{{Ts: 1}}},
	}})
	if err == nil {
		t.Fatal("a stream without labels was accepted")
	}
	if _, _, ok := st.Bounds(); ok {
		t.Error("a refused batch left entries behind")
	}
	st = fixture(t)
	if lo, hi, ok := st.Bounds(); !ok || lo != 10 || hi != 30 {
		t.Errorf("Bounds = %d, %d, %v; want 10, 30, true", lo, hi, ok)
	}
}

func TestAppendCopiesEntries(t *testing.T) {
	st := New()
	es := []store.Entry{{Ts: 2, Line: "second"}, {Ts: 1, Line: "first"}}
	if err := st.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{{Labels: labels.FromStrings("job", "x"), Entries: es}}}); err != nil {
		t.Fatal(err)
	}
	if es[0].Line != "second" {
		t.Error("Append reordered the caller's entries")
	}
}

func TestLabelsAndStreams(t *testing.T) {
	st := fixture(t)
	ctx := context.Background()
	onlyB := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "file", "b.log")}
	for _, tc := range []struct {
		name string
		got  func() (any, error)
		want any
	}{
		{"streams", func() (any, error) { return st.Streams(ctx, nil, 0, 100) },
			[]labels.Labels{labels.FromStrings("job", "app", "file", "a.log"), labels.FromStrings("job", "app", "file", "b.log")}},
		{"streams by range", func() (any, error) { return st.Streams(ctx, nil, 25, 100) },
			[]labels.Labels{labels.FromStrings("job", "app", "file", "a.log")}},
		{"label names", func() (any, error) { return st.LabelNames(ctx, 0, 100) }, []string{"file", "job"}},
		{"label names out of range", func() (any, error) { return st.LabelNames(ctx, 50, 100) }, []string{}},
		{"label values", func() (any, error) { return st.LabelValues(ctx, "file", nil, 0, 100) }, []string{"a.log", "b.log"}},
		{"label values matched", func() (any, error) { return st.LabelValues(ctx, "file", onlyB, 0, 100) }, []string{"b.log"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.got()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
