// Package parentwatch tells a process that the process which started it
// has exited. Grafana starts Lokal's plugin process; when Grafana is killed
// (SIGKILL, the OOM killer) the plugin is reparented and, left alone, would
// run on holding its stores' locks, so the plugin process of the next
// Grafana could open none of them.
package parentwatch

import (
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// DefaultInterval is how often Watch compares the parent pid when nothing
// signals the parent's death sooner.
const DefaultInterval = time.Second

// Watch calls gone once, on a goroutine of its own, when the process that
// started this one has exited: this process then has another parent (init,
// or a subreaper), so its parent pid differs from the one Watch found. The
// parent pid is compared every interval and, on Linux, also the moment the
// kernel delivers the parent-death signal Watch asks for
// (PR_SET_PDEATHSIG). That signal also comes when only the parent's thread
// that started this process ends; the parent pid tells the two apart.
//
// Before gone runs SIGPIPE is ignored: the parent held the read ends of
// this process's stdout and stderr, and a write to them (a log line) must
// fail instead of killing the process before gone is done.
//
// The returned stop ends the watch; err reports that the parent-death
// signal could not be set up, in which case the interval check still runs.
// An interval of 0 or less means DefaultInterval.
func Watch(interval time.Duration, gone func()) (stop func(), err error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	parent := os.Getppid()
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		// The parent-death signal is a property of the thread that asked
		// for it: keep this goroutine on that thread while it watches (the
		// thread ends with it).
		runtime.LockOSThread()
		sig := make(chan os.Signal, 1)
		errc <- askParentDeathSignal(sig)
		defer signal.Stop(sig)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		if watch(parent, func() int { return currentParent(parent) }, sig, tick.C, done) {
			signal.Ignore(syscall.SIGPIPE)
			gone()
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }, <-errc
}

// watch waits for a signal or a tick at which ppid() is no longer parent
// (true), or for done (false).
func watch(parent int, ppid func() int, sig <-chan os.Signal, tick <-chan time.Time, done <-chan struct{}) bool {
	for {
		// The first look comes at once: the parent may have died before
		// the death signal was asked for.
		if ppid() != parent {
			return true
		}
		select {
		case <-done:
			return false
		case <-sig:
		case <-tick:
		}
	}
}
