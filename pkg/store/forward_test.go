package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// fwdAppend appends n small entries to one stream at day d (Unix days) and
// commits them.
func fwdAppend(t *testing.T, s *Store, day int64, from, n int) {
	t.Helper()
	var es []Entry
	for i := from; i < from+n; i++ {
		es = append(es, Entry{Ts: day*nsPerDay + int64(i)*int64(time.Second), Seq: uint64(i), Line: fmt.Sprintf("line %d", i)})
	}
	appendAll(t, s, []streamData{{labels.FromStrings("job", "f"), es}}, nil)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// fwdDrain sends everything pending for name and acknowledges it,
// returning the entries in order.
func fwdDrain(t *testing.T, s *Store, name string, pos ForwardPos) ([]Entry, ForwardPos) {
	t.Helper()
	var out []Entry
	for {
		bs, err := s.ForwardPending(name, pos, 100, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) == 0 {
			return out, pos
		}
		for _, b := range bs {
			es, err := s.ForwardRead(b)
			if err != nil {
				t.Fatal(err)
			}
			if b.Seg == pos.Seg && b.Off == pos.Off {
				es = es[pos.Entry:]
			}
			out = append(out, es...)
			pos = ForwardPos{Seg: b.Seg, Off: b.Off + 1}
		}
		if err := s.ForwardAck(name, pos); err != nil {
			t.Fatal(err)
		}
	}
}

func TestForwardRules(t *testing.T) {
	today := time.Now().UnixNano() / nsPerDay
	cases := []struct {
		name string
		run  func(t *testing.T, dir string)
	}{
		{"a handed-out block takes no new lines, and nothing is sent twice", func(t *testing.T, dir string) {
			s := openTest(t, dir)
			defer s.Close()
			fwdAppend(t, s, today, 0, 10) // before the client: not its business
			pos, err := s.ForwardRegister("c")
			if err != nil {
				t.Fatal(err)
			}
			// The first block is behind the client's start, so it takes no
			// new lines either: they get a block of their own.
			fwdAppend(t, s, today, 10, 10)
			fwdAppend(t, s, today, 20, 5) // merges into the unsent block
			got, pos := fwdDrain(t, s, "c", pos)
			if len(got) != 15 || got[0].Line != "line 10" {
				t.Fatalf("first drain: %d entries from %v, want 15 from line 10", len(got), got)
			}
			blocks := s.Info().Blocks
			fwdAppend(t, s, today, 25, 10) // the tail was handed out: a block of its own
			if s.Info().Blocks != blocks+1 {
				t.Fatalf("blocks %d -> %d: the sent tail took new lines", blocks, s.Info().Blocks)
			}
			got, _ = fwdDrain(t, s, "c", pos)
			if len(got) != 10 || got[0].Line != "line 25" {
				t.Fatalf("second drain: %d entries from %v", len(got), got)
			}
		}},
		{"recompaction waits for the client and its blocks are not sent again", func(t *testing.T, dir string) {
			s := openTest(t, dir)
			defer s.Close()
			pos, _ := s.ForwardRegister("c")
			fwdAppend(t, s, today-1, 0, 10)
			_, pos = fwdDrain(t, s, "c", pos) // sent
			fwdAppend(t, s, today-1, 10, 10)
			fwdAppend(t, s, today-1, 20, 10) // merged with the previous: unsent
			fwdAppend(t, s, today, 30, 10)   // the stream's live tail
			if err := s.Compact(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := s.Info().UncompactedBlocks; n != 2 {
				t.Fatalf("%d uncompacted blocks, want the unsent one and the live tail", n)
			}
			got, pos := fwdDrain(t, s, "c", pos)
			if len(got) != 30 || got[0].Line != "line 10" {
				t.Fatalf("after recompaction: %d entries from %v", len(got), got)
			}
			if err := s.Compact(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := s.Info().UncompactedBlocks; n != 1 {
				t.Fatalf("%d uncompacted blocks once everything was sent, want the live tail", n)
			}
			if got, _ := fwdDrain(t, s, "c", pos); len(got) != 0 {
				t.Fatalf("recompacted blocks sent again: %d entries", len(got))
			}
		}},
		{"age retention keeps unsent days, the size limit drops them and counts", func(t *testing.T, dir string) {
			s, err := Open(dir, Options{Retention: 48 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			pos, _ := s.ForwardRegister("c")
			fwdAppend(t, s, today-10, 0, 10)
			fwdAppend(t, s, today, 10, 10)
			if err := s.ApplyRetention(time.Now()); err != nil {
				t.Fatal(err)
			}
			if s.Info().Partitions != 2 {
				t.Fatalf("age retention dropped an unsent day: %+v", s.Info())
			}
			fwdDrain(t, s, "c", pos)
			if err := s.ApplyRetention(time.Now()); err != nil {
				t.Fatal(err)
			}
			if s.Info().Partitions != 1 {
				t.Fatalf("sent old day kept: %+v", s.Info())
			}
			s.Close()

			s, err = Open(dir, Options{MaxBytes: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			pos, _ = s.ForwardRegister("c")
			fwdAppend(t, s, today-1, 20, 10)
			if err := s.ApplyRetention(time.Now()); err != nil {
				t.Fatal(err)
			}
			st, _ := s.ForwardStatus("c", time.Now())
			if st.Dropped != 10 {
				t.Fatalf("size retention dropped %d unsent entries, want 10 counted", st.Dropped)
			}
		}},
		{"the cursor is durable, and a client no longer configured is forgotten", func(t *testing.T, dir string) {
			s := openTest(t, dir)
			pos, _ := s.ForwardRegister("c")
			fwdAppend(t, s, today, 0, 10)
			_, end := fwdDrain(t, s, "c", pos)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir)
			got, err := s.ForwardRegister("c")
			if err != nil || got != end {
				t.Fatalf("reopened at %v (%v), want %v", got, err, end)
			}
			st, _ := s.ForwardStatus("c", time.Now())
			if st.LagEntries != 0 {
				t.Fatalf("lag %d after everything was acknowledged", st.LagEntries)
			}
			s.ForwardUnregister("c")
			if gone := s.ForwardForget(nil); len(gone) != 1 || gone[0] != "c" {
				t.Fatalf("forgot %v", gone)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openTest(t, dir)
			defer s.Close()
			if _, ok := s.Cursors()[ForwardCursorPrefix+"c"]; ok {
				t.Fatal("forgotten cursor still stored")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, t.TempDir()) })
	}
}
