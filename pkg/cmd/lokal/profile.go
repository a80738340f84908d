package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiles starts the developer-only profiles `lokal ingest` writes
// when LOKAL_CPUPROFILE (a CPU profile) or LOKAL_TRACE (an execution
// trace, which shows stalls and blocking) names a file; the returned stop
// function ends them and reports the first failure.
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
