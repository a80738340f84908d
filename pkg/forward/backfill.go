package forward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/push/pushpb"
	"github.com/lokal-logs/lokal/pkg/store"
)

// Backfill: `lokal forward` sends what a store already holds to a Loki, in
// time order, window by window (each stream's entries in time order, which
// is what Loki's ingesters want), and records in a state file each window
// the remote acknowledged completely, so an interrupted backfill resumes at
// the first unfinished window: only that window's batches are sent again,
// whole, and Loki stores identical entries once.

// DefaultBackfillWindow is how much time one resumable step covers.
const DefaultBackfillWindow = time.Hour

// BackfillOptions say what to send.
type BackfillOptions struct {
	// Selector is the stream selector's text (recorded in the state) and
	// Matchers its matchers; none selects every stream.
	Selector string
	Matchers []*labels.Matcher
	From, To int64 // Unix ns, [From, To)
	Window   time.Duration
	// DataFrom and DataTo, when not zero, are the store's oldest and newest
	// entry times: windows outside them are skipped without a read.
	DataFrom, DataTo int64
	// StatePath is the resume file; empty means no resuming.
	StatePath string
	// AdoptRange resumes a backfill of the same remote and selector from
	// the resume file whatever From and To say (a command line whose range
	// defaults to the store's oldest entry and now).
	AdoptRange bool
	// Progress is called after every batch.
	Progress func(BackfillProgress)
}

// BackfillProgress is how far a backfill got.
type BackfillProgress struct {
	From, To, Done int64 // Done: the time up to which everything is sent
	Entries, Bytes int64
	Dropped        int64
}

// BackfillResult is a finished backfill's account.
type BackfillResult struct {
	Entries, Bytes int64 // acknowledged
	Dropped        int64 // refused by the remote (4xx), counted, not resent
	// Stored is what the store holds in the range for the selector now;
	// Entries + Dropped equal it unless entries arrived in the range while
	// the backfill ran.
	Stored  int64
	Resumed bool // continued an interrupted run
	// WasComplete: the resume file said this backfill had finished;
	// nothing was sent again.
	WasComplete bool
}

// backfillState is the resume file.
type backfillState struct {
	URL      string `json:"url"`
	Tenant   string `json:"tenant_id,omitempty"`
	Selector string `json:"selector"`
	From     int64  `json:"from"`
	To       int64  `json:"to"`
	Done     int64  `json:"done_until"`
	Entries  int64  `json:"entries"`
	Bytes    int64  `json:"bytes"`
	Dropped  int64  `json:"dropped"`
	Complete bool   `json:"complete"`
}

func (st backfillState) same(o backfillState) bool {
	return st.URL == o.URL && st.Tenant == o.Tenant && st.Selector == o.Selector && st.From == o.From && st.To == o.To
}

func loadBackfillState(path string) (*backfillState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backfill state: %w", err)
	}
	var st backfillState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("backfill state %s: %w (remove it to start over)", path, err)
	}
	return &st, nil
}

func saveBackfillState(path string, st backfillState) error {
	if err := writeJSONFile(path, st); err != nil {
		return fmt.Errorf("backfill state: %w", err)
	}
	return nil
}

// Backfill sends the entries r holds for opts to snd's remote.
func Backfill(ctx context.Context, r store.Reader, snd *Sender, opts BackfillOptions) (BackfillResult, error) {
	if opts.To <= opts.From {
		return BackfillResult{}, fmt.Errorf("backfill: the range %s to %s is empty", time.Unix(0, opts.From).UTC().Format(time.RFC3339), time.Unix(0, opts.To).UTC().Format(time.RFC3339))
	}
	if opts.Window <= 0 {
		opts.Window = DefaultBackfillWindow
	}
	state := backfillState{URL: snd.cfg.URL, Tenant: snd.cfg.TenantID, Selector: opts.Selector, From: opts.From, To: opts.To, Done: opts.From}
	var res BackfillResult
	if opts.StatePath != "" {
		old, err := loadBackfillState(opts.StatePath)
		if err != nil {
			return res, err
		}
		if old != nil && opts.AdoptRange && old.URL == state.URL && old.Tenant == state.Tenant && old.Selector == state.Selector {
			opts.From, opts.To = old.From, old.To
			state.From, state.To = old.From, old.To
		}
		if old != nil {
			if !old.same(state) {
				return res, fmt.Errorf("backfill state %s belongs to another backfill (to %s, selector %q, %s to %s): remove it or give another --state",
					opts.StatePath, old.URL, old.Selector, time.Unix(0, old.From).UTC().Format(time.RFC3339), time.Unix(0, old.To).UTC().Format(time.RFC3339))
			}
			state, res.Resumed, res.WasComplete = *old, old.Done > old.From && !old.Complete, old.Complete
		}
	}
	b := &backfillBatch{snd: snd, limit: int64(snd.cfg.BatchSize)}
	progress := func() {
		if opts.Progress != nil {
			opts.Progress(BackfillProgress{From: opts.From, To: opts.To, Done: state.Done,
				Entries: state.Entries + b.entries, Bytes: state.Bytes + b.bytes, Dropped: state.Dropped + b.dropped})
		}
	}
	b.progress = progress
	if opts.DataFrom != 0 && state.Done < opts.DataFrom {
		state.Done = min(opts.To, opts.DataFrom) // nothing before it
	}
	var saved time.Time
	for !state.Complete && state.Done < opts.To {
		end := min(opts.To, state.Done+int64(opts.Window))
		if opts.DataTo != 0 && state.Done > opts.DataTo {
			end = opts.To // nothing after it
		} else if err := b.window(ctx, r, opts.Matchers, state.Done, end); err != nil {
			return res, err
		}
		state.Done = end
		sent := b.entries + b.dropped
		state.Entries += b.entries
		state.Bytes += b.bytes
		state.Dropped += b.dropped
		b.entries, b.bytes, b.dropped = 0, 0, 0
		state.Complete = state.Done >= opts.To
		// Empty windows cost a read each; their state is saved now and
		// then, not every time (resuming re-reads a few empty ones).
		if opts.StatePath != "" && (sent > 0 || state.Complete || time.Since(saved) > time.Second) {
			if err := saveBackfillState(opts.StatePath, state); err != nil {
				return res, err
			}
			saved = time.Now()
		}
		progress()
	}
	res.Entries, res.Bytes, res.Dropped = state.Entries, state.Bytes, state.Dropped
	n, err := countEntries(ctx, r, opts.Matchers, opts.From, opts.To)
	if err != nil {
		return res, err
	}
	res.Stored = n
	return res, nil
}

// backfillBatch fills and sends push requests.
type backfillBatch struct {
	snd      *Sender
	limit    int64
	progress func()

	req    pushpb.PushRequest
	n      int
	raw    int64
	pb, sn []byte

	entries, bytes, dropped int64 // of the current window
}

// window sends [start, end) stream by stream.
func (b *backfillBatch) window(ctx context.Context, r store.Reader, ms []*labels.Matcher, start, end int64) error {
	its, err := r.Select(ctx, store.SelectParams{Matchers: ms, Start: start, End: end, Direction: store.Forward, Lines: true})
	if err != nil {
		return fmt.Errorf("backfill: read the store: %w", err)
	}
	defer func() {
		for _, it := range its {
			_ = it.Close()
		}
	}()
	for _, it := range its {
		lbls := b.snd.streamLabels(it.Labels())
		si := -1
		for it.Next() {
			bt := it.At()
			for i, ts := range bt.Ts {
				if si < 0 {
					b.req.Streams = append(b.req.Streams, pushpb.Stream{Labels: lbls})
					si = len(b.req.Streams) - 1
				}
				// The batch's lines are only valid until Next.
				line := strings.Clone(bt.Lines[i])
				b.req.Streams[si].Entries = append(b.req.Streams[si].Entries, pushpb.Entry{Timestamp: time.Unix(0, ts), Line: line})
				b.n++
				b.raw += int64(len(line))
				if b.raw >= b.limit {
					if err := b.flush(ctx); err != nil {
						return err
					}
					si = -1
				}
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("backfill: read %s: %w", it.Labels(), err)
		}
	}
	return b.flush(ctx)
}

func (b *backfillBatch) flush(ctx context.Context) error {
	if b.n == 0 {
		return nil
	}
	b.sn, b.pb = Encode(b.sn, b.pb, &b.req)
	dropped, err := b.snd.Send(ctx, b.sn, b.n, b.raw)
	if err != nil {
		return err
	}
	if dropped {
		b.dropped += int64(b.n)
	} else {
		b.entries += int64(b.n)
		b.bytes += b.raw
	}
	b.req.Streams = b.req.Streams[:0]
	b.n, b.raw = 0, 0
	b.progress()
	return nil
}

// countEntries counts what the store holds in [start, end) for ms without
// reading lines.
func countEntries(ctx context.Context, r store.Reader, ms []*labels.Matcher, start, end int64) (int64, error) {
	its, err := r.Select(ctx, store.SelectParams{Matchers: ms, Start: start, End: end, Direction: store.Forward})
	if err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	var n int64
	for _, it := range its {
		for it.Next() {
			n += int64(len(it.At().Ts))
		}
		err := it.Err()
		_ = it.Close()
		if err != nil {
			return n, fmt.Errorf("count %s: %w", it.Labels(), err)
		}
	}
	return n, nil
}
