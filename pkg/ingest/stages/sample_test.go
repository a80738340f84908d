package stages

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/sample"
)

// TestSampleGroundTruth runs the project's own sample logs through the
// default pipeline: entries and levels must be exactly the manifest's, and
// every entry from a file that writes times must have its time.
func TestSampleGroundTruth(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2024, 12, 17, 0, 0, 0, 0, time.UTC)
	m, err := sample.Write(dir, sample.Options{Seed: 42, Size: 512 << 10, Start: start, Span: 6 * time.Hour, Needles: 3, LongLines: 1})
	if err != nil {
		t.Fatal(err)
	}
	levels := map[string]int64{}
	var total int64
	for _, f := range m.Files {
		p, err := New(nil, Options{Labels: labels.FromMap(f.Labels), Location: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		emit := func(e Entry) {
			got++
			levels[e.Labels.Get(LevelLabel)]++
			if filepath.Base(f.Path) != "access.log" && (e.Ts.Before(start) || e.Ts.After(m.End)) {
				t.Errorf("%s: time %s outside the history for %.80q", f.Path, e.Ts, e.Line)
			}
		}
		r := bufio.NewReaderSize(fh, 1<<20)
		var off int64
		for {
			line, err := r.ReadString('\n')
			if line == "" && err != nil {
				break
			}
			n := int64(len(line))
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			p.Process(Entry{Line: line, Offset: off}, emit)
			off += n
		}
		fh.Close()
		p.Flush(time.Time{}, emit)
		if got != f.Entries {
			t.Errorf("%s: %d entries, manifest says %d", f.Path, got, f.Entries)
		}
		if st := p.Stats(); st.TimestampFailures != 0 {
			t.Errorf("%s: %d timestamp failures", f.Path, st.TimestampFailures)
		}
		total += got
	}
	if total != m.TotalEntries {
		t.Errorf("%d entries, manifest says %d", total, m.TotalEntries)
	}
	for k, v := range m.EntriesByLevel {
		if levels[k] != v {
			t.Errorf("level %s: %d entries, manifest says %d", k, levels[k], v)
		}
	}
	for k, v := range levels {
		if _, ok := m.EntriesByLevel[k]; !ok {
			t.Errorf("level %s: %d entries the manifest does not have", k, v)
		}
	}
}
