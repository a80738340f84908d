package lokihttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/websocket"

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
)

// TailBatch is one batch of freshly stored entries.
type TailBatch struct {
	Streams []store.StreamEntries
	// Missed counts batches dropped before this one because the subscriber
	// fell behind.
	Missed int
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
	ch     chan TailBatch
	missed int
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
		case s.ch <- TailBatch{Streams: streams, Missed: s.missed}:
			s.missed = 0
		default:
			s.missed++
		}
	}
}

// Subscribe returns a channel of new batches; cancel closes it.
func (h *Hub) Subscribe() (<-chan TailBatch, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.next
	h.next++
	s := &hubSub{ch: make(chan TailBatch, hubBufferSize)}
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
	query string
	limit int
	start time.Time
	delay time.Duration
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
	if _, ok := expr.(syntax.LogSelectorExpr); !ok {
		return p, errors.New("tail takes a log query, not a metric query")
	}
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
	ch, unsub := h.opts.Tail.Subscribe()
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
	if !send(ws, initial.Streams) {
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
			res, err := evalFresh(ctx, p, b.Streams)
			if err != nil {
				_ = websocket.Message.Send(ws, fmt.Sprintf(`{"error":%q}`, err.Error()))
				return
			}
			if !send(ws, res) {
				return
			}
		}
	}
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

// evalFresh evaluates the tail's query over freshly stored entries only,
// on an in-memory reader holding just them, so the tail applies exactly
// the query's LogQL.
func evalFresh(ctx context.Context, p tailParams, streams []store.StreamEntries) ([]engine.Stream, error) {
	mem := memstore.New()
	if err := mem.Append(ctx, store.AppendBatch{Streams: streams}); err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	minTs, maxTs, ok := mem.Bounds()
	if !ok {
		return nil, nil
	}
	res, err := engine.New(mem, engine.Options{Parallelism: 1}).Query(ctx, engine.Params{
		Query: p.query, Start: time.Unix(0, minTs), End: time.Unix(0, maxTs+1),
		Limit: engine.DefaultMaxEntriesLimit, Direction: store.Forward,
	})
	if err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	return res.Streams, nil
}

// send writes one tail message unless it holds no entry; false when the
// connection failed.
func send(ws *websocket.Conn, streams []engine.Stream) bool {
	n := 0
	for _, s := range streams {
		n += len(s.Entries)
	}
	if n == 0 {
		return true
	}
	var b bytes.Buffer
	b.WriteString(`{"streams":`)
	b.Write(lokiapi.MarshalStreams(streams))
	b.WriteString(`,"dropped_entries":null}`)
	return websocket.Message.Send(ws, b.String()) == nil
}
