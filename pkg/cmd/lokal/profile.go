package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiles starts the developer-only profiles `lokal ingest` writes
// when LOKAL_CPUPROFILE (a CPU profile), LOKAL_TRACE (an execution
// trace, which shows stalls and blocking) or LOKAL_MEMPROFILE (the
// allocations of the whole run, written at the end) names a file; the
// returned stop function ends them and reports the first failure.
func startProfiles() (stop func() error, err error) {
	var stops []func() error
	stopAll := func() error {
		var first error
		for _, s := range stops {
			if err := s(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	if path := os.Getenv("LOKAL_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("LOKAL_CPUPROFILE: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("LOKAL_CPUPROFILE %s: %w", path, err)
		}
		stops = append(stops, stopAndClose(pprof.StopCPUProfile, f, "cpu profile"))
	}
	if path := os.Getenv("LOKAL_TRACE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			_ = stopAll()
			return nil, fmt.Errorf("LOKAL_TRACE: %w", err)
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			_ = stopAll()
			return nil, fmt.Errorf("LOKAL_TRACE %s: %w", path, err)
		}
		stops = append(stops, stopAndClose(trace.Stop, f, "trace"))
	}
	if path := os.Getenv("LOKAL_MEMPROFILE"); path != "" {
		// Record every allocation: the profile is for finding what the
		// collector has to chase, not for a long-running process.
		runtime.MemProfileRate = 1 << 10
		stops = append(stops, func() error {
			f, err := os.Create(path)
			if err != nil {
				return fmt.Errorf("LOKAL_MEMPROFILE: %w", err)
			}
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				f.Close()
				return fmt.Errorf("LOKAL_MEMPROFILE %s: %w", path, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("close memory profile %s: %w", path, err)
			}
			return nil
		})
	}
	return stopAll, nil
}

// stopAndClose ends a profile and closes its file.
func stopAndClose(stop func(), f *os.File, what string) func() error {
	return func() error {
		stop()
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s %s: %w", what, f.Name(), err)
		}
		return nil
	}
}
