package lokihttp_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/lokihttp"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

type tailMessage struct {
	Streams []struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	} `json:"streams"`
}

func receive(t *testing.T, ws *websocket.Conn) tailMessage {
	t.Helper()
	if err := ws.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var raw string
	if err := websocket.Message.Receive(ws, &raw); err != nil {
		t.Fatalf("receive: %v", err)
	}
	var m tailMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return m
}

// dialTail serves the fixture with a hub and opens a tail of
// {app="api"} |= "line" from t0; cleanup closes everything.
func dialTail(t *testing.T) (*memstore.Store, *lokihttp.Hub, *websocket.Conn) {
	t.Helper()
	mem := fixture(t)
	hub := lokihttp.NewHub()
	t.Cleanup(hub.Close)
	opts := staticBackend(mem)
	opts.Tail = hub
	opts.Now = func() time.Time { return t0.Add(time.Minute) }
	srv := httptest.NewServer(lokihttp.New(opts))
	t.Cleanup(srv.Close)
	q := url.Values{"query": {`{app="api"} |= "line"`}, "start": {t0.Format(time.RFC3339)}}
	ws, err := websocket.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/loki/api/v1/tail?"+q.Encode(), "", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return mem, hub, ws
}

// TestTail: a websocket tail gets the entries since start, then a line
// appended while it listens, with the query's filter applied.
func TestTail(t *testing.T) {
	mem, hub, ws := dialTail(t)
	first := receive(t, ws)
	if len(first.Streams) != 1 || len(first.Streams[0].Values) != 3 || first.Streams[0].Values[0][1] != "api line a" {
		t.Fatalf("first message: %+v", first)
	}
	app := hub.Appender(mem)
	ts := t0.Add(2 * time.Minute).UnixNano()
	err := app.Append(context.Background(), store.AppendBatch{Streams: []store.StreamEntries{
		{Labels: labels.FromStrings("app", "api", "level", "info"), Entries: []store.Entry{{Ts: ts, Seq: 9, Line: "skipped"}, {Ts: ts + 1, Seq: 10, Line: "new line"}}},
		{Labels: labels.FromStrings("app", "worker", "level", "info"), Entries: []store.Entry{{Ts: ts, Seq: 9, Line: "worker line"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	next := receive(t, ws)
	if len(next.Streams) != 1 || next.Streams[0].Stream["app"] != "api" || len(next.Streams[0].Values) != 1 || next.Streams[0].Values[0][1] != "new line" {
		t.Fatalf("appended line: %+v", next)
	}
}

// TestTailHandOver: an entry both in the start query's answer and
// published live afterwards (stored while the tail was starting) is sent
// once.
func TestTailHandOver(t *testing.T) {
	_, hub, ws := dialTail(t)
	first := receive(t, ws)
	if len(first.Streams) != 1 || len(first.Streams[0].Values) != 3 {
		t.Fatalf("first message: %+v", first)
	}
	last := first.Streams[0].Values[2]
	ts, err := strconv.ParseInt(last[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// The backlog's last entry arrives live too, with a new one.
	hub.Publish([]store.StreamEntries{{Labels: labels.FromStrings("app", "api", "level", "info"),
		Entries: []store.Entry{{Ts: ts, Line: last[1]}, {Ts: t0.Add(2 * time.Minute).UnixNano(), Line: "fresh line"}}}})
	next := receive(t, ws)
	if len(next.Streams) != 1 || len(next.Streams[0].Values) != 1 || next.Streams[0].Values[0][1] != "fresh line" {
		t.Fatalf("live message after hand-over: %+v", next)
	}
}
