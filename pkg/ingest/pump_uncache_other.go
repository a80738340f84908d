//go:build !linux

package ingest

import "os"

// adviseDontNeedOS does nothing where posix_fadvise is not at hand.
func adviseDontNeedOS(*os.File, int64, int64) {}
