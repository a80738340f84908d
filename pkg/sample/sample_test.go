package sample

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

var start = time.Date(2024, 12, 17, 0, 0, 0, 0, time.UTC)

// seqRe finds the seq of an entry in any of the file formats.
var seqRe = regexp.MustCompile(`(?:seq=|"seq":)(\d+)`)

// readSeqs returns the seqs found in every file under dir (but the manifest).
func readSeqs(t *testing.T, dir string) []int64 {
	t.Helper()
	var seqs []int64
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || fi.Name() == ManifestFile {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return err
			}
			if b, err = io.ReadAll(zr); err != nil {
				return err
			}
		}
		for _, m := range seqRe.FindAllSubmatch(b, -1) {
			n, _ := strconv.ParseInt(string(m[1]), 10, 64)
			seqs = append(seqs, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs
}

func checkSeqs(t *testing.T, seqs []int64, first, last int64) {
	t.Helper()
	if int64(len(seqs)) != last-first+1 {
		t.Fatalf("found %d seqs, want %d (%d..%d)", len(seqs), last-first+1, first, last)
	}
	for i, s := range seqs {
		if s != first+int64(i) {
			t.Fatalf("seq %d missing or repeated (found %d at %d)", first+int64(i), s, i)
		}
	}
}

func TestWriteManifestMatchesFiles(t *testing.T) {
	dir := t.TempDir()
	m, err := Write(dir, Options{Seed: 7, Size: 256 << 10, Start: start, Span: 6 * time.Hour, Needles: 4, LongLines: 1})
	if err != nil {
		t.Fatal(err)
	}
	// each host writes every kind and startup.log
	if len(m.Files) != 2*(len(fileKinds)+1) {
		t.Errorf("%d files, want %d", len(m.Files), 2*(len(fileKinds)+1))
	}
	var total, bytesTotal int64
	for _, f := range m.Files {
		b, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != f.Bytes {
			t.Errorf("%s: %d bytes, manifest says %d", f.Path, len(b), f.Bytes)
		}
		if n := int64(bytes.Count(b, []byte("\n"))); n != f.Lines {
			t.Errorf("%s: %d lines, manifest says %d", f.Path, n, f.Lines)
		}
		if f.Labels["filename"] != f.Path || f.Labels["job"] != "cosyvoice3" || !strings.HasPrefix(f.Path, f.Labels["instance"]+"/") {
			t.Errorf("%s: labels %v", f.Path, f.Labels)
		}
		total += f.Entries
		bytesTotal += f.Bytes
	}
	if total != m.TotalEntries {
		t.Errorf("files hold %d entries, total says %d", total, m.TotalEntries)
	}
	if bytesTotal < 256<<10 {
		t.Errorf("wrote %d bytes, asked for %d", bytesTotal, 256<<10)
	}
	checkSeqs(t, readSeqs(t, dir), 1, m.LastSeq)
	if len(m.Needles) != 4 {
		t.Fatalf("%d needles, want 4", len(m.Needles))
	}
	for _, n := range m.Needles {
		b, _ := os.ReadFile(filepath.Join(dir, n.File))
		if c := bytes.Count(b, []byte(n.Token)); c != 1 {
			t.Errorf("needle %s found %d times in %s", n.Token, c, n.File)
		}
		if n.Ts.Before(m.Start) || n.Ts.After(m.End) {
			t.Errorf("needle %s at %s, outside %s..%s", n.Token, n.Ts, m.Start, m.End)
		}
	}
	if m.OOMEntries == 0 {
		t.Error("no CUDA OOM entries")
	}
	if !m.Start.Equal(start) || m.End.After(start.Add(6*time.Hour)) || m.End.Before(start.Add(5*time.Hour)) {
		t.Errorf("history %s..%s, want about %s..%s", m.Start, m.End, start, start.Add(6*time.Hour))
	}
	for _, lv := range []string{"info", "debug", "warn", "error", "critical", "unknown"} {
		if m.EntriesByLevel[lv] == 0 {
			t.Errorf("no %s entries", lv)
		}
	}
	long := false
	for _, f := range m.Files {
		b, _ := os.ReadFile(filepath.Join(dir, f.Path))
		for _, l := range bytes.Split(b, []byte("\n")) {
			long = long || len(l) > LongLineBytes
		}
	}
	if !long {
		t.Error("no long line planted")
	}
	back, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.TotalEntries != m.TotalEntries || back.LastSeq != m.LastSeq || len(back.Files) != len(m.Files) || len(back.Needles) != len(m.Needles) || !back.End.Equal(m.End) {
		t.Errorf("manifest read back differs: %+v", back)
	}
	if _, err := ReadManifest(t.TempDir()); err == nil {
		t.Error("ReadManifest of an empty directory: no error")
	}
}

func TestWriteDeterministic(t *testing.T) {
	read := func(seed uint64) map[string]string {
		dir := t.TempDir()
		if _, err := Write(dir, Options{Seed: seed, Size: 64 << 10, Start: start}); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				b, _ := os.ReadFile(p)
				rel, _ := filepath.Rel(dir, p)
				out[rel] = string(b)
			}
			return nil
		})
		return out
	}
	a, b, c := read(3), read(3), read(4)
	if len(a) == 0 {
		t.Fatal("nothing written")
	}
	for k := range a {
		if a[k] != b[k] {
			t.Errorf("%s differs between two runs with the same seed", k)
		}
	}
	same := true
	for k := range a {
		same = same && a[k] == c[k]
	}
	if same {
		t.Error("seeds 3 and 4 wrote the same logs")
	}
}

func TestLiveRotation(t *testing.T) {
	for _, mode := range []string{RotateRename, RotateCopyTruncate} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			m, err := Write(dir, Options{Seed: 1, Size: 16 << 10, Start: start, Instances: 1})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := Live(ctx, dir, LiveOptions{Seed: 2, Rate: 1e6, RotateBytes: 4 << 10, RotateMode: mode, FirstSeq: m.LastSeq + 1, MaxEntries: 400, Instances: 1})
			if err != nil {
				t.Fatal(err)
			}
			if res.Entries != 400 || res.LastSeq != m.LastSeq+400 {
				t.Fatalf("live wrote %d entries up to seq %d", res.Entries, res.LastSeq)
			}
			if res.Rotations == 0 {
				t.Fatal("no rotation happened")
			}
			checkSeqs(t, readSeqs(t, dir), 1, res.LastSeq)
			if _, err := os.Stat(filepath.Join(dir, "host-1", "cosyvoice.log.2")); err != nil {
				t.Errorf("expected several backups: %v", err)
			}
		})
	}
}

func TestLiveCompress(t *testing.T) {
	dir := t.TempDir()
	res, err := Live(context.Background(), dir, LiveOptions{Seed: 5, Rate: 1e6, RotateBytes: 2 << 10, Compress: true, MaxEntries: 300, Instances: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, readSeqs(t, dir), 1, res.LastSeq)
	if !fileExists(filepath.Join(dir, "host-1", "cosyvoice.log.2.gz")) || !fileExists(filepath.Join(dir, "host-1", "cosyvoice.log.1")) {
		t.Error("expected cosyvoice.log.1 plain and cosyvoice.log.2.gz")
	}
	if fileExists(filepath.Join(dir, "host-1", "cosyvoice.log.2")) {
		t.Error("cosyvoice.log.2 left uncompressed")
	}
}

func TestLiveBadMode(t *testing.T) {
	if _, err := Live(context.Background(), t.TempDir(), LiveOptions{RotateMode: "weekly"}); err == nil {
		t.Fatal("want an error for an unknown rotate mode")
	}
}

func TestLiveMaxBackups(t *testing.T) {
	dir := t.TempDir()
	_, err := Live(context.Background(), dir, LiveOptions{Seed: 3, Rate: 1e6, RotateBytes: 2 << 10, MaxBackups: 2, MaxEntries: 300, Instances: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "host-1", "cosyvoice.log.3")); !os.IsNotExist(err) {
		t.Errorf("a third backup exists with MaxBackups 2: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "host-1", "cosyvoice.log.2")); err != nil {
		t.Errorf("second backup missing: %v", err)
	}
}

func TestLiveStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Live(ctx, t.TempDir(), LiveOptions{Rate: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries > 1 {
		t.Errorf("wrote %d entries after the context ended", res.Entries)
	}
}

// The guide's lines: run.sh's "2024-12-17 14:30:52 INFO Generating audio:
// text_len=12, seed=42" and startup.log's "[SYSTEM] Starting CosyVoice3
// v0.3 @ commit <hash>", one per restart in the manifest.
func TestGuideLines(t *testing.T) {
	dir := t.TempDir()
	m, err := Write(dir, Options{Seed: 1, Size: 512 << 10, Start: start, Span: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	runRe := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?:(?:INFO|DEBUG|WARNING) Generating audio: text_len=\d+, seed=\d+|(?:ERROR|CRITICAL) run\.sh: python app\.py exited with status \d) seq=\d+$`)
	startRe := regexp.MustCompile(`^(\S+) \[SYSTEM\] Starting CosyVoice3 v0\.3 @ commit ([0-9a-f]{7}) seq=(\d+)$`)
	type restart struct {
		ts     string
		commit string
		seq    string
	}
	var runs int
	got := map[string][]restart{}
	for _, f := range m.Files {
		b, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		switch filepath.Base(f.Path) {
		case "run.log":
			for _, l := range lines {
				if !runRe.MatchString(l) {
					t.Errorf("%s: %q is not in the guide's run.sh shape", f.Path, l)
				}
				runs++
			}
		case "startup.log":
			if f.Labels["job"] != "cosyvoice3" {
				t.Errorf("%s: labels %v", f.Path, f.Labels)
			}
			for _, l := range lines {
				s := startRe.FindStringSubmatch(l)
				if s == nil {
					t.Fatalf("%s: %q is not the guide's startup line", f.Path, l)
				}
				got[f.Path] = append(got[f.Path], restart{s[1], s[2], s[3]})
			}
		}
	}
	if runs == 0 {
		t.Error("no run.sh lines")
	}
	want := map[string][]restart{}
	commits := map[string]int{}
	for _, r := range m.Restarts {
		want[r.File] = append(want[r.File], restart{r.Ts.Format(time.RFC3339), r.Commit, strconv.FormatInt(r.Seq, 10)})
		commits[r.Commit]++
		if r.Ts.Before(m.Start) || r.Ts.After(m.End) {
			t.Errorf("restart %+v outside the history %s..%s", r, m.Start, m.End)
		}
	}
	if len(want) != 2 || len(got) != len(want) {
		t.Fatalf("startup.log in %d files, manifest restarts in %d, want 2 (one per host)", len(got), len(want))
	}
	for file, w := range want {
		g := got[file]
		if len(g) != len(w) {
			t.Errorf("%s: %d startup lines, manifest says %d", file, len(g), len(w))
			continue
		}
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%s line %d: %+v, manifest says %+v", file, i+1, g[i], w[i])
			}
			if i > 0 && g[i].ts < g[i-1].ts {
				t.Errorf("%s: restarts out of time order at line %d", file, i+1)
			}
		}
	}
	if len(commits) != len(Commits) || commits[CommitABC1234] < 2 {
		t.Errorf("restarts by commit %v: want every one of %v, %s on each host", commits, Commits, CommitABC1234)
	}
	if m.EntriesByLevel["unknown"] != int64(len(m.Restarts)) {
		t.Errorf("%d entries of level unknown, want one per restart (%d)", m.EntriesByLevel["unknown"], len(m.Restarts))
	}
}
