//go:build !linux

package parentwatch

import "os"

// askParentDeathSignal does nothing where the kernel has no parent-death
// signal: the parent pid check alone notices the parent is gone (an orphan
// is reparented on every Unix).
func askParentDeathSignal(chan<- os.Signal) error { return nil }
