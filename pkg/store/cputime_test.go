package store

import (
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/testshared"
)

// cpuTime is the benchmarks' CPU clock (0 where the platform has none).
func cpuTime() time.Duration { return testshared.CPUTime() }
