package push

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want store.AppendBatch
	}{
		{
			name: "two streams, lines kept byte for byte",
			in: `{"streams":[{"stream":{"job":"a","level":"info"},"values":[["2","two"],["1","one \u001b[31mred\u001b[0m\nsecond line"]]},
			              {"stream":{"job":"b"},"values":[["5","x"]]}]}`,
			want: store.AppendBatch{Streams: []store.StreamEntries{
				{Labels: labels.FromStrings("job", "a", "level", "info"), Entries: []store.Entry{
					{Ts: 2, Seq: 0, Line: "two"}, {Ts: 1, Seq: 1, Line: "one \x1b[31mred\x1b[0m\nsecond line"}}},
				{Labels: labels.FromStrings("job", "b"), Entries: []store.Entry{{Ts: 5, Seq: 0, Line: "x"}}},
			}},
		},
		{
			name: "a stream repeated continues its Seq",
			in:   `{"streams":[{"stream":{"job":"a"},"values":[["1","a"]]},{"stream":{"job":"a"},"values":[["1","b"]]}]}`,
			want: store.AppendBatch{Streams: []store.StreamEntries{
				{Labels: labels.FromStrings("job", "a"), Entries: []store.Entry{{Ts: 1, Seq: 0, Line: "a"}, {Ts: 1, Seq: 1, Line: "b"}}},
			}},
		},
		{
			name: "values before stream, unknown keys ignored",
			in:   `{"extra":[1,2],"streams":[{"values":[["7","v"]],"other":{},"stream":{"job":"a"}}]}`,
			want: store.AppendBatch{Streams: []store.StreamEntries{
				{Labels: labels.FromStrings("job", "a"), Entries: []store.Entry{{Ts: 7, Seq: 0, Line: "v"}}},
			}},
		},
		{
			name: "empty structured metadata is accepted",
			in:   `{"streams":[{"stream":{"job":"a"},"values":[["7","v",{}]]}]}`,
			want: store.AppendBatch{Streams: []store.StreamEntries{
				{Labels: labels.FromStrings("job", "a"), Entries: []store.Entry{{Ts: 7, Seq: 0, Line: "v"}}},
			}},
		},
		{
			name: "structured metadata kept sorted, empty values dropped",
			in:   `{"streams":[{"stream":{"job":"a"},"values":[["7","v",{"trace_id":"t1","a":"b","e":""}]]}]}`,
			want: store.AppendBatch{Streams: []store.StreamEntries{
				{Labels: labels.FromStrings("job", "a"), Entries: []store.Entry{{Ts: 7, Seq: 0, Line: "v", Metadata: labels.FromStrings("a", "b", "trace_id", "t1")}}},
			}},
		},
		{
			name: "no streams",
			in:   `{"streams":[]}`,
			want: store.AppendBatch{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(strings.NewReader(tt.in), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{``, "unexpected end of input"},
		{`[]`, `expected "{"`},
		{`{"streams":[{"stream":{"job":"a"},"values":[["x","line"]]}]}`, `streams[0].values[0]): the timestamp "x" is not Unix nanoseconds`},
		{`{"streams":[{"stream":{"job":"a"},"values":[[1,"line"]]}]}`, `the timestamp must be a string of Unix nanoseconds, found 1`},
		{`{"streams":[{"stream":{"job":"a"},"values":[["1",2]]}]}`, `the line must be a string`},
		{`{"streams":[{"stream":{"job":"a"},"values":[["1"]]}]}`, `found 1 elements`},
		{`{"streams":[{"stream":{"job":"a"},"values":[["1","l",{"trace":1}]]}]}`, `structured metadata must be an object of strings`},
		{`{"streams":[{"stream":{},"values":[]}]}`, `at least one label`},
		{`{"streams":[{"stream":{"1bad":"x"},"values":[]}]}`, `invalid label name "1bad"`},
		{`{"streams":[{"stream":{"job":""},"values":[]}]}`, `label "job" has an empty value`},
		{`{"streams":[{"values":[["1","x"]]}]}`, `missing "stream" labels`},
		{`{"streams":[{"stream":{"job":"a"},"values":[["1","x"]]}]} trailing`, `after the payload`},
		{`{"streams":[{"stream":{"job":"a"},"values":[["1","x"]]}`, `unexpected end of input`},
		{`{"nothing":1}`, `no "streams" key`},
		{`{"streams":{"job":"a"}}`, `expected an array`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.in), Options{})
			if err == nil {
				t.Fatalf("no error for %q", tt.in)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestIgnoreMetadata(t *testing.T) {
	in := `{"streams":[{"stream":{"job":"a"},"values":[["1","l",{"trace":"x"}]]}]}`
	got, err := Decode(strings.NewReader(in), Options{IgnoreMetadata: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Streams) != 1 || got.Streams[0].Entries[0].Line != "l" {
		t.Errorf("got %v", got)
	}
}

func TestRawLabels(t *testing.T) {
	in := `{"streams":[{"stream":{"1bad":"x","job":""},"values":[["1","l"]]}]}`
	got, err := Decode(strings.NewReader(in), Options{RawLabels: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := labels.FromStrings("1bad", "x", "job", ""); len(got.Streams) != 1 || !labels.Equal(got.Streams[0].Labels, want) {
		t.Errorf("got %v, want labels %v", got, want)
	}
}

func TestReadBatches(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"streams":[{"stream":{"job":"a"},"values":[`)
	for i := 0; i < 25; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `["%d","line %d"]`, i, i)
	}
	b.WriteString(`]}]}`)
	var sizes []int
	var seqs []uint64
	err := Read(strings.NewReader(b.String()), Options{BatchEntries: 10}, func(ab store.AppendBatch) error {
		n := 0
		for _, s := range ab.Streams {
			n += len(s.Entries)
			for _, e := range s.Entries {
				seqs = append(seqs, e.Seq)
			}
		}
		sizes = append(sizes, n)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[10 10 5]" {
		t.Errorf("batch sizes %v, want [10 10 5]", sizes)
	}
	for i, s := range seqs {
		if s != uint64(i) {
			t.Fatalf("seq %d at %d", s, i)
		}
	}
	stop := errors.New("stop")
	err = Read(strings.NewReader(b.String()), Options{BatchEntries: 10}, func(store.AppendBatch) error { return stop })
	if !errors.Is(err, stop) || errors.Is(err, ErrInvalid) {
		t.Errorf("emit error not returned as is: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(`{"streams":[{"stream":{"job":"a"},"values":[["1","x"],["2","y",{}]]}]}`)
	f.Add(`{"streams":[{"values":[["1","x"]],"stream":{"a":"b","c":"d"}}]}`)
	f.Add(`{"streams":null}`)
	f.Fuzz(func(t *testing.T, in string) {
		n := 0
		err := Read(strings.NewReader(in), Options{BatchEntries: 3}, func(b store.AppendBatch) error {
			for _, s := range b.Streams {
				if len(s.Labels) == 0 {
					t.Fatalf("stream without labels from %q", in)
				}
				n += len(s.Entries)
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v is not ErrInvalid", err)
		}
	})
}
