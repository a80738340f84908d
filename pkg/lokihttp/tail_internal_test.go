package lokihttp

import (
	"reflect"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/store"
)

// TestHubDropped: a subscriber whose buffer is full loses batches; the
// next batch it gets lists the lost entries of the streams it matches.
func TestHubDropped(t *testing.T) {
	api := labels.FromStrings("app", "api")
	worker := labels.FromStrings("app", "worker")
	batch := func(ts int64) []store.StreamEntries {
		return []store.StreamEntries{
			{Labels: api, Entries: []store.Entry{{Ts: ts, Line: "a"}, {Ts: ts + 1, Line: "b"}}},
			{Labels: worker, Entries: []store.Entry{{Ts: ts, Line: "w"}}},
		}
	}
	apiOnly := func(ls labels.Labels) bool { return ls.Get("app") == "api" }
	tests := []struct {
		name        string
		match       func(labels.Labels) bool
		lost        int
		wantMissed  int
		wantDropped []DroppedEntry
	}{
		{name: "none lost", match: apiOnly},
		{name: "matching streams only", match: apiOnly, lost: 2, wantMissed: 2, wantDropped: []DroppedEntry{
			{Labels: api, Ts: 1000}, {Labels: api, Ts: 1001}, {Labels: api, Ts: 2000}, {Labels: api, Ts: 2001}}},
		{name: "all streams", lost: 1, wantMissed: 1, wantDropped: []DroppedEntry{
			{Labels: api, Ts: 1000}, {Labels: api, Ts: 1001}, {Labels: worker, Ts: 1000}}},
		{name: "bounded", match: apiOnly, lost: maxDroppedEntries, wantMissed: maxDroppedEntries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHub()
			defer h.Close()
			ch, cancel := h.SubscribeMatching(tt.match)
			defer cancel()
			for i := 0; i < hubBufferSize; i++ {
				h.Publish(batch(0))
			}
			for i := 1; i <= tt.lost; i++ {
				h.Publish(batch(int64(i) * 1000))
			}
			for i := 0; i < hubBufferSize; i++ {
				if b := <-ch; b.Missed != 0 || b.Dropped != nil {
					t.Fatalf("buffered batch %d reports losses: %+v", i, b)
				}
			}
			h.Publish(batch(99000))
			b := <-ch
			if b.Missed != tt.wantMissed {
				t.Errorf("Missed = %d, want %d", b.Missed, tt.wantMissed)
			}
			if tt.name == "bounded" {
				if len(b.Dropped) != maxDroppedEntries {
					t.Errorf("%d dropped entries reported, want the bound %d", len(b.Dropped), maxDroppedEntries)
				}
			} else if !reflect.DeepEqual(b.Dropped, tt.wantDropped) {
				t.Errorf("Dropped = %+v, want %+v", b.Dropped, tt.wantDropped)
			}
			if b.Streams[0].Entries[0].Ts != 99000 {
				t.Errorf("delivered batch %+v, want the one published last", b.Streams)
			}
			h.Publish(batch(100000))
			if b := <-ch; b.Missed != 0 || b.Dropped != nil {
				t.Errorf("losses reported twice: %+v", b)
			}
		})
	}
}

// TestBacklogRemove: live entries the start query already sent are not
// sent again, each identical entry being removed once.
func TestBacklogRemove(t *testing.T) {
	api := labels.FromStrings("app", "api")
	worker := labels.FromStrings("app", "worker")
	e := func(ts int64, line string) engine.Entry { return engine.Entry{Ts: ts, Line: line} }
	backlog := []engine.Stream{{Labels: api, Entries: []engine.Entry{e(1, "a"), e(2, "b")}}}
	tests := []struct {
		name string
		live [][]engine.Stream
		want [][]engine.Stream
	}{
		{
			name: "overlap removed",
			live: [][]engine.Stream{{{Labels: api, Entries: []engine.Entry{e(2, "b"), e(3, "c")}}}},
			want: [][]engine.Stream{{{Labels: api, Entries: []engine.Entry{e(3, "c")}}}},
		},
		{
			name: "whole stream overlapping disappears",
			live: [][]engine.Stream{{{Labels: api, Entries: []engine.Entry{e(1, "a")}}, {Labels: worker, Entries: []engine.Entry{e(1, "a")}}}},
			want: [][]engine.Stream{{{Labels: worker, Entries: []engine.Entry{e(1, "a")}}}},
		},
		{
			name: "same entry stored again later is new",
			live: [][]engine.Stream{
				{{Labels: api, Entries: []engine.Entry{e(2, "b")}}},
				{{Labels: api, Entries: []engine.Entry{e(2, "b")}}},
			},
			want: [][]engine.Stream{{}, {{Labels: api, Entries: []engine.Entry{e(2, "b")}}}},
		},
		{
			name: "same timestamp other line kept",
			live: [][]engine.Stream{{{Labels: api, Entries: []engine.Entry{e(2, "other")}}}},
			want: [][]engine.Stream{{{Labels: api, Entries: []engine.Entry{e(2, "other")}}}},
		},
		{
			name: "at or after the query end never in the backlog",
			live: [][]engine.Stream{{{Labels: api, Entries: []engine.Entry{e(10, "a")}}}},
			want: [][]engine.Stream{{{Labels: api, Entries: []engine.Entry{e(10, "a")}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			initial := append([]engine.Stream{}, backlog...)
			initial = append(initial, engine.Stream{Labels: api, Entries: []engine.Entry{e(10, "a")}})
			b := newBacklog(initial, 10)
			for i, live := range tt.live {
				got := b.remove(live)
				if len(got) == 0 && len(tt.want[i]) == 0 {
					continue
				}
				if !reflect.DeepEqual(got, tt.want[i]) {
					t.Errorf("batch %d: got %+v, want %+v", i, got, tt.want[i])
				}
			}
		})
	}
}

// TestTailMessage: Loki's tail message shape, with and without dropped
// entries.
func TestTailMessage(t *testing.T) {
	api := labels.FromStrings("app", "api", "level", "info")
	tests := []struct {
		name    string
		streams []engine.Stream
		dropped []DroppedEntry
		want    string
	}{
		{name: "nothing", want: ""},
		{
			name:    "entries only",
			streams: []engine.Stream{{Labels: api, Entries: []engine.Entry{{Ts: 5, Line: "x"}}}},
			want:    `{"streams":[{"stream":{"app":"api","level":"info"},"values":[["5","x"]]}],"dropped_entries":null}`,
		},
		{
			name:    "entries and dropped",
			streams: []engine.Stream{{Labels: api, Entries: []engine.Entry{{Ts: 5, Line: "x"}}}},
			dropped: []DroppedEntry{{Labels: api, Ts: 3}, {Labels: labels.FromStrings("app", "w\"x"), Ts: 4}},
			want: `{"streams":[{"stream":{"app":"api","level":"info"},"values":[["5","x"]]}],` +
				`"dropped_entries":[{"labels":{"app":"api","level":"info"},"timestamp":"3"},{"labels":{"app":"w\"x"},"timestamp":"4"}]}`,
		},
		{
			name:    "dropped only",
			dropped: []DroppedEntry{{Labels: api, Ts: 1700000000123456789}},
			want:    `{"streams":[],"dropped_entries":[{"labels":{"app":"api","level":"info"},"timestamp":"1700000000123456789"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tailMessage(tt.streams, tt.dropped)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
