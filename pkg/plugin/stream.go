package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/engine"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// tailLimit bounds the lines one live-tail push carries.
const tailLimit = 5000

// SubscribeStream admits a live tail whose query is a valid log query.
func (ds *Datasource) SubscribeStream(_ context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	// A store not open yet gets its ingester when it opens: RunStream
	// waits for it.
	if run, _ := ds.ingestion(); ds.setupErr != nil || (run == nil && ds.shared.waitErr() == nil) {
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	if _, err := tailQuery(req.Data); err != nil {
		ds.log.Warn("live tail refused", "path", req.Path, "error", err.Error())
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK}, nil
}

// PublishStream refuses: clients only read a tail.
func (ds *Datasource) PublishStream(context.Context, *backend.PublishStreamRequest) (*backend.PublishStreamResponse, error) {
	return &backend.PublishStreamResponse{Status: backend.PublishStreamStatusPermissionDenied}, nil
}

// RunStream pushes every newly stored line that matches the query, with
// the query's whole pipeline applied, until Grafana cancels ctx.
func (ds *Datasource) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	expr, err := tailQuery(req.Data)
	if err != nil {
		return err
	}
	if ds.setupErr != nil {
		return ds.setupErr
	}
	for {
		// Follow whichever ingester currently writes the store: a settings
		// change replaces it, and the tail must carry on with the new one.
		run := ds.shared.current()
		if run == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
		if err := ds.tailRun(ctx, expr, run, sender); err != nil || ctx.Err() != nil {
			return err
		}
		// The ingester stopped: give its successor a moment to start (and
		// never spin on one that stopped for good).
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tailRun streams the notifications of one ingester until it stops or ctx
// ends.
func (ds *Datasource) tailRun(ctx context.Context, expr string, run *ingestRun, sender *backend.StreamSender) error {
	ch, cancel := run.in.Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-run.done:
			return nil
		case n, ok := <-ch:
			if !ok {
				return nil
			}
			frame, err := tailFrame(ctx, expr, n.Streams)
			if err != nil {
				return err
			}
			if frame == nil {
				continue
			}
			if err := sender.SendFrame(frame, data.IncludeAll); err != nil {
				return fmt.Errorf("live tail send: %w", err)
			}
		}
	}
}

// tailQuery reads the live tail's query from the subscription data.
func tailQuery(raw json.RawMessage) (string, error) {
	var m queryModel
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("live tail query JSON: %w", err)
	}
	expr := expandVars(m.Expr, syntax.GrafanaVars{Interval: time.Second, Range: time.Hour})
	if _, err := isLogQuery(expr); err != nil {
		return "", err
	}
	return expr, nil
}

// tailFrame evaluates the query over freshly stored entries only: the
// engine runs on an in-memory reader holding just them, so the tail applies
// exactly the same LogQL semantics as a query.
func tailFrame(ctx context.Context, expr string, streams []store.StreamEntries) (*data.Frame, error) {
	mr := newMemReader(streams)
	if mr.minTs > mr.maxTs {
		return nil, nil
	}
	res, err := engine.New(mr, engine.Options{Parallelism: 1}).Query(ctx, engine.Params{
		Query:     expr,
		Start:     time.Unix(0, mr.minTs),
		End:       time.Unix(0, mr.maxTs+1),
		Limit:     tailLimit,
		Direction: store.Forward,
	})
	if err != nil {
		return nil, fmt.Errorf("live tail: %w", err)
	}
	rows := streamRows(res.Streams, false)
	if len(rows) == 0 {
		return nil, nil
	}
	return logsFrame("tail", expr, rows, logsCustom{Limit: tailLimit, Direction: "forward"}, queryStats{}), nil
}

// memReader is a store.Reader over a few in-memory streams.
type memReader struct {
	streams      []store.StreamEntries
	minTs, maxTs int64
}

func newMemReader(streams []store.StreamEntries) *memReader {
	m := &memReader{minTs: math.MaxInt64, maxTs: math.MinInt64}
	for _, s := range streams {
		es := append([]store.Entry(nil), s.Entries...)
		sort.SliceStable(es, func(i, j int) bool {
			return es[i].Ts < es[j].Ts || (es[i].Ts == es[j].Ts && es[i].Seq < es[j].Seq)
		})
		for _, e := range es {
			m.minTs = min(m.minTs, e.Ts)
			m.maxTs = max(m.maxTs, e.Ts)
		}
		m.streams = append(m.streams, store.StreamEntries{Labels: s.Labels, Entries: es})
	}
	return m
}

func matchesAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

func (m *memReader) Select(_ context.Context, p store.SelectParams) ([]store.StreamIterator, error) {
	var out []store.StreamIterator
	for _, s := range m.streams {
		if !matchesAll(p.Matchers, s.Labels) {
			continue
		}
		b := &store.Batch{Labels: s.Labels}
		for _, e := range s.Entries {
			if e.Ts < p.Start || e.Ts >= p.End {
				continue
			}
			b.Ts = append(b.Ts, e.Ts)
			b.Seq = append(b.Seq, e.Seq)
			b.Sizes = append(b.Sizes, uint32(len(e.Line)))
			if p.Lines {
				b.Lines = append(b.Lines, e.Line)
			}
		}
		if len(b.Ts) == 0 {
			continue
		}
		if p.Direction == store.Backward {
			reverseBatch(b)
		}
		out = append(out, &memIter{b: b})
	}
	return out, nil
}

func reverseBatch(b *store.Batch) {
	for i, j := 0, len(b.Ts)-1; i < j; i, j = i+1, j-1 {
		b.Ts[i], b.Ts[j] = b.Ts[j], b.Ts[i]
		b.Seq[i], b.Seq[j] = b.Seq[j], b.Seq[i]
		b.Sizes[i], b.Sizes[j] = b.Sizes[j], b.Sizes[i]
		if b.Lines != nil {
			b.Lines[i], b.Lines[j] = b.Lines[j], b.Lines[i]
		}
	}
}

func (m *memReader) Streams(_ context.Context, ms []*labels.Matcher, start, end int64) ([]labels.Labels, error) {
	var out []labels.Labels
	for _, s := range m.streams {
		if matchesAll(ms, s.Labels) {
			out = append(out, s.Labels)
		}
	}
	return out, nil
}

func (m *memReader) LabelNames(context.Context, int64, int64) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, s := range m.streams {
		for _, l := range s.Labels {
			if !seen[l.Name] {
				seen[l.Name] = true
				out = append(out, l.Name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *memReader) LabelValues(_ context.Context, name string, ms []*labels.Matcher, _, _ int64) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, s := range m.streams {
		if v := s.Labels.Get(name); v != "" && !seen[v] && matchesAll(ms, s.Labels) {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out, nil
}

// memIter yields one batch.
type memIter struct {
	b    *store.Batch
	done bool
}

func (it *memIter) Labels() labels.Labels { return it.b.Labels }
func (it *memIter) Next() bool {
	if it.done {
		return false
	}
	it.done = true
	return true
}
func (it *memIter) At() *store.Batch { return it.b }
func (it *memIter) Err() error       { return nil }
func (it *memIter) Close() error     { return nil }
