package store

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

// lineTime gives a corpus line the time the ingester would: the one
// written near its start ("2006-01-02[T ]15:04:05[.,]fff[Z]", read as UTC),
// else fallback. It lets the benchmarks see the timestamp elision real
// ingestion gets, and is hand-written so it costs the ingest numbers little.
func lineTime(line string, fallback int64) int64 {
	win := line[:min(len(line), 64)]
	for i := 0; i+19 <= len(win); i++ {
		if win[i] < '0' || win[i] > '9' || win[i+4] != '-' {
			continue
		}
		if t, ok := parseCorpusTime(line[i:]); ok {
			return t
		}
	}
	return fallback
}

func parseCorpusTime(s string) (int64, bool) {
	num := func(a, b int) (int, bool) {
		v := 0
		for _, c := range []byte(s[a:b]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	if s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	var f [6]int
	for k, r := range [6][2]int{{0, 4}, {5, 7}, {8, 10}, {11, 13}, {14, 16}, {17, 19}} {
		v, ok := num(r[0], r[1])
		if !ok {
			return 0, false
		}
		f[k] = v
	}
	ns, scale := 0, 100000000
	if len(s) > 20 && (s[19] == '.' || s[19] == ',') {
		for j := 20; j < len(s) && j < 29 && s[j] >= '0' && s[j] <= '9'; j++ {
			ns += int(s[j]-'0') * scale
			scale /= 10
		}
	}
	return time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], ns, time.UTC).UnixNano(), true
}

func fmtMB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func TestLineTime(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string
	}{
		{"ts=2026-11-23T20:39:00.028Z level=info", "2026-11-23T20:39:00.028Z"},
		{"[ERROR] 2026-11-23T20:39:00Z x", "2026-11-23T20:39:00Z"},
		{"2026-11-23 20:39:00,5 - x", "2026-11-23T20:39:00.5Z"},
		{"INFO:     127.0.0.1:54446 - \"POST /x HTTP/1.1\" 200 OK", ""},
	} {
		got := lineTime(tc.line, -1)
		want := int64(-1)
		if tc.want != "" {
			want = mustTs(t, tc.want)
		}
		if got != want {
			t.Errorf("%q: got %d, want %d", tc.line, got, want)
		}
	}
}
