//go:build !unix

package testshared

import "time"

// CPUTime is 0 where there is no getrusage(2): benchmarks then report no
// CPU figures, and no test depends on them.
func CPUTime() time.Duration { return 0 }
