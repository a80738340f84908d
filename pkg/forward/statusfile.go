package forward

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// StatusFile, beside the store, holds the running forwarder's counters for
// `lokal stats` (which opens the store read-only and cannot ask the
// process that writes it). It is rewritten every statusInterval and when
// the forwarder stops.
const StatusFile = "forward-status.json"

const statusInterval = 5 * time.Second

// statusDoc is the file's content.
type statusDoc struct {
	Written time.Time `json:"written"`
	PID     int       `json:"pid"`
	Clients []Status  `json:"clients"`
}

// writeStatus replaces the status file.
func writeStatus(dir string, ss []Status) error {
	err := writeJSONFile(filepath.Join(dir, StatusFile), statusDoc{Written: time.Now().UTC(), PID: os.Getpid(), Clients: ss})
	if err != nil {
		return fmt.Errorf("forward status: %w", err)
	}
	return nil
}

// writeJSONFile replaces path with v's indented JSON through a temporary
// file, so a reader never sees half a file.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// ReadStatus reads the counters the last forwarder of the store in dir
// wrote, and when; no file gives nil and no error.
func ReadStatus(dir string) ([]Status, time.Time, error) {
	b, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("forward status: %w", err)
	}
	var d statusDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, time.Time{}, fmt.Errorf("forward status %s: %w", filepath.Join(dir, StatusFile), err)
	}
	return d.Clients, d.Written, nil
}
