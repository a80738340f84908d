package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// Queries of every kind (QueryData, Loki API queries, resource calls that
// run the engine) wait for a turn of the host's max_concurrent, in the
// order they came; a caller that gives up while waiting leaves the queue
// with the usual cancelled status.
func TestQueriesTakeTurns(t *testing.T) {
	f := newFixture(t)
	ds, start := f.storedLines(t, 3, "served request")
	from, to := start.Add(-time.Minute), time.Now().Add(time.Minute)
	rng := url.Values{"query": {`{job="app"}`}, "start": {from.Format(time.RFC3339)}, "end": {to.Format(time.RFC3339)}}.Encode()
	resource := func(path string) func(ctx context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			var got *backend.CallResourceResponse
			err := ds.CallResource(ctx, &backend.CallResourceRequest{Path: path, Method: "GET", URL: path + "?" + rng},
				backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { got = r; return nil }))
			if err != nil {
				return 0, err
			}
			return got.Status, nil
		}
	}
	kinds := []struct {
		name          string
		call          func(ctx context.Context) (int, error)
		ok, cancelled int // statuses; cancelled 0: the request fails with context.Canceled
	}{
		{"QueryData", func(ctx context.Context) (int, error) {
			resp, err := ds.QueryData(ctx, &backend.QueryDataRequest{Queries: []backend.DataQuery{{
				RefID: "A", JSON: json.RawMessage(`{"expr":"{job=\"app\"}"}`), TimeRange: backend.TimeRange{From: from, To: to},
			}}})
			if err != nil {
				return 0, err
			}
			return int(resp.Responses["A"].Status), resp.Responses["A"].Error
		}, 0, 0}, // a successful DataResponse leaves its status unset
		{"Loki API query_range", resource("loki/api/v1/query_range"), 200, 499},
		{"Loki API index/volume", resource("loki/api/v1/index/volume"), 200, 499},
		{"resource index/stats", resource("index/stats"), 200, 499},
	}
	queries := f.host.Queries()
	// queued waits until n calls wait for their turn.
	queued := func(t *testing.T, n int) {
		t.Helper()
		for i := 0; ; i++ {
			if _, q := queries.Stats(); q == n {
				return
			}
			if i > 10_000_000 {
				t.Fatalf("no call waits for its turn: the limit is not applied")
			}
			runtime.Gosched()
		}
	}
	for _, k := range kinds {
		for _, giveUp := range []bool{false, true} {
			name := k.name + ", turn comes"
			if giveUp {
				name = k.name + ", caller gives up"
			}
			t.Run(name, func(t *testing.T) {
				var held []func()
				for range queries.Limit() {
					release, err := f.host.Admit(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					held = append(held, release)
				}
				defer func() {
					for _, r := range held {
						r()
					}
				}()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				type result struct {
					status int
					err    error
				}
				done := make(chan result, 1)
				go func() {
					s, err := k.call(ctx)
					done <- result{s, err}
				}()
				queued(t, 1)
				stillHeld := len(held)
				if giveUp {
					cancel()
				} else {
					held[0]()
					stillHeld--
				}
				r := <-done
				switch {
				case giveUp && k.cancelled == 0:
					if !errors.Is(r.err, context.Canceled) {
						t.Errorf("cancelled while waiting: %d %v, want context.Canceled", r.status, r.err)
					}
				case giveUp:
					if r.err != nil || r.status != k.cancelled {
						t.Errorf("cancelled while waiting: %d %v, want status %d", r.status, r.err, k.cancelled)
					}
				default:
					if r.err != nil || r.status != k.ok {
						t.Errorf("after its turn came: %d %v, want status %d", r.status, r.err, k.ok)
					}
				}
				if running, waiting := queries.Stats(); waiting != 0 || running != stillHeld {
					t.Errorf("afterwards %d running, %d waiting; the call must leave the queue and free its turn", running, waiting)
				}
			})
		}
	}
}
