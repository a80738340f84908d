//go:build !windows

package parentwatch

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// watch reports the parent gone exactly when the parent pid has changed,
// whether a signal or a tick made it look.
func TestWatch(t *testing.T) {
	const parent = 4242
	tests := []struct {
		name   string
		ppids  []int    // what each look sees, the last one repeating
		events []string // "sig" or "tick", sent in order; then done closes
		want   bool
		looks  int // how many times ppid was read
	}{
		{"parent already gone", []int{1}, nil, true, 1},
		{"parent lives", []int{parent}, []string{"tick", "tick", "sig"}, false, 4},
		{"reparented to init, seen at a tick", []int{parent, parent, 1}, []string{"tick", "tick", "tick"}, true, 3},
		{"reparented to a subreaper, seen at the signal", []int{parent, 77}, []string{"sig"}, true, 2},
		{"signal for a parent thread's death only", []int{parent, parent, parent}, []string{"sig", "tick"}, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			looks := 0
			ppid := func() int {
				i := min(looks, len(tt.ppids)-1)
				looks++
				return tt.ppids[i]
			}
			sig := make(chan os.Signal)
			tick := make(chan time.Time)
			done := make(chan struct{})
			res := make(chan bool, 1)
			go func() { res <- watch(parent, ppid, sig, tick, done) }()
			var got bool
			finished := false
			for _, ev := range tt.events {
				if ev == "sig" {
					select {
					case sig <- syscall.SIGUSR2:
					case got = <-res:
						finished = true
					}
				} else {
					select {
					case tick <- time.Time{}:
					case got = <-res:
						finished = true
					}
				}
				if finished {
					break
				}
			}
			if !finished {
				close(done)
				got = <-res
			}
			if got != tt.want || looks != tt.looks {
				t.Errorf("watch = %v after %d looks, want %v after %d", got, looks, tt.want, tt.looks)
			}
		})
	}
}

// childEnv makes this test binary the middle of a three-process chain.
const childEnv = "PARENTWATCH_TEST_ROLE"

// TestMain lets this test binary play the parent that dies and the child
// that watches it.
func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "middle":
		// Start the watcher child, tell the test its pid, then wait to be
		// killed.
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=watcher")
		cmd.Stdout = os.Stdout
		if err := cmd.Start(); err != nil {
			os.Exit(2)
		}
		select {}
	case "watcher":
		// On Linux only the parent-death signal can end this within the
		// test: the interval check would come in an hour.
		interval := time.Hour
		if runtime.GOOS != "linux" {
			interval = 50 * time.Millisecond
		}
		gone := make(chan struct{})
		if _, err := Watch(interval, func() { close(gone) }); err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(2)
		}
		os.Stdout.WriteString("pid " + strconv.Itoa(os.Getpid()) + "\n")
		<-gone
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A real parent killed with SIGKILL: the child's watch fires (on Linux by
// the parent-death signal, as the hour-long interval never comes) and the
// child exits.
func TestWatchRealParent(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=middle")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := out.Read(buf)
	line := strings.TrimSpace(string(buf[:n]))
	pid, perr := strconv.Atoi(strings.TrimPrefix(line, "pid "))
	if err != nil || perr != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("watcher said %q: %v %v", line, err, perr)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// Only this deadline ends the wait: the test asserts that the watcher
	// exits, not how fast.
	deadline := time.Now().Add(time.Minute)
	for !Exited(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("watcher %d still runs a minute after its parent was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
