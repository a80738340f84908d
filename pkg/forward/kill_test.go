package forward

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/store"
)

// The kill test runs the forwarding process as a child (this test binary
// again) and kills it with SIGKILL while a batch is in flight.
const (
	childDirEnv   = "LOKAL_FWD_CHILD_DIR"
	childURLEnv   = "LOKAL_FWD_CHILD_URL"
	childTotalEnv = "LOKAL_FWD_CHILD_TOTAL"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		if err := runChild(dir, os.Getenv(childURLEnv), os.Getenv(childTotalEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild ingests (from the store's source cursor on) and forwards until
// the receiver has everything, then closes cleanly.
func runChild(dir, url, totalS string) error {
	total, err := strconv.Atoi(totalS)
	if err != nil {
		return err
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		return err
	}
	f, err := Start(st, []config.Client{testClient(url)}, nil)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := runSource(ctx, st, total, 50, 5*time.Millisecond); err != nil {
		return err
	}
	for f.Status()[0].LagEntries > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	f.Stop()
	return st.Close()
}

func TestForwardSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the test binary as a child process several times")
	}
	const total, kills = 4000, 4
	rec := newReceiver(t, func(n int) fault { return fault{delay: 30 * time.Millisecond} })
	dir := t.TempDir()
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childURLEnv+"="+rec.url(), childTotalEnv+"="+strconv.Itoa(total))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	for k := range kills {
		cmd := start()
		seen := len(rec.stored())
		deadline := time.After(30 * time.Second)
		// Kill once a few more batches arrived and one is stored but not
		// yet answered: the child never learns it was taken.
	wait:
		for {
			select {
			case <-rec.notify:
				rec.mu.Lock()
				n, inFlight := len(rec.batches), rec.inFlight
				rec.mu.Unlock()
				if n >= seen+3+k && inFlight > 0 {
					break wait
				}
			case <-deadline:
				t.Fatalf("kill %d: the child sent nothing new in 30 s", k)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	cmd := start()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("last run: %v", err)
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("last run did not finish in 2 minutes")
	}
	batches := rec.stored()
	dups := checkDelivery(t, batches, sourceKeys(total), nil)
	t.Logf("%d entries in %d batches after %d kills -9; %d duplicate entries, all in whole re-sent batches", total, len(batches), kills, dups)
	if dups == 0 {
		t.Logf("no batch was re-sent: every kill came after the cursor was durable")
	}
}
