//go:build windows

package store

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOffset is where the writer's lock byte lies in the LOCK file: far
// past its end, because Windows locks are mandatory and a lock over the
// first bytes would stop other processes from reading the writer's pid.
const lockOffset = 1 << 62

func lockOverlapped() *windows.Overlapped {
	return &windows.Overlapped{Offset: uint32(lockOffset & 0xffffffff), OffsetHigh: uint32(lockOffset >> 32)}
}

// tryLockFile takes the writer's exclusive lock on the store's LOCK file
// without waiting (LockFileEx, released by Windows when the handle closes
// or the process dies). It returns errLockHeld when another writer holds it.
func tryLockFile(f *os.File) error {
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, lockOverlapped())
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return errLockHeld
	}
	return err
}

// unlockFile releases the lock tryLockFile took.
func unlockFile(f *os.File) {
	_ = windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, lockOverlapped())
}

// inodeOf is 0 on Windows: os.FileInfo carries no file index there, so a
// read-only store notices a rewritten manifest by its size and time alone.
func inodeOf(os.FileInfo) uint64 { return 0 }
