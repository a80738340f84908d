//go:build !unix && !windows

package store

import (
	"fmt"
	"os"
	"runtime"
)

// tryLockFile refuses: without a lock two writers could interleave
// commits and corrupt the manifest. Stores open read-only still work.
func tryLockFile(*os.File) error {
	return fmt.Errorf("writing a store is not supported on %s: it has no file lock Lokal can use", runtime.GOOS)
}

func unlockFile(*os.File) {}

func inodeOf(os.FileInfo) uint64 { return 0 }
