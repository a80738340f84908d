//go:build linux

package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// adviseWillNeed asks the kernel to start reading a range of f now, so the
// reads that follow find it in the page cache. It is advice: a failure
// changes nothing but speed.
func adviseWillNeed(f *os.File, off, n int64) {
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
}
