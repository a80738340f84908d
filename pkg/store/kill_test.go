package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

const killChildEnv = "LOKAL_STORE_KILL_CHILD"

// killLine is entry i's line; the checks rebuild it.
func killLine(i int) string { return fmt.Sprintf("entry %06d of the kill test", i) }

// TestKillNine appends from a child process that is killed with SIGKILL at
// a random moment, then checks the reopened store holds exactly the entries
// before its cursor, each once, and that resuming from the cursor completes
// the data.
func TestKillNine(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for round, delay := range []time.Duration{150 * time.Millisecond, 400 * time.Millisecond, 700 * time.Millisecond} {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillNine$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		s := openTest(t, dir)
		upto := 0
		if v, ok := s.Cursors()["f"]; ok {
			upto, _ = strconv.Atoi(string(v))
		}
		ls := labels.FromStrings("job", "kill")
		p := SelectParams{Matchers: []*labels.Matcher{mustMatcher(t, labels.MatchEqual, "job", "kill")}, Start: day0, End: day0 + nsPerDay, Lines: true}
		got := readAll(t, s, p)[ls.String()]
		if len(got) != upto {
			t.Fatalf("round %d: cursor at %d but %d entries stored", round, upto, len(got))
		}
		for i, e := range got {
			if e.Seq != uint64(i) || e.Line != killLine(i) {
				t.Fatalf("round %d: entry %d is %+v", round, i, e)
			}
		}
		// Resume like the ingester: from the cursor.
		var es []Entry
		for i := upto; i < upto+500; i++ {
			es = append(es, Entry{Ts: day0 + int64(i), Seq: uint64(i), Line: killLine(i)})
		}
		appendAll(t, s, []streamData{{ls, es}}, map[string][]byte{"f": []byte(strconv.Itoa(upto + 500))})
		if got := readAll(t, s, p)[ls.String()]; len(got) != upto+500 {
			t.Fatalf("round %d: %d entries after resuming", round, len(got))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after %v with %d entries committed", round, delay, upto)
	}
}

// killChild appends, committing often, until it is killed.
func killChild(dir string) {
	s, err := Open(dir, Options{HeadFlushBytes: 32 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ls := labels.FromStrings("job", "kill")
	// Never outlive a parent that failed to kill us.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i += 100 {
		var es []Entry
		for j := i; j < i+100; j++ {
			es = append(es, Entry{Ts: day0 + int64(j), Seq: uint64(j), Line: killLine(j)})
		}
		b := AppendBatch{Streams: []StreamEntries{{Labels: ls, Entries: es}}, Cursors: map[string][]byte{"f": []byte(strconv.Itoa(i + 100))}}
		if err := s.Append(context.Background(), b); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if i%1000 == 0 {
			_ = s.Flush(context.Background())
		}
	}
	os.Exit(3)
}
