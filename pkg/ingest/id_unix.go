//go:build unix

package ingest

import (
	"fmt"
	"os"
	"syscall"
)

// statID stats a path and returns its identity: device and inode.
func statID(p string) (os.FileInfo, fileID, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fileID{}, err
	}
	id, ok := idOf(fi)
	if !ok {
		return nil, fileID{}, fmt.Errorf("%s: no device/inode in its stat", p)
	}
	return fi, id, nil
}

// openedID is the identity of an open file.
func openedID(f *os.File) (fileID, bool) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, false
	}
	return idOf(fi)
}

func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, true //nolint:unconvert // Dev is int32 on some platforms
}

// linkCount is the number of names a file has; 0 once it is deleted.
func linkCount(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink) //nolint:unconvert // Nlink is uint16 on some platforms
	}
	return 1
}

// openLog opens a log file for reading. On Unix an open file never stops
// its writer from renaming or deleting it.
func openLog(p string) (*os.File, error) { return os.Open(p) }
