package parentwatch

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// parentDeathSignal is the signal the kernel sends when the parent dies.
// Not SIGTERM: the signal also comes when only the parent's thread that
// started this process ends, and then nothing must stop; any process may
// send SIGUSR2 too, which only makes Watch look at the parent pid early.
const parentDeathSignal = syscall.SIGUSR2

// askParentDeathSignal has the kernel send parentDeathSignal to sig when
// the parent of the calling thread's process dies.
func askParentDeathSignal(sig chan<- os.Signal) error {
	// Catch it before asking for it: uncaught, SIGUSR2 would kill the
	// process with nothing flushed.
	signal.Notify(sig, parentDeathSignal)
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(parentDeathSignal), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err)
	}
	return nil
}
