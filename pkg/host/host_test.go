package host

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/store"
)

func quietHost() *Host {
	return New(Options{Operator: &config.Operator{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// Users of one directory share one open store; changed storage options
// reopen it; the last release closes it, freeing its lock.
func TestAcquireShares(t *testing.T) {
	dir := t.TempDir()
	h := quietHost()
	a, err := h.Acquire(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitErr(); err != nil {
		t.Fatalf("store not open: %v", err)
	}
	week := store.Options{Retention: 168 * time.Hour}
	b, err := h.Acquire(dir, week)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("a second user of the directory got another store")
	}
	if got := b.Options(); got != week {
		t.Errorf("options after reopen = %+v, want %+v", got, week)
	}
	st, eng, done := b.Use()
	if st == nil || eng == nil {
		t.Error("Use gave no store or engine after a reopen")
	}
	done()
	tests := []struct {
		name     string
		release  *Store
		lockFree bool
	}{
		{"first release keeps it open", a, false},
		{"last release closes it", b, true},
	}
	for _, tt := range tests {
		h.Release(tt.release)
		other, err := store.Open(dir, store.Options{})
		if (err == nil) != tt.lockFree {
			t.Errorf("%s: opening the directory elsewhere: err = %v", tt.name, err)
		}
		if other != nil {
			if err := other.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Releasing the last user of a store that waits for its lock, or closing
// the host as the process exits, ends its open retries: nothing opens the
// store afterwards, and the next user opens it afresh.
func TestLockedStoreReleased(t *testing.T) {
	tests := []struct {
		name string
		end  func(h *Host, ss *Store)
	}{
		{"last user released", func(h *Host, ss *Store) { h.Release(ss) }},
		{"host closed", func(h *Host, _ *Store) {
			if !h.CloseWithin(time.Minute) {
				panic("CloseWithin timed out")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			holder, err := store.Open(dir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			h := quietHost()
			ss, err := h.Acquire(dir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var we *WaitError
			var le *store.LockedError
			if err := ss.WaitErr(); !errors.As(err, &we) || !errors.As(err, &le) || le.PID != os.Getpid() {
				t.Fatalf("WaitErr() = %v, want a WaitError wrapping the store's LockedError", err)
			}
			if st, _, done := ss.Use(); st != nil {
				done()
				t.Fatal("Use gave a store that is not open")
			} else {
				done()
			}
			started := false
			ss.WhenOpen(func() { started = true })
			tt.end(h, ss)
			select {
			case <-ss.retryDone:
			default:
				t.Fatal("the open retries still run")
			}
			if ss.st != nil || started {
				t.Errorf("the released store was opened (start ran: %v)", started)
			}
			if err := holder.Close(); err != nil {
				t.Fatal(err)
			}
			h2 := quietHost()
			next, err := h2.Acquire(dir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer h2.Release(next)
			if err := next.WaitErr(); err != nil {
				t.Fatalf("the free store did not open: %v", err)
			}
		})
	}
}
