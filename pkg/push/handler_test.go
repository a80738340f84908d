package push

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/push/pushpb"
	"github.com/lokal-logs/lokal/pkg/store"
)

// t0 is the time of the tests' entries.
var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

type fixture struct {
	t   *testing.T
	dir string
	st  *store.Store
	h   http.Handler
	eng *engine.Engine
}

// fixedClock makes the handler's now t0, so the tests do not age.
func fixedClock(opts HandlerOptions) HandlerOptions {
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	return opts
}

func newFixture(t *testing.T, opts HandlerOptions) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	f.open(opts)
	t.Cleanup(func() { _ = f.st.Close() })
	return f
}

func (f *fixture) open(opts HandlerOptions) {
	f.t.Helper()
	st, err := store.Open(f.dir, store.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.st, f.h, f.eng = st, NewHandler(st, fixedClock(opts)), engine.New(st, engine.Options{})
}

// reopen closes the store (committing the head) and opens it with a new
// handler, as a restarted server would.
func (f *fixture) reopen(opts HandlerOptions) {
	f.t.Helper()
	if err := f.st.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open(opts)
}

// do sends a push and returns the status and body.
func (f *fixture) do(ctype, enc string, body io.Reader) (int, string) {
	f.t.Helper()
	return doPush(f.h, ctype, enc, body)
}

func doPush(h http.Handler, ctype, enc string, body io.Reader) (int, string) {
	req := httptest.NewRequest(http.MethodPost, "/loki/api/v1/push", body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func protoBody(t testing.TB, r *pushpb.PushRequest) []byte {
	t.Helper()
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return pushpb.EncodeSnappy(nil, b)
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// got is a query's entries as "labels line" strings in time order.
func (f *fixture) query(q string) []string {
	f.t.Helper()
	res, err := f.eng.Query(context.Background(), engine.Params{Query: q, Start: t0.Add(-48 * time.Hour), End: t0.Add(48 * time.Hour), Limit: 1000})
	if err != nil {
		f.t.Fatalf("query %s: %v", q, err)
	}
	type row struct {
		ts  int64
		seq uint64
		s   string
	}
	var rows []row
	for _, s := range res.Streams {
		for _, e := range s.Entries {
			rows = append(rows, row{e.Ts, e.Seq, fmt.Sprintf("%s %s %s", time.Unix(0, e.Ts).UTC().Format("15:04:05.000"), s.Labels, e.Line)})
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		if a.ts != b.ts {
			return int(a.ts - b.ts)
		}
		return strings.Compare(a.s, b.s)
	})
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.s
	}
	return out
}

func (f *fixture) want(q string, want ...string) {
	f.t.Helper()
	got := f.query(q)
	if !slices.Equal(got, want) {
		f.t.Errorf("%s:\n got %s\nwant %s", q, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func TestPushRoundTrip(t *testing.T) {
	jsonBody := fmt.Sprintf(`{"streams":[{"stream":{"job":"a"},"values":[["%d","level=error msg=boom"],["%d","hello",{"trace_id":"t1"}]]}]}`,
		t0.UnixNano(), t0.Add(time.Second).UnixNano())
	pb := &pushpb.PushRequest{Streams: []pushpb.Stream{{
		Labels: `{job="a"}`,
		Entries: []pushpb.Entry{
			{Timestamp: t0, Line: "level=error msg=boom"},
			{Timestamp: t0.Add(time.Second), Line: "hello", StructuredMetadata: []pushpb.LabelPair{{Name: "trace_id", Value: "t1"}}},
		},
	}}}
	want := []string{
		`10:00:00.000 {detected_level="error", job="a"} level=error msg=boom`,
		`10:00:01.000 {detected_level="unknown", job="a", trace_id="t1"} hello`,
	}
	tests := []struct {
		name, ctype, enc string
		body             []byte
	}{
		{"json", "application/json", "", []byte(jsonBody)},
		{"json with charset", "application/json; charset=utf-8", "", []byte(jsonBody)},
		{"protobuf snappy", "application/x-protobuf", "", protoBody(t, pb)},
		{"protobuf without content type", "", "", protoBody(t, pb)},
		{"gzip json", "application/json", "gzip", gzipped([]byte(jsonBody))},
		{"gzip protobuf", "application/x-protobuf", "gzip", gzipped(protoBody(t, pb))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, HandlerOptions{})
			if code, body := f.do(tt.ctype, tt.enc, bytes.NewReader(tt.body)); code != http.StatusNoContent {
				t.Fatalf("push: %d %s", code, body)
			}
			f.want(`{job="a"}`, want...)
			// Structured metadata is queryable as labels, and survives a
			// restart (the head is committed to blocks).
			f.reopen(HandlerOptions{})
			f.want(`{job="a"} | trace_id="t1"`, want[1])
			f.want(`{job="a"} | logfmt | detected_level="error" | line_format "{{.detected_level}}: {{.msg}}"`, `10:00:00.000 {detected_level="error", job="a", level="error", msg="boom"} error: boom`)
			f.want(`{job="a"} | drop trace_id, detected_level`, `10:00:00.000 {job="a"} level=error msg=boom`, `10:00:01.000 {job="a"} hello`)
		})
	}
}

func TestPushMetricByMetadata(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	pb := &pushpb.PushRequest{Streams: []pushpb.Stream{{Labels: `{job="a"}`}}}
	for i := range 10 {
		line := "INFO all good"
		if i%5 == 0 {
			line = "ERROR broken"
		}
		pb.Streams[0].Entries = append(pb.Streams[0].Entries, pushpb.Entry{Timestamp: t0.Add(time.Duration(i+1) * time.Second), Line: line})
	}
	if code, body := f.do("application/x-protobuf", "", bytes.NewReader(protoBody(t, pb))); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, body)
	}
	for _, q := range []string{
		`sum by (detected_level) (count_over_time({job="a"}[1m]))`,                   // no pipeline: counted without lines
		`sum by (detected_level) (count_over_time({job="a"} |= "" [1m]))`,            // through the pipeline
		`sum by (detected_level) (count_over_time({job="a"} | logfmt [1m]))`,         // through a parser
		`sum by (detected_level) (rate({job="a"} | detected_level=~".+" [1m])) * 60`, // label filter
	} {
		res, err := f.eng.Query(context.Background(), engine.Params{Query: q, Start: t0.Add(time.Minute), Instant: true})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var got []string
		for _, s := range res.Vector {
			got = append(got, fmt.Sprintf("%s=%g", s.Metric, s.V))
		}
		slices.Sort(got)
		if want := []string{`{detected_level="error"}=2`, `{detected_level="info"}=8`}; !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", q, got, want)
		}
	}
}

func TestPushLevelDetection(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	body := fmt.Sprintf(`{"streams":[
		{"stream":{"job":"a","level":"info"},"values":[["%[1]d","ERROR not detected: the stream has a level label"]]},
		{"stream":{"job":"b"},"values":[["%[1]d","plain line",{"severity":"WARNING"}],["%[2]d","x",{"detected_level":"debug"}]]}]}`,
		t0.UnixNano(), t0.Add(time.Second).UnixNano())
	if code, msg := f.do("application/json", "", strings.NewReader(body)); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, msg)
	}
	f.want(`{job=~"a|b"}`,
		`10:00:00.000 {detected_level="warn", job="b", severity="WARNING"} plain line`,
		`10:00:00.000 {job="a", level="info"} ERROR not detected: the stream has a level label`,
		`10:00:01.000 {detected_level="debug", job="b"} x`)
	g := newFixture(t, HandlerOptions{DisableLevelDetection: true})
	if code, msg := g.do("application/json", "", strings.NewReader(body)); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, msg)
	}
	g.want(`{job="b"}`, `10:00:00.000 {job="b", severity="WARNING"} plain line`, `10:00:01.000 {detected_level="debug", job="b"} x`)
}

func jsonPush(stream string, entries ...any) string {
	var vals []string
	for i := 0; i < len(entries); i += 2 {
		vals = append(vals, fmt.Sprintf(`["%d",%q]`, entries[i].(time.Time).UnixNano(), entries[i+1]))
	}
	return fmt.Sprintf(`{"streams":[{"stream":%s,"values":[%s]}]}`, stream, strings.Join(vals, ","))
}

func TestPushDuplicates(t *testing.T) {
	f := newFixture(t, HandlerOptions{DisableLevelDetection: true})
	first := jsonPush(`{"job":"a"}`, t0, "one", t0.Add(time.Second), "two", t0.Add(time.Second), "two", t0.Add(time.Second), "two b")
	for range 2 {
		if code, msg := f.do("application/json", "", strings.NewReader(first)); code != http.StatusNoContent {
			t.Fatalf("push: %d %s", code, msg)
		}
	}
	want := []string{`10:00:00.000 {job="a"} one`, `10:00:01.000 {job="a"} two`, `10:00:01.000 {job="a"} two b`}
	f.want(`{job="a"}`, want...)
	// Older entries repeated (out of order), within one request too.
	older := jsonPush(`{"job":"a"}`, t0.Add(-time.Minute), "older", t0, "one", t0.Add(-time.Minute), "older", t0, "one again")
	if code, msg := f.do("application/json", "", strings.NewReader(older)); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, msg)
	}
	want = append([]string{`09:59:00.000 {job="a"} older`, want[0], `10:00:00.000 {job="a"} one again`}, want[1:]...)
	f.want(`{job="a"}`, want...)
	// After a restart the handler learns the store's newest entries.
	f.reopen(HandlerOptions{DisableLevelDetection: true})
	for _, body := range []string{first, older} {
		if code, msg := f.do("application/json", "", strings.NewReader(body)); code != http.StatusNoContent {
			t.Fatalf("push after restart: %d %s", code, msg)
		}
	}
	f.want(`{job="a"}`, want...)
}

func TestPushOutOfOrder(t *testing.T) {
	f := newFixture(t, HandlerOptions{DisableLevelDetection: true})
	if code, msg := f.do("application/json", "", strings.NewReader(jsonPush(`{"job":"a"}`, t0, "newest"))); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, msg)
	}
	body := jsonPush(`{"job":"a"}`, t0.Add(-59*time.Minute), "within the window", t0.Add(-61*time.Minute), "too far behind", t0.Add(time.Minute), "newer")
	code, msg := f.do("application/json", "", strings.NewReader(body))
	if code != http.StatusBadRequest {
		t.Fatalf("push: %d %s, want 400", code, msg)
	}
	wantMsg := "entry with timestamp 2026-12-06 08:59:00 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2026-12-06T08:59:00Z, oldest acceptable timestamp is: 2026-12-06T09:00:00Z',\n" +
		"user 'fake', total ignored: 1 out of 3 for stream: {job=\"a\"}\n"
	if msg != wantMsg {
		t.Errorf("message:\n%q\nwant\n%q", msg, wantMsg)
	}
	// The window follows the newest entry, even one of the same request.
	f.want(`{job="a"}`, `09:01:00.000 {job="a"} within the window`, `10:00:00.000 {job="a"} newest`, `10:01:00.000 {job="a"} newer`)
}

func TestPushLimits(t *testing.T) {
	long := strings.Repeat("x", DefaultMaxLineSize+1)
	var many []string
	for i := range 16 {
		many = append(many, fmt.Sprintf(`"l%02d":"v"`, i))
	}
	tests := []struct {
		name   string
		ctype  string
		body   []byte
		code   int
		msg    string
		stored []string // what {job="ok"} holds afterwards
	}{
		{
			name:  "line too long, the other stream stored",
			ctype: "application/json",
			body: []byte(fmt.Sprintf(`{"streams":[{"stream":{"job":"a"},"values":[["%d",%q]]},{"stream":{"job":"ok"},"values":[["%d","fine"]]}]}`,
				t0.UnixNano(), long, t0.UnixNano())),
			code:   400,
			msg:    "Max entry size '262144' bytes exceeded for stream '{job=\"a\"}' while adding an entry with length '262145' bytes\n",
			stored: []string{`10:00:00.000 {job="ok"} fine`},
		},
		{
			name:   "too many labels",
			ctype:  "application/json",
			body:   []byte(jsonPush("{"+strings.Join(many, ",")+"}", t0, "x")),
			code:   400,
			msg:    "entry for stream '{l00=\"v\", l01=\"v\", l02=\"v\", l03=\"v\", l04=\"v\", l05=\"v\", l06=\"v\", l07=\"v\", l08=\"v\", l09=\"v\", l10=\"v\", l11=\"v\", l12=\"v\", l13=\"v\", l14=\"v\", l15=\"v\"}' has 16 label names; limit 15\n",
			stored: nil,
		},
		{
			name:  "invalid label name (json)",
			ctype: "application/json",
			body:  []byte(jsonPush(`{"bad-name":"x"}`, t0, "x")),
			code:  400,
			msg:   "Error parsing labels '{bad-name=\"x\"}' with error: invalid label name \"bad-name\"\n",
		},
		{
			name:  "invalid labels (protobuf)",
			ctype: "application/x-protobuf",
			body: protoBody(t, &pushpb.PushRequest{Streams: []pushpb.Stream{
				{Labels: `{bad-name="x"}`, Entries: []pushpb.Entry{{Timestamp: t0, Line: "x"}}},
				{Labels: `{job="ok"}`, Entries: []pushpb.Entry{{Timestamp: t0, Line: "fine"}}},
			}}),
			code:   400,
			msg:    "Error parsing labels '{bad-name=\"x\"}' with error: ",
			stored: []string{`10:00:00.000 {job="ok"} fine`},
		},
		{
			name:  "no labels",
			ctype: "application/json",
			body:  []byte(jsonPush(`{"job":""}`, t0, "x")),
			code:  400,
			msg:   "error at least one label pair is required per stream\n",
		},
		{
			name:  "label value too long",
			ctype: "application/json",
			body:  []byte(jsonPush(fmt.Sprintf(`{"job":%q}`, strings.Repeat("v", 2049)), t0, "x")),
			code:  400,
			msg:   "has label value too long",
		},
		{
			name:  "too old, too new",
			ctype: "application/json",
			body: []byte(fmt.Sprintf(`{"streams":[{"stream":{"job":"ok"},"values":[["%d","old"],["%d","new"],["%d","fine"]]}]}`,
				t0.Add(-8*24*time.Hour).UnixNano(), t0.Add(11*time.Minute).UnixNano(), t0.UnixNano())),
			code: 400,
			msg: "entry for stream '{job=\"ok\"}' has timestamp too old: 2026-11-28T10:00:00Z, oldest acceptable timestamp is: 2026-11-29T10:00:00Z\n" +
				"entry for stream '{job=\"ok\"}' has timestamp too new: 2026-12-06T10:11:00Z\n",
			stored: []string{`10:00:00.000 {job="ok"} fine`},
		},
		{
			name:  "timestamp out of range",
			ctype: "application/x-protobuf",
			body:  protoBody(t, &pushpb.PushRequest{Streams: []pushpb.Stream{{Labels: `{job="a"}`, Entries: []pushpb.Entry{{Timestamp: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), Line: "x"}}}}}),
			code:  400,
			msg:   "outside the range of Unix nanoseconds",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, HandlerOptions{DisableLevelDetection: true})
			code, msg := f.do(tt.ctype, "", bytes.NewReader(tt.body))
			if code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Fatalf("got %d %q, want %d %q", code, msg, tt.code, tt.msg)
			}
			f.want(`{job="ok"}`, tt.stored...)
		})
	}
}

// chunked hides a reader's length, as a chunked request body does.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

// zeros is an endless reader of zero bytes.
type zeros struct{ n atomic.Int64 }

func (z *zeros) Read(p []byte) (int, error) {
	clear(p)
	z.n.Add(int64(len(p)))
	return len(p), nil
}

func TestPushBadBodies(t *testing.T) {
	good, err := (&pushpb.PushRequest{Streams: []pushpb.Stream{{Labels: `{job="a"}`, Entries: []pushpb.Entry{{Timestamp: t0, Line: "kept"}}}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// A snappy header claiming 200 MiB, then nothing.
	bomb := []byte{0x80, 0x80, 0x80, 0x64}
	f := newFixture(t, HandlerOptions{DisableLevelDetection: true})
	if code, msg := f.do("application/x-protobuf", "", bytes.NewReader(pushpb.EncodeSnappy(nil, good))); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, msg)
	}
	hundredMB := bytes.Repeat([]byte{'x'}, 100<<20+1)
	tests := []struct {
		name, ctype, enc string
		body             io.Reader
		code             int
		msg              string
	}{
		{"truncated protobuf", "application/x-protobuf", "", bytes.NewReader(pushpb.EncodeSnappy(nil, good[:len(good)-3])), 400, "push protobuf at byte"},
		{"truncated snappy", "application/x-protobuf", "", bytes.NewReader(pushpb.EncodeSnappy(nil, good)[:5]), 400, "snappy"},
		{"protobuf not snappy", "application/x-protobuf", "", bytes.NewReader(good), 400, "snappy"},
		{"truncated json", "application/json", "", strings.NewReader(`{"streams":[{"stream":{"job":"a"},"values":[["1","x"]`), 400, "unexpected end of input"},
		{"wrong content type", "text/plain", "", strings.NewReader("hello"), 415, "unsupported Content-Type"},
		{"bad content type", "/;;", "", strings.NewReader("hello"), 415, "unsupported Content-Type"},
		{"unknown encoding", "application/json", "br", strings.NewReader("{}"), 415, `Content-Encoding "br" not supported`},
		{"gzip header broken", "application/json", "gzip", strings.NewReader("not gzip"), 400, "gzip body"},
		{"100 MB body", "application/x-protobuf", "", bytes.NewReader(hundredMB), 413, "request body too large"},
		{"100 MB chunked body", "application/x-protobuf", "", chunked{bytes.NewReader(hundredMB)}, 413, "request body too large"},
		{"100 MB gzip bomb", "application/x-protobuf", "gzip", bytes.NewReader(gzipped(hundredMB)), 413, "request body too large"},
		{"100 MB json line", "application/json", "", io.MultiReader(strings.NewReader(`{"streams":[{"stream":{"job":"a"},"values":[["1","`), bytes.NewReader(hundredMB), strings.NewReader(`"]]}]}`)), 413, "request body too large"},
		{"100 MB gzip json", "application/json", "gzip", io.MultiReader(bytes.NewReader(gzipped([]byte(`{"streams":[{"stream":{"job":"a"},"values":[["1","` + string(hundredMB) + `"]]}]}`)))), 413, "request body too large"},
		{"snappy bomb", "application/x-protobuf", "", bytes.NewReader(bomb), 413, "decompressed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := f.do(tt.ctype, tt.enc, tt.body)
			if code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Fatalf("got %d %q, want %d %q", code, msg, tt.code, tt.msg)
			}
		})
	}
	// An endless body is cut at the limit, not read to the end.
	z := &zeros{}
	if code, msg := f.do("application/x-protobuf", "", chunked{io.LimitReader(z, 1<<40)}); code != 413 {
		t.Errorf("endless body: %d %q", code, msg)
	}
	if n := z.n.Load(); n > DefaultMaxBodyBytes+1<<20 {
		t.Errorf("read %d bytes of an endless body", n)
	}
	req := httptest.NewRequest(http.MethodGet, "/loki/api/v1/push", nil)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
	f.want(`{job="a"}`, `10:00:00.000 {job="a"} kept`)
}

// failing fails its first n appends as a full disk does.
type failing struct {
	store.Appender
	n int
}

func (f *failing) Append(ctx context.Context, b store.AppendBatch) error {
	if f.n > 0 {
		f.n--
		return fmt.Errorf("%w: the head is full and commits fail: no space left on device", store.ErrPaused)
	}
	return f.Appender.Append(ctx, b)
}

func TestPushStoreFailure(t *testing.T) {
	f := newFixture(t, HandlerOptions{DisableLevelDetection: true})
	if code, msg := f.do("application/json", "", strings.NewReader(jsonPush(`{"job":"a"}`, t0, "before"))); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, msg)
	}
	fa := &failing{Appender: f.st, n: 1}
	h := NewHandler(fa, fixedClock(HandlerOptions{DisableLevelDetection: true, Reader: f.st}))
	body := jsonPush(`{"job":"a"}`, t0.Add(time.Second), "during", t0, "before")
	code, msg := doPush(h, "application/json", "", strings.NewReader(body))
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "store paused") || !strings.Contains(msg, "nothing of this push was stored") {
		t.Fatalf("got %d %q, want 503", code, msg)
	}
	f.want(`{job="a"}`, `10:00:00.000 {job="a"} before`)
	// The client retries: the entries the failed push carried are not
	// mistaken for duplicates.
	if code, msg := doPush(h, "application/json", "", strings.NewReader(body)); code != http.StatusNoContent {
		t.Fatalf("retry: %d %s", code, msg)
	}
	f.want(`{job="a"}`, `10:00:00.000 {job="a"} before`, `10:00:01.000 {job="a"} during`)
}

func TestPushStoreClosed(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	code, msg := f.do("application/json", "", strings.NewReader(jsonPush(`{"job":"a"}`, t0, "x")))
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "store closed") {
		t.Fatalf("got %d %q, want 503", code, msg)
	}
	f.open(HandlerOptions{})
}

// TestPushMetadataCollision: structured metadata named like a stream label
// is job_extracted in log and metric queries alike, with or without a
// pipeline.
func TestPushMetadataCollision(t *testing.T) {
	f := newFixture(t, HandlerOptions{DisableLevelDetection: true})
	body := fmt.Sprintf(`{"streams":[{"stream":{"job":"a"},"values":[["%d","x",{"job":"m"}]]}]}`, t0.Add(time.Second).UnixNano())
	if code, msg := f.do("application/json", "", strings.NewReader(body)); code != http.StatusNoContent {
		t.Fatalf("push: %d %s", code, msg)
	}
	f.want(`{job="a"}`, `10:00:01.000 {job="a", job_extracted="m"} x`)
	for _, q := range []string{
		`sum by (job, job_extracted) (count_over_time({job="a"}[1m]))`,
		`sum by (job, job_extracted) (count_over_time({job="a"} |= "x" [1m]))`,
	} {
		res, err := f.eng.Query(context.Background(), engine.Params{Query: q, Start: t0.Add(time.Minute), Instant: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Vector) != 1 || res.Vector[0].Metric.String() != `{job="a", job_extracted="m"}` || res.Vector[0].V != 1 {
			t.Errorf("%s = %v", q, res.Vector)
		}
	}
}
