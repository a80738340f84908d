package stages

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/internal/golden"
	"github.com/lokal-logs/lokal/pkg/labels"
)

type goldenEntry struct {
	Offset int64             `json:"offset"`
	Ts     string            `json:"ts"`
	Labels map[string]string `json:"labels"`
	// Line is Go-quoted so invalid UTF-8 survives JSON byte for byte.
	Line string `json:"line"`
}

// TestGolden runs the nasty fixture (ANSI colours, CRLF, invalid UTF-8,
// tracebacks, every default shape, a last line without newline) through
// the zero-stage pipeline and a Promtail-style one, and compares with golden
// files; -update rewrites them.
func TestGolden(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "nasty.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, stages string }{
		{"defaults", ""},
		{"promtail", `[{multiline: {firstline: '^(\x1b\[\d+m)?\[\w+', max_wait_time: 3s}}, {regex: {expression: '^\[(?P<lvl>\w+)\]'}}, {labels: {lvl: }}, {drop: {source: lvl, value: DEBUG}}, {match: {selector: '{job="cosyvoice3"} |= "CUDA"', stages: [{static_labels: {oom: "true"}}]}}]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := New(parseStages(t, c.stages), Options{Labels: labels.FromStrings("job", "cosyvoice3"), Location: time.UTC})
			if err != nil {
				t.Fatal(err)
			}
			var out []goldenEntry
			emit := func(e Entry) {
				ts := "read"
				if !e.Ts.Equal(readTime) {
					ts = e.Ts.UTC().Format(time.RFC3339Nano)
				}
				out = append(out, goldenEntry{Offset: e.Offset, Ts: ts, Labels: e.Labels.Map(), Line: strconv.Quote(e.Line)})
			}
			var off int64
			for _, line := range bytes.Split(data, []byte("\n")) {
				p.Process(Entry{Line: string(line), Ts: readTime, Offset: off}, emit)
				off += int64(len(line)) + 1
			}
			p.Flush(time.Time{}, emit)
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", c.name+".golden.json")
			golden.Check(t, path, got)
		})
	}
}
