// Package fsync writes files so that a crash leaves either the old or the
// new content: the few durable-write steps the store and the ingester share.
package fsync

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile creates or truncates path, writes data and syncs it.
func WriteFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReplaceFile replaces path with data: a synced temporary file beside it
// (path + ".tmp") is renamed over path, then the directory is synced.
func ReplaceFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := WriteFile(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return Dir(filepath.Dir(path))
}

func dirErr(dir string, err error) error {
	return fmt.Errorf("sync directory %s: %w", dir, err)
}
