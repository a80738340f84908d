package engine

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// A log query over more streams than the store's default bound holds
// decoded blocks of (200 streams of blocks of about 440 KB decoded, 88 MB
// in all, over a bound of 64 MiB) is answered, not refused, and exactly
// as with no bound, in either direction and with a line filter.
func TestLogQueryManyStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 74 MB of lines")
	}
	const streams, perStream = 200, 2000
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var b store.AppendBatch
	var raw int64
	pad := strings.Repeat("abcdefghij", 32)
	for s := 0; s < streams; s++ {
		es := make([]store.Entry, perStream)
		for i := range es {
			line := fmt.Sprintf("pod=p%d n=%d msg=%q", s, i*7919%perStream, pad[:(i*31+s)%len(pad)])
			es[i] = store.Entry{Ts: int64(time.Duration(i)*time.Second) + int64(s), Seq: uint64(i), Line: line}
			raw += int64(len(line))
		}
		b.Streams = append(b.Streams, store.StreamEntries{Labels: labels.FromStrings("app", "a", "pod", fmt.Sprintf("p%03d", s)), Entries: es})
	}
	if raw+streams*perStream*36 <= store.DefaultMaxDecodedBytes {
		t.Fatalf("%d line bytes decode to less than the default bound: the test passes nothing", raw)
	}
	if err := st.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		query string
		dir   store.Direction
	}{
		{"forward", `{app="a"}`, store.Forward},
		{"backward", `{app="a"}`, store.Backward},
		{"backward with a line filter", `{app="a"} |= "n=1"`, store.Backward},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := Params{Query: tt.query, Start: at(0), End: at(perStream * time.Second), Limit: 1000, Direction: tt.dir}
			got, err := New(st, Options{}).Query(context.Background(), p)
			if err != nil {
				t.Fatalf("with the store's default bound: %v", err)
			}
			want, err := New(boundedReader{st, -1}, Options{}).Query(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, s := range got.Streams {
				n += len(s.Entries)
			}
			if n != 1000 || !got.LimitReached {
				t.Fatalf("%d entries (limit reached: %v), want 1000", n, got.LimitReached)
			}
			if !reflect.DeepEqual(got.Streams, want.Streams) {
				t.Fatalf("streams differ from the unbounded query's")
			}
		})
	}
}
