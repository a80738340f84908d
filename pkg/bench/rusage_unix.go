//go:build unix

package bench

import (
	"os"
	"runtime"
	"syscall"
	"time"
)

// childUsage is the CPU time and peak resident memory of a finished child.
func childUsage(ps *os.ProcessState) (cpuSeconds, peakRSSMB float64, ok bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0, false
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	rss := float64(ru.Maxrss) / 1024 // Linux and the BSDs report KiB
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		rss /= 1024 // macOS reports bytes
	}
	return tv(ru.Utime) + tv(ru.Stime), rss, true
}

// selfCPU is the CPU time this process has used so far. On a shared
// machine it varies much less with the load than wall time does.
func selfCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
