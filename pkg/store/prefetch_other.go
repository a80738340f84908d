//go:build !linux

package store

import "os"

// adviseWillNeed has no portable equivalent outside Linux: reads then
// wait for the disk one by one, as they did before.
func adviseWillNeed(*os.File, int64, int64) {}
