package lokihttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/websocket"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/lokiapi"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
	"github.com/lokal-logs/lokal/pkg/store/memstore"
)

// Loki's tail limits.
const (
	maxTailDelay  = 5 * time.Second
	hubBufferSize = 64
	// maxDroppedEntries bounds the dropped entries a subscriber remembers
	// between two deliveries; more are counted in Missed only.
	maxDroppedEntries = 1000
)

// TailBatch is one batch of freshly stored entries.
type TailBatch struct {
	Streams []store.StreamEntries
	// Missed counts batches dropped before this one because the subscriber
	// fell behind.
	Missed int
	// Dropped lists the entries of those batches whose stream the
	// subscriber matches (at most maxDroppedEntries), oldest batch first.
	Dropped []DroppedEntry
}

// DroppedEntry is an entry a slow tail subscriber never received: its
// stream's labels and its timestamp, as Loki's tail reports it.
type DroppedEntry struct {
	Labels labels.Labels
	Ts     int64 // Unix ns
}

// Hub fans freshly stored entries out to tail subscribers. A subscriber
// that falls behind loses batches (counted in the next one's Missed)
// rather than stalling whoever stores them.
type Hub struct {
	mu     sync.Mutex
	next   int
	subs   map[int]*hubSub
	closed bool
}

type hubSub struct {
	ch      chan TailBatch
	match   func(labels.Labels) bool
	missed  int
	dropped []DroppedEntry
}

// drop remembers batch's entries in matching streams as dropped.
func (s *hubSub) drop(streams []store.StreamEntries) {
	s.missed++
	for _, st := range streams {
		if s.match != nil && !s.match(st.Labels) {
			continue
		}
		for _, e := range st.Entries {
			if len(s.dropped) >= maxDroppedEntries {
				return
			}
			s.dropped = append(s.dropped, DroppedEntry{Labels: st.Labels, Ts: e.Ts})
		}
	}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[int]*hubSub{}} }

// Publish hands streams to every subscriber without blocking.
func (h *Hub) Publish(streams []store.StreamEntries) {
	if len(streams) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.subs {
		select {
		case s.ch <- TailBatch{Streams: streams, Missed: s.missed, Dropped: s.dropped}:
			s.missed, s.dropped = 0, nil
		default:
			s.drop(streams)
		}
	}
}

// Subscribe returns a channel of new batches; cancel closes it.
func (h *Hub) Subscribe() (<-chan TailBatch, func()) { return h.SubscribeMatching(nil) }

// SubscribeMatching is Subscribe for a subscriber interested only in the
// streams match accepts (nil: all): a batch it misses reports just their
// entries as Dropped.
func (h *Hub) SubscribeMatching(match func(labels.Labels) bool) (<-chan TailBatch, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.next
	h.next++
	s := &hubSub{ch: make(chan TailBatch, hubBufferSize), match: match}
	if h.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	h.subs[id] = s
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, ok := h.subs[id]; ok {
				delete(h.subs, id)
				close(s.ch)
			}
		})
	}
}

// Close ends every subscription.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for id, s := range h.subs {
		delete(h.subs, id)
		close(s.ch)
	}
}

// Appender returns app publishing every batch it stores to the hub.
func (h *Hub) Appender(app store.Appender) store.Appender { return hubAppender{app, h} }

type hubAppender struct {
	store.Appender
	h *Hub
}

func (a hubAppender) Append(ctx context.Context, b store.AppendBatch) error {
	if err := a.Appender.Append(ctx, b); err != nil {
		return err
	}
	a.h.Publish(b.Streams)
	return nil
}

// tailParams are a tail request's parameters.
type tailParams struct {
	query    string
	matchers []*labels.Matcher
	limit    int
	start    time.Time
	delay    time.Duration
}

func (h *Handler) tailParams(r *http.Request) (tailParams, error) {
	var p tailParams
	var err error
	if p.query, err = queryParam(r); err != nil {
		return p, err
	}
	expr, err := syntax.ParseExpr(p.query)
	if err != nil {
		return p, err
	}
	sel, ok := expr.(syntax.LogSelectorExpr)
	if !ok {
		return p, errors.New("tail takes a log query, not a metric query")
	}
	p.matchers = sel.Matchers()
	if p.limit, err = limitParam(r); err != nil {
		return p, err
	}
	now := h.opts.Now()
	if p.start, err = timeParam(r, "start", now.Add(-defaultQuerySince)); err != nil {
		return p, err
	}
	if s := r.Form.Get("delay_for"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return p, fmt.Errorf("cannot parse %q to a valid delay_for", s)
		}
		if p.delay = time.Duration(n) * time.Second; p.delay > maxTailDelay {
			return p, fmt.Errorf("delay_for can't be greater than %d", int(maxTailDelay/time.Second))
		}
	}
	return p, nil
}

// tail streams a log query's entries over a websocket, as Loki's
// /loki/api/v1/tail does: first the entries since start (up to limit),
// then every newly stored entry that matches, as
// {"streams":[...],"dropped_entries":null} messages.
func (h *Handler) tail(w http.ResponseWriter, r *http.Request) {
	if h.opts.Tail == nil {
		why := h.opts.TailUnsupported
		if why == "" {
			why = "tail is not enabled here"
		}
		badRequest(w, errors.New(why))
		return
	}
	if err := form(r); err != nil {
		badRequest(w, err)
		return
	}
	p, err := h.tailParams(r)
	if err != nil {
		badRequest(w, err)
		return
	}
	srv := websocket.Server{
		// Loki's clients (logcli, Grafana) send no Origin; any is accepted,
		// authentication is the server's job.
		Handshake: func(*websocket.Config, *http.Request) error { return nil },
		Handler:   func(ws *websocket.Conn) { h.tailConn(ws, r, p) },
	}
	srv.ServeHTTP(w, r)
}

func (h *Handler) tailConn(ws *websocket.Conn, r *http.Request, p tailParams) {
	defer ws.Close()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The client never sends anything: a read ends when it goes away.
	go func() {
		var discard []byte
		for websocket.Message.Receive(ws, &discard) == nil {
		}
		cancel()
	}()
	// Subscribing before the backlog query leaves no gap between them; the
	// overlap (entries stored and published while the query ran) is
	// removed by seen.
	ch, unsub := h.opts.Tail.SubscribeMatching(func(ls labels.Labels) bool { return matchesAll(p.matchers, ls) })
	defer unsub()
	now := h.opts.Now()
	var initial engine.Result
	var err error
	h.withBackendErr(func(b Backend) {
		initial, err = b.Engine.Query(ctx, engine.Params{Query: p.query, Start: p.start, End: now,
			Limit: p.limit, Direction: store.Forward})
	}, &err)
	if err != nil {
		_ = websocket.Message.Send(ws, fmt.Sprintf(`{"error":%q}`, err.Error()))
		return
	}
	seen := newBacklog(initial.Streams, now.UnixNano())
	if !send(ws, initial.Streams, nil) {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case b, ok := <-ch:
			if !ok {
				return
			}
			if p.delay > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(p.delay):
				}
			}
			res, err := EvalFresh(ctx, p.query, engine.DefaultMaxEntriesLimit, b.Streams)
			if err != nil {
				_ = websocket.Message.Send(ws, fmt.Sprintf(`{"error":%q}`, "tail: "+err.Error()))
				return
			}
			if !send(ws, seen.remove(res), b.Dropped) {
				return
			}
		}
	}
}

// matchesAll reports whether ls satisfies every matcher.
func matchesAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// entryKey identifies an entry of a result: the store keeps an entry with
// the same stream, timestamp and line once, so the key names one entry.
type entryKey struct {
	labels string
	ts     int64
	line   string
}

// backlog holds the entries a tail sent from its start query, so the live
// entries published while that query ran are not sent again. Only entries
// older than the query's end can be among them; the set is bounded by the
// query's limit.
type backlog struct {
	end  int64
	sent map[entryKey]struct{}
}

func newBacklog(streams []engine.Stream, end int64) *backlog {
	b := &backlog{end: end, sent: map[entryKey]struct{}{}}
	for _, s := range streams {
		ls := s.Labels.String()
		for _, e := range s.Entries {
			b.sent[entryKey{ls, e.Ts, e.Line}] = struct{}{}
		}
	}
	return b
}

// remove drops from streams the entries already sent from the backlog;
// each is removed once, so an identical entry stored again later (a new
// entry to the tail) is still sent.
func (b *backlog) remove(streams []engine.Stream) []engine.Stream {
	if len(b.sent) == 0 {
		return streams
	}
	out := streams[:0:0]
	for _, s := range streams {
		ls := s.Labels.String()
		kept := s.Entries[:0:0]
		for _, e := range s.Entries {
			k := entryKey{ls, e.Ts, e.Line}
			if _, dup := b.sent[k]; dup && e.Ts < b.end {
				delete(b.sent, k)
				continue
			}
			kept = append(kept, e)
		}
		if len(kept) > 0 {
			out = append(out, engine.Stream{Labels: s.Labels, Entries: kept})
		}
	}
	return out
}

// withBackendErr runs f with a backend, or sets *err.
func (h *Handler) withBackendErr(f func(Backend), err *error) {
	if h.opts.Acquire == nil {
		*err = errors.New("no store configured")
		return
	}
	b, release, aerr := h.opts.Acquire()
	if aerr != nil {
		*err = aerr
		return
	}
	defer release()
	f(b)
}

// EvalFresh evaluates the log query over streams only (entries just
// stored, as a live tail receives them): the engine runs on an in-memory
// reader holding just them, so a tail applies exactly the query's LogQL.
// It answers at most limit entries, and nil when streams hold none. The
// HTTP tail and the plugin's live tail share it; callers add their context
// to errors.
func EvalFresh(ctx context.Context, query string, limit int, streams []store.StreamEntries) ([]engine.Stream, error) {
	mem := memstore.New()
	if err := mem.Append(ctx, store.AppendBatch{Streams: streams}); err != nil {
		return nil, err
	}
	minTs, maxTs, ok := mem.Bounds()
	if !ok {
		return nil, nil
	}
	res, err := engine.New(mem, engine.Options{Parallelism: 1}).Query(ctx, engine.Params{
		Query: query, Start: time.Unix(0, minTs), End: time.Unix(0, maxTs+1),
		Limit: limit, Direction: store.Forward,
	})
	if err != nil {
		return nil, err
	}
	return res.Streams, nil
}

// send writes one tail message unless it holds no entry, sent or
// dropped; false when the connection failed.
func send(ws *websocket.Conn, streams []engine.Stream, dropped []DroppedEntry) bool {
	msg, err := tailMessage(streams, dropped)
	if err != nil {
		_ = websocket.Message.Send(ws, fmt.Sprintf(`{"error":%q}`, "tail: "+err.Error()))
		return false
	}
	if msg == nil {
		return true
	}
	return websocket.Message.Send(ws, string(msg)) == nil
}

// tailMessage is Loki's tail message,
// {"streams":[...],"dropped_entries":[{"labels":{...},"timestamp":"<ns>"}]}
// (dropped_entries null when none were dropped), or nil when it would
// carry nothing.
func tailMessage(streams []engine.Stream, dropped []DroppedEntry) ([]byte, error) {
	n := 0
	for _, s := range streams {
		n += len(s.Entries)
	}
	if n == 0 && len(dropped) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	b.WriteString(`{"streams":`)
	b.Write(lokiapi.MarshalStreams(streams))
	b.WriteString(`,"dropped_entries":`)
	if len(dropped) == 0 {
		b.WriteString("null")
	} else {
		type wire struct {
			Labels    map[string]string `json:"labels"`
			Timestamp string            `json:"timestamp"`
		}
		ws := make([]wire, len(dropped))
		for i, d := range dropped {
			ws[i] = wire{Labels: d.Labels.Map(), Timestamp: strconv.FormatInt(d.Ts, 10)}
		}
		j, err := json.Marshal(ws)
		if err != nil {
			return nil, fmt.Errorf("marshal dropped entries: %w", err)
		}
		b.Write(j)
	}
	b.WriteString("}")
	return b.Bytes(), nil
}
