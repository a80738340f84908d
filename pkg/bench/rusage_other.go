//go:build !unix

package bench

import "os"

// childUsage: getrusage(2) is Unix's; elsewhere the CPU time is still
// known but the peak memory is not, so it is reported as 0.
func childUsage(ps *os.ProcessState) (cpuSeconds, peakRSSMB float64, ok bool) {
	return (ps.UserTime() + ps.SystemTime()).Seconds(), 0, true
}

// selfCPUSeconds: without getrusage(2) the process's CPU time is not known.
func selfCPUSeconds() (float64, bool) { return 0, false }
