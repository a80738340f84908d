package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/lokal-logs/lokal/pkg/host"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/lokihttp"
	"github.com/lokal-logs/lokal/pkg/store"
)

// tailLimit bounds the lines one live-tail push carries.
const tailLimit = 5000

// SubscribeStream admits a live tail whose query is a valid log query.
func (ds *Datasource) SubscribeStream(_ context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	// A store not open yet gets its ingester when it opens: RunStream
	// waits for it.
	if run, _ := ds.ingestion(); ds.setupErr != nil || (run == nil && ds.shared.WaitErr() == nil) {
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
		run := ds.shared.Current()
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
func (ds *Datasource) tailRun(ctx context.Context, expr string, run *host.Run, sender *backend.StreamSender) error {
	ch, cancel := run.Ingester().Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-run.Done():
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

// tailFrame evaluates the query over freshly stored entries only, as the
// HTTP tail does (lokihttp.EvalFresh), and frames the lines.
func tailFrame(ctx context.Context, expr string, streams []store.StreamEntries) (*data.Frame, error) {
	fresh, err := lokihttp.EvalFresh(ctx, expr, tailLimit, streams)
	if err != nil {
		return nil, fmt.Errorf("live tail: %w", err)
	}
	rows := streamRows(fresh, false)
	if len(rows) == 0 {
		return nil, nil
	}
	return logsFrame("tail", expr, rows, logsCustom{Limit: tailLimit, Direction: "forward"}, queryStats{}), nil
}
