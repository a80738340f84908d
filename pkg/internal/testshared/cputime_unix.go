//go:build unix

package testshared

import (
	"syscall"
	"time"
)

// CPUTime is the process's user+system CPU time so far: on a shared
// machine it says more about a benchmark's cost than wall time does.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
