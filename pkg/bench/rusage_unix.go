//go:build unix

package bench

import (
	"os"
	"runtime"
	"syscall"
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

// selfCPUSeconds is the CPU time this process has used so far.
func selfCPUSeconds() (float64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime), true
}
