package forward

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

func TestBackfillResumes(t *testing.T) {
	const total = 3000
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Windows of 10 s over the source's few seconds (and empty ones around).
	if err := runSource(context.Background(), st, total, 500, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := store.OpenReadOnly(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	var cancelAt atomic.Int64
	var cancel context.CancelFunc
	rec := newReceiver(t, func(n int) fault {
		if int64(n) == cancelAt.Load() {
			cancel() // the user presses Ctrl-C while this batch is in flight
			return fault{delay: 200 * time.Millisecond}
		}
		if n == 2 {
			return fault{status: 503}
		}
		return fault{}
	})
	snd, err := NewSender(testClient(rec.url()), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	opts := BackfillOptions{Selector: "{}", From: sourceBase - int64(time.Hour), To: sourceBase + int64(time.Hour),
		Window: 10 * time.Second, StatePath: filepath.Join(t.TempDir(), "state.json")}
	var progressed int
	opts.Progress = func(p BackfillProgress) { progressed++ }

	cases := []struct {
		name              string
		cancelAt          int64
		wantErr           bool
		resumed, complete bool
		adopt             bool // a later "now" as To, as the CLI's default gives
	}{
		{"interrupted", 12, true, false, false, false},
		{"resumed to the end", 0, false, true, false, false},
		{"run again: already complete", 0, false, false, true, false},
		{"run again with a later end: the recorded range", 0, false, false, true, true},
	}
	var res BackfillResult
	for _, tc := range cases {
		cancelAt.Store(tc.cancelAt)
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		o := opts
		if tc.adopt {
			o.To += int64(time.Hour)
			o.AdoptRange = true
		}
		res, err = Backfill(ctx, r, snd, o)
		cancel()
		if tc.wantErr != (err != nil) || (err != nil && !errors.Is(err, context.Canceled)) {
			t.Fatalf("%s: err %v", tc.name, err)
		}
		if err == nil && (res.Resumed != tc.resumed || res.WasComplete != tc.complete) {
			t.Fatalf("%s: %+v", tc.name, res)
		}
	}
	if !res.WasComplete || res.Entries != total || res.Stored != total || res.Dropped != 0 {
		t.Fatalf("result %+v, want %d entries sent and stored", res, total)
	}
	if progressed == 0 {
		t.Fatal("no progress reported")
	}
	dups := checkDelivery(t, rec.stored(), sourceKeys(total), nil)
	t.Logf("%d entries in %d batches, %d duplicates after the interruption", total, len(rec.stored()), dups)

	// A selector narrows the backfill and the count alike.
	rec2 := newReceiver(t, nil)
	snd2, _ := NewSender(testClient(rec2.url()), nil)
	res, err = Backfill(context.Background(), r, snd2, BackfillOptions{Selector: `{stream="1"}`,
		Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "stream", "1")},
		From:     opts.From, To: opts.To})
	if err != nil || res.Entries != total/3 || res.Stored != total/3 {
		t.Fatalf("selector: %+v %v", res, err)
	}
	for _, b := range rec2.stored() {
		for _, k := range b {
			if !strings.Contains(k, `stream="1"`) {
				t.Fatalf("entry of another stream: %s", k)
			}
		}
	}
	// Another backfill's state file is refused.
	_, err = Backfill(context.Background(), r, snd2, BackfillOptions{Selector: `{stream="2"}`, From: opts.From, To: opts.To, StatePath: opts.StatePath})
	if err == nil || !strings.Contains(err.Error(), "belongs to another backfill") {
		t.Fatalf("foreign state: %v", err)
	}
}
