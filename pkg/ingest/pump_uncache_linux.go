package ingest

import (
	"os"

	"golang.org/x/sys/unix"
)

// adviseDontNeedOS asks Linux to drop the clean cached pages of f in
// [off, off+n); dirty pages are only queued for writeback. Errors are
// ignored: the advice is an optimisation.
func adviseDontNeedOS(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.Fadvise(int(fd), off, n, unix.FADV_DONTNEED)
	})
}
