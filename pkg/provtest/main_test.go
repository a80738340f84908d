package provtest

import (
	"os"
	"testing"
	"time"
)

// TestMain pins the local zone to UTC: the sample writes run.sh's
// zone-less stamps in UTC, and the ingester reads zone-less stamps as
// local time, so on a machine in another zone they would move by its
// offset into the ranges the tests expect to be empty.
func TestMain(m *testing.M) {
	time.Local = time.UTC
	os.Exit(m.Run())
}
