package store

import "errors"

// errLockHeld is tryLockFile's answer when another writer holds the
// store's lock (see platform_unix.go, platform_windows.go).
var errLockHeld = errors.New("store lock held by another process")
