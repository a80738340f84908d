package log

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/sample"
)

// dashboardBucketTemplate is the label template of the provisioned
// CosyVoice3 dashboard's panel "Generation requests by text_len".
const dashboardBucketTemplate = `{{ printf "%03d-%03d" (mul (div .text_len 100) 100) (add (mul (div .text_len 100) 100) 99) }}`

// sampleRunLines returns the "Generating audio" lines of a small history
// written by pkg/sample (run.log of every instance).
func sampleRunLines(b *testing.B) [][]byte {
	b.Helper()
	dir := b.TempDir()
	start := time.Date(2024, 12, 17, 0, 0, 0, 0, time.UTC)
	if _, err := sample.Write(dir, sample.Options{Seed: 1, Size: 4 << 20, Start: start}); err != nil {
		b.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*", "run.log"))
	if err != nil || len(files) == 0 {
		b.Fatalf("no run.log in the sample history (%v)", err)
	}
	var lines [][]byte
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Generating audio") {
				lines = append(lines, []byte(sc.Text()))
			}
		}
		f.Close()
	}
	if len(lines) == 0 {
		b.Fatal("no Generating audio lines in the sample history")
	}
	return lines
}

// BenchmarkDashboardTemplate runs the dashboard panel's pipeline
// (`|= "Generating audio" | regexp ... | label_format ...`) and variants
// over realistic run.log lines; one op is one line.
func BenchmarkDashboardTemplate(b *testing.B) {
	lines := sampleRunLines(b)
	must := func(s Stage, err error) Stage {
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	contains, err := NewLineFilter(OpContains, "Generating audio")
	if err != nil {
		b.Fatal(err)
	}
	re := func() Stage { return must(NewRegexpParser(`text_len=(?P<text_len>\d+)`)) }
	cases := []struct {
		name   string
		stages []Stage
	}{
		{"regexp", []Stage{NewFilterStage(contains), re()}},
		{"regexp+label_format-bucket", []Stage{NewFilterStage(contains), re(),
			must(NewLabelsFormatter([]LabelFormat{{Name: "text_len_bucket", Value: dashboardBucketTemplate}}))}},
		{"regexp+label_format-field", []Stage{NewFilterStage(contains), re(),
			must(NewLabelsFormatter([]LabelFormat{{Name: "n", Value: "len={{.text_len}}"}}))}},
		{"regexp+line_format", []Stage{NewFilterStage(contains), re(), must(NewLineFormatter("{{.text_len}} chars"))}},
	}
	base := labels.FromStrings("filename", "host-1/run.log", "instance", "host-1:50000", "job", "cosyvoice3", "level", "info")
	for _, tc := range cases {
		sp := NewPipeline(tc.stages...).ForStream(base)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, _, _, ok := sp.Process(int64(i), lines[i%len(lines)]); !ok {
					b.Fatal("line dropped")
				}
				i++
			}
		})
	}
}
