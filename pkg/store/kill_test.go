package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

const (
	killChildEnv = "LOKAL_STORE_KILL_CHILD"
	killModeEnv  = "LOKAL_STORE_KILL_MODE"
	// killPerDay entries share a partition; the next ones start a new day,
	// so older days' blocks can be recompacted or dropped.
	killPerDay = 300
)

// killLine is entry i's line; the checks rebuild it.
func killLine(i int) string { return fmt.Sprintf("entry %06d of the kill test", i) }

func killEntry(i int) Entry {
	return Entry{Ts: day0 + int64(i/killPerDay)*nsPerDay + int64(i), Seq: uint64(i), Line: killLine(i)}
}

// TestKillNine appends from a child process that is killed with SIGKILL at
// a random moment, in each of three modes: committing only, committing and
// recompacting, committing and dropping old days by retention. It then
// checks the reopened store holds exactly the entries before its cursor
// (less the whole days retention dropped), each once, with no block
// missing, and that resuming from the cursor completes the data.
//
// 6 kills by default; LOKAL_FAULTS=full runs 51 (17 per mode).
func TestKillNine(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir, os.Getenv(killModeEnv))
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	rounds := 2
	if fullFaults() {
		rounds = 17
	}
	rng := rand.New(rand.NewPCG(9, 9))
	kills := 0
	for _, mode := range []string{"commit", "compact", "retention"} {
		for round := range rounds {
			delay := time.Duration(100+rng.IntN(900)) * time.Millisecond
			killRound(t, mode, round, delay)
			kills++
		}
	}
	t.Logf("%d kill -9 points, none lost or duplicated an entry", kills)
}

func killRound(t *testing.T, mode string, round int, delay time.Duration) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillNine$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir, killModeEnv+"="+mode)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	s := openTest(t, dir)
	defer s.Close()
	upto := 0
	if v, ok := s.Cursors()["f"]; ok {
		upto, _ = strconv.Atoi(string(v))
	}
	ls := labels.FromStrings("job", "kill")
	p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "kill")}, Start: day0, End: day0 + 1000*nsPerDay, Lines: true}
	got := readAll(t, s, p)[ls.String()]
	from := upto - len(got)
	if (mode != "retention" && from != 0) || from < 0 || from%killPerDay != 0 {
		t.Fatalf("%s round %d: cursor at %d but %d entries stored", mode, round, upto, len(got))
	}
	for i, e := range got {
		if want := killEntry(from + i); !entryEqual(e, want) {
			t.Fatalf("%s round %d: entry %d is %+v, want %+v", mode, round, from+i, e, want)
		}
	}
	if in := s.Info(); in.CorruptBlocks != 0 {
		t.Fatalf("%s round %d: %+v", mode, round, in)
	}
	// Resume like the ingester: from the cursor.
	var es []Entry
	for i := upto; i < upto+500; i++ {
		es = append(es, killEntry(i))
	}
	appendAll(t, s, []streamData{{ls, es}}, map[string][]byte{"f": []byte(strconv.Itoa(upto + 500))})
	if got := readAll(t, s, p)[ls.String()]; len(got) != upto+500-from {
		t.Fatalf("%s round %d: %d entries after resuming", mode, round, len(got))
	}
	t.Logf("%s round %d: killed after %v with %d entries committed (%d dropped by retention)", mode, round, delay, upto, from)
}

// killChild appends, committing often, until it is killed; compact mode
// recompacts and retention mode drops all but the last three days after
// every few commits.
func killChild(dir, mode string) {
	opts := Options{HeadFlushBytes: 32 << 10, CompactAfterIdle: -1}
	if mode == "retention" {
		// Open's own retention (by the real clock) drops nothing; the
		// loop below moves the clock with the entries.
		opts.Retention = 365 * 24 * time.Hour
	}
	s, err := Open(dir, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ls := labels.FromStrings("job", "kill")
	// Never outlive a parent that failed to kill us.
	deadline := time.Now().Add(30 * time.Second)
	ctx := context.Background()
	for i := 0; time.Now().Before(deadline); i += 100 {
		var es []Entry
		for j := i; j < i+100; j++ {
			es = append(es, killEntry(j))
		}
		b := AppendBatch{Streams: []StreamEntries{{Labels: ls, Entries: es}}, Cursors: map[string][]byte{"f": []byte(strconv.Itoa(i + 100))}}
		if err := s.Append(ctx, b); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if i%1000 == 0 {
			_ = s.Flush(ctx)
		}
		switch {
		case mode == "compact" && i%600 == 0:
			_ = s.Flush(ctx)
			_ = s.Compact(ctx)
		case mode == "retention" && i%600 == 0:
			_ = s.Flush(ctx)
			day := int64(i / killPerDay)
			_ = s.ApplyRetention(time.Unix(0, day0+(day-2)*nsPerDay).Add(opts.Retention))
		}
	}
	os.Exit(3)
}
