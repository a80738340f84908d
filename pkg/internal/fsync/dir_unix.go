//go:build unix

package fsync

import "os"

// Dir makes the names created or renamed in dir durable.
func Dir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return dirErr(dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return dirErr(dir, err)
	}
	return nil
}
