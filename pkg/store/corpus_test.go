package store

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// corpusDirEnv names a loggen corpus directory for the big benchmarks; when it
// is unset they generate nothing and skip.
const corpusDirEnv = "LOKAL_STORE_CORPUS"

type corpusManifest struct {
	Start, End time.Time
	Files      []struct {
		Path   string            `json:"path"`
		Labels map[string]string `json:"labels"`
		Bytes  int64             `json:"bytes"`
	} `json:"files"`
	Needles []struct {
		Token string `json:"token"`
		File  string `json:"file"`
		Ts    string `json:"ts"`
	} `json:"needles"`
}

func loadCorpusManifest(tb testing.TB, dir string) corpusManifest {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		tb.Skipf("no loggen corpus at %s (%v); generate one with /work/shared/bin/loggen -out DIR -needles 20 and set %s", dir, err, corpusDirEnv)
	}
	var m corpusManifest
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("manifest: %v", err)
	}
	return m
}

func corpusDir(tb testing.TB) string {
	d := os.Getenv(corpusDirEnv)
	if d == "" {
		tb.Skipf("set %s to a loggen corpus directory to run this benchmark", corpusDirEnv)
	}
	return d
}

// readCorpusLines calls fn for every line of a corpus file with its byte
// offset.
func readCorpusLines(tb testing.TB, path string, fn func(seq uint64, line string)) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatalf("open corpus: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var off uint64
	for sc.Scan() {
		fn(off, sc.Text())
		off += uint64(len(sc.Bytes()) + 1)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("read corpus %s: %v", path, err)
	}
}

// corpusTimeRE finds the timestamp loggen writes near a line's start, in the
// shapes its services use.
var corpusTimeRE = regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?Z?`)

// lineTime gives a corpus line the time the ingester would: the one written
// near its start (read as UTC), else fallback. It lets the benchmarks see
// the timestamp elision real ingestion gets.
func lineTime(line string, fallback int64) int64 {
	m := corpusTimeRE.FindString(line[:min(len(line), 64)])
	if m == "" {
		return fallback
	}
	m = strings.Replace(strings.Replace(strings.TrimSuffix(m, "Z"), " ", "T", 1), ",", ".", 1)
	t, err := time.Parse("2006-01-02T15:04:05.999999999", m)
	if err != nil {
		return fallback
	}
	return t.UnixNano()
}

func fmtMB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
