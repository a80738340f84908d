//go:build windows

package ingest

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

// On Windows a file's identity is its volume's serial number and its file
// index (NTFS's file ID), both from GetFileInformationByHandle: they stay
// the same through renames, as device and inode do on Unix. ReFS has
// 128-bit file IDs that the 64-bit index does not always tell apart.

// shareAll lets the log's writer rename and delete a file Lokal holds open,
// so an application's log rotation never fails because of Lokal.
const shareAll = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE

func createFile(p string, access, flags uint32) (*os.File, error) {
	name, err := windows.UTF16PtrFromString(p)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	h, err := windows.CreateFile(name, access, shareAll, nil, windows.OPEN_EXISTING, flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(h), p), nil
}

// statID stats a path and returns its identity. It opens the file (for
// attributes only, sharing everything) because os.FileInfo carries no file
// index on Windows.
func statID(p string) (os.FileInfo, fileID, error) {
	// FILE_FLAG_BACKUP_SEMANTICS lets a directory be opened too, so that
	// callers see IsDir instead of an access error.
	f, err := createFile(p, windows.FILE_READ_ATTRIBUTES, windows.FILE_FLAG_BACKUP_SEMANTICS)
	if err != nil {
		return nil, fileID{}, err
	}
	defer f.Close()
	id, err := handleID(f)
	if err != nil {
		return nil, fileID{}, fmt.Errorf("%s: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, fileID{}, err
	}
	return fi, id, nil
}

// openedID is the identity of an open file.
func openedID(f *os.File) (fileID, bool) {
	id, err := handleID(f)
	return id, err == nil
}

func handleID(f *os.File) (fileID, error) {
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(windows.Handle(f.Fd()), &info); err != nil {
		return fileID{}, fmt.Errorf("file identity: %w", err)
	}
	return fileID{
		Dev: uint64(info.VolumeSerialNumber),
		Ino: uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow),
	}, nil
}

// linkCount: os.FileInfo has no link count on Windows, so it says 1 and a
// deleted file is noticed the way a renamed one is: its path no longer
// leads to it (see checkRotated).
func linkCount(os.FileInfo) uint64 { return 1 }

// openLog opens a log file for reading, sharing delete access: Go's
// os.Open does not, and the writer's rotation (rename) would then fail.
func openLog(p string) (*os.File, error) {
	return createFile(p, windows.GENERIC_READ, windows.FILE_ATTRIBUTE_NORMAL)
}
