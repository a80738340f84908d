// Package sample writes Lokal's own CosyVoice3-style logs, deterministic by
// seed: the demo ingests them (no download), the ingester's tests append to
// and rotate them live and compare what was stored with the Manifest, and
// benchmarks use them as a corpus. Every entry carries a global seq=N so a
// test can prove none is missing and none is stored twice.
//
// The files follow the CosyVoice3 logging guide that brings users to Loki:
// run.sh's "2024-12-17 14:30:52 INFO Generating audio: text_len=12, seed=42"
// lines, and startup.log's "[SYSTEM] Starting CosyVoice3 v0.3 @ commit <hash>"
// at each simulated restart (Manifest.Restarts is their ground truth).
package sample

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Defaults for Options.
const (
	DefaultSize      = 1 << 20
	DefaultSpan      = 24 * time.Hour
	DefaultInstances = 2
	// LongLineBytes is the size of a planted long line: above the ingester's
	// default max_line_bytes (256 KiB), so it is truncated and marked.
	LongLineBytes = 300 << 10
)

// Options describe a history.
type Options struct {
	Seed uint64
	// Size is the approximate number of bytes to write (0: DefaultSize).
	Size int64
	// Span is the time the history covers, ending at Start+Span.
	Span time.Duration
	// Start is the time of the first entry (zero: now minus Span, to the minute).
	Start time.Time
	// Instances is the number of hosts, each with its own directory.
	Instances int
	// Needles plants that many unique tokens ("needle-<hex>") in entries.
	Needles int
	// LongLines plants that many lines of LongLineBytes in events.json.log
	// (not counted in Size, so the history still spans Span).
	LongLines int
	// Job is the job label (default "cosyvoice3").
	Job string
}

// Manifest is the ground truth of what was written.
type Manifest struct {
	Seed  uint64    `json:"seed"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Files []File    `json:"files"`
	// TotalEntries counts entries; a traceback and its log line are one.
	TotalEntries int64 `json:"total_entries"`
	// EntriesByLevel uses the normalised names Lokal's level label takes.
	EntriesByLevel map[string]int64 `json:"entries_by_level"`
	// OOMEntries counts entries containing "CUDA out of memory".
	OOMEntries int64    `json:"oom_entries"`
	Needles    []Needle `json:"needles"`
	FirstSeq   int64    `json:"first_seq"`
	LastSeq    int64    `json:"last_seq"`
	// Restarts are the startup.log entries, in time order per file.
	Restarts []Restart `json:"restarts"`
}

// Restart is one simulated start of CosyVoice3: a startup.log entry
// "[SYSTEM] Starting CosyVoice3 v0.3 @ commit <Commit>".
type Restart struct {
	File   string    `json:"file"`
	Ts     time.Time `json:"ts"`
	Commit string    `json:"commit"`
	Seq    int64     `json:"seq"`
}

// Commits are the versions the sample deploys, in order, each as the short
// hash startup.log names: the history starts on the first, and each later
// one is deployed at an equal share of the span. CommitABC1234 is the one the
// guide searches for.
var Commits = []string{"9e1f0c3", CommitABC1234, "5b7d2e8", "7f3a9d2"}

// CommitABC1234 is the commit of the guide's "which version was this?"
// search, {job="cosyvoice3"} |= "commit abc1234".
const CommitABC1234 = "abc1234"

// File is one written file.
type File struct {
	Path    string            `json:"path"` // relative to the directory, with /
	Labels  map[string]string `json:"labels"`
	Lines   int64             `json:"lines"`
	Entries int64             `json:"entries"`
	Bytes   int64             `json:"bytes"`
}

// Needle is a unique token planted in one entry.
type Needle struct {
	Token string    `json:"token"`
	File  string    `json:"file"`
	Ts    time.Time `json:"ts"`
	Seq   int64     `json:"seq"`
}

// ManifestFile is the name of the manifest Write leaves beside the logs.
const ManifestFile = "manifest.json"

// kinds of file each instance writes, with the share of entries they get.
var fileKinds = []struct {
	name   string
	weight int
}{
	{"cosyvoice.log", 50},
	{"access.log", 18},
	{"metrics.log", 16},
	{"run.log", 8},
	{"events.json.log", 8},
}

// Write writes a history into dir (created if needed) and returns its
// manifest, also saved as dir/manifest.json.
func Write(dir string, opts Options) (Manifest, error) {
	opts = withDefaults(opts)
	g := newGenerator(opts, 1)
	m := Manifest{Seed: opts.Seed, Start: opts.Start, EntriesByLevel: map[string]int64{}, FirstSeq: 1}
	files := map[string]*os.File{}
	writers := map[string]*bufio.Writer{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	info := map[string]*File{}
	var written int64
	needleAt := map[int64]bool{}
	// spread needles and long lines over the history by entry number
	approxEntries := opts.Size / 130
	if approxEntries < 1 {
		approxEntries = 1
	}
	for i := 0; i < opts.Needles; i++ {
		needleAt[1+int64(g.r.Int64N(approxEntries))] = true
	}
	longAt := map[int64]bool{}
	for i := 0; i < opts.LongLines; i++ {
		longAt[1+int64(g.r.Int64N(approxEntries))] = true
	}
	// emit writes one entry; only entries counted in Size advance time
	emit := func(e entry) error {
		w := writers[e.file]
		if w == nil {
			p := filepath.Join(dir, filepath.FromSlash(e.file))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("sample: %w", err)
			}
			f, err := os.Create(p)
			if err != nil {
				return fmt.Errorf("sample: %w", err)
			}
			files[e.file] = f
			w = bufio.NewWriterSize(f, 64<<10)
			writers[e.file] = w
			info[e.file] = &File{Path: e.file, Labels: g.labels(e.file)}
		}
		if _, err := w.WriteString(e.text); err != nil {
			return fmt.Errorf("sample: write %s: %w", e.file, err)
		}
		fi := info[e.file]
		fi.Lines += int64(strings.Count(e.text, "\n"))
		fi.Entries++
		fi.Bytes += int64(len(e.text))
		m.TotalEntries++
		m.EntriesByLevel[e.level]++
		if strings.Contains(e.text, "CUDA out of memory") {
			m.OOMEntries++
		}
		m.LastSeq = e.seq
		return nil
	}
	// restarts come from their own random source, so the other files are
	// the same with or without them
	restarts := restartSchedule(opts)
	for n := int64(1); written < opts.Size; n++ {
		ts := opts.Start.Add(time.Duration(float64(opts.Span) * float64(written) / float64(opts.Size)))
		for len(restarts) > 0 && !restarts[0].ts.After(ts) {
			r := restarts[0]
			restarts = restarts[1:]
			e := g.startup(r)
			if err := emit(e); err != nil {
				return m, err
			}
			m.Restarts = append(m.Restarts, Restart{File: e.file, Ts: r.ts, Commit: r.commit, Seq: e.seq})
		}
		e := g.next(ts)
		switch {
		case longAt[n]:
			e = g.longEvent(ts)
		case needleAt[n]:
			tok := fmt.Sprintf("needle-%016x", g.r.Uint64())
			e.text = g.plant(e, tok)
			m.Needles = append(m.Needles, Needle{Token: tok, File: e.file, Ts: ts, Seq: e.seq})
		}
		if err := emit(e); err != nil {
			return m, err
		}
		if !longAt[n] {
			written += int64(len(e.text))
		}
		m.End = ts
	}
	for name, w := range writers {
		if err := w.Flush(); err != nil {
			return m, fmt.Errorf("sample: write %s: %w", name, err)
		}
		if err := files[name].Close(); err != nil {
			return m, fmt.Errorf("sample: close %s: %w", name, err)
		}
		delete(files, name)
	}
	for _, fi := range info {
		m.Files = append(m.Files, *fi)
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, fmt.Errorf("sample: manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), append(b, '\n'), 0o644); err != nil {
		return m, fmt.Errorf("sample: manifest: %w", err)
	}
	return m, nil
}

func withDefaults(o Options) Options {
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	if o.Span <= 0 {
		o.Span = DefaultSpan
	}
	if o.Instances <= 0 {
		o.Instances = DefaultInstances
	}
	if o.Start.IsZero() {
		o.Start = time.Now().UTC().Add(-o.Span).Truncate(time.Minute)
	}
	o.Start = o.Start.UTC()
	if o.Job == "" {
		o.Job = "cosyvoice3"
	}
	return o
}

// entry is one generated entry: text ends with "\n" and may hold several lines.
type entry struct {
	file  string
	text  string
	level string // normalised, as Lokal's level label
	seq   int64
}

type generator struct {
	r         *rand.Rand
	opts      Options
	seq       int64
	oomBurst  int // OOM entries still to come in the current burst
	totalW    int
	instances []string
}

func newGenerator(opts Options, firstSeq int64) *generator {
	g := &generator{r: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), opts: opts, seq: firstSeq - 1}
	for _, k := range fileKinds {
		g.totalW += k.weight
	}
	for i := 1; i <= opts.Instances; i++ {
		g.instances = append(g.instances, fmt.Sprintf("host-%d", i))
	}
	return g
}

func (g *generator) labels(file string) map[string]string {
	host, _, _ := strings.Cut(file, "/")
	return map[string]string{"job": g.opts.Job, "instance": host, "filename": file}
}

var (
	modes    = []string{"sft", "zero_shot", "cross_lingual", "instruct", "vc"}
	speakers = []string{"zh_female_1", "zh_male_2", "sichuan_male", "yue_female", "ja_female", "en_male"}
	events   = []string{"request_done", "gpu_stats", "queue_depth", "model_loaded"}
	rates    = []int{16000, 22050, 24000, 44100}
)

const (
	ansiReset = "\x1b[0m"
)

var levelColour = map[string]string{"DEBUG": "\x1b[32m", "INFO": "\x1b[32m", "WARNING": "\x1b[33m", "ERROR": "\x1b[31m", "CRITICAL": "\x1b[1;31m"}

func norm(level string) string {
	switch level {
	case "WARNING", "warning":
		return "warn"
	}
	return strings.ToLower(level)
}

// pickLevel draws a level: mostly INFO, some DEBUG, few WARNING/ERROR/CRITICAL.
func (g *generator) pickLevel() string {
	switch x := g.r.IntN(1000); {
	case x < 5:
		return "CRITICAL"
	case x < 65:
		return "ERROR"
	case x < 145:
		return "WARNING"
	case x < 300:
		return "DEBUG"
	}
	return "INFO"
}

func (g *generator) next(ts time.Time) entry {
	g.seq++
	host := g.instances[g.r.IntN(len(g.instances))]
	if g.oomBurst > 0 {
		g.oomBurst--
		return g.cosyvoice(host, ts, true)
	}
	x := g.r.IntN(g.totalW)
	kind := ""
	for _, k := range fileKinds {
		if x < k.weight {
			kind = k.name
			break
		}
		x -= k.weight
	}
	switch kind {
	case "access.log":
		return g.access(host)
	case "metrics.log":
		return g.metrics(host, ts)
	case "run.log":
		return g.run(host, ts)
	case "events.json.log":
		return g.event(host, ts)
	}
	oom := g.r.IntN(150) == 0
	if oom {
		g.oomBurst = 2 + g.r.IntN(6) // OOMs come in bursts
	}
	return g.cosyvoice(host, ts, oom)
}

func (g *generator) cosyvoice(host string, ts time.Time, oom bool) entry {
	level := g.pickLevel()
	var msg string
	tb := ""
	switch {
	case oom:
		level = "ERROR"
		alloc := 0.5 + g.r.Float64()*4
		msg = fmt.Sprintf("Inference failed: CUDA out of memory. Tried to allocate %.2f GiB (GPU 0; 23.65 GiB total capacity; %.2f GiB already allocated)", alloc, 18+g.r.Float64()*5)
		tb = "Traceback (most recent call last):\n" +
			"  File \"/root/CosyVoice/cosyvoice/cli/model.py\", line 210, in tts\n" +
			"    tts_mel, _ = self.flow.inference(token=tts_speech_token)\n" +
			"  File \"/root/CosyVoice/cosyvoice/flow/flow.py\", line 151, in inference\n" +
			"    feat = self.decoder(mu=h, mask=mask, spks=embedding, cond=conds)\n" +
			fmt.Sprintf("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate %.2f GiB\n", alloc)
	case level == "CRITICAL":
		msg = "Worker process died (exit code -9), restarting"
	case level == "ERROR":
		if g.r.IntN(3) == 0 {
			msg = "Failed to load prompt audio: file is not a valid WAV"
			tb = "Traceback (most recent call last):\n" +
				"  File \"/root/CosyVoice/cosyvoice/utils/file_utils.py\", line 42, in load_wav\n" +
				"    speech, sample_rate = torchaudio.load(wav)\n" +
				"RuntimeError: Error opening 'prompt.wav': Format not recognised.\n"
		} else {
			msg = fmt.Sprintf("Request req-%08x timeout after %ds", g.r.Uint32(), 30+g.r.IntN(90))
		}
	case level == "WARNING":
		if g.r.IntN(2) == 0 {
			msg = fmt.Sprintf("Inference slow: rtf=%.2f exceeds 1.0 for text_len=%d", 1+g.r.Float64(), 50+g.r.IntN(450))
		} else {
			msg = fmt.Sprintf("Sample rate %dHz resampled to 22050Hz", rates[g.r.IntN(len(rates))])
		}
	case level == "DEBUG":
		msg = fmt.Sprintf("flow matching step %d/10, cfg=0.%d", 1+g.r.IntN(10), g.r.IntN(10))
	default:
		switch g.r.IntN(3) {
		case 0:
			msg = fmt.Sprintf("Inference finished: mode=%s text_len=%d audio_len=%.2fs rtf=%.3f elapsed=%dms", modes[g.r.IntN(len(modes))], 1+g.r.IntN(400), g.r.Float64()*40, g.r.Float64()*1.4, 200+g.r.IntN(16000))
		case 1:
			msg = fmt.Sprintf("Loading speaker embedding spk_id=%s", speakers[g.r.IntN(len(speakers))])
		default:
			msg = fmt.Sprintf("Audio sample received, duration=%.1fs, sample_rate=%dHz", 1+g.r.Float64()*15, rates[g.r.IntN(len(rates))])
		}
	}
	tag := level
	if g.r.IntN(25) == 0 { // a coloured console handler
		tag = levelColour[level] + level + ansiReset
	}
	text := fmt.Sprintf("[%s] %s %s seq=%d\n%s", tag, ts.Format(time.RFC3339), msg, g.seq, tb)
	return entry{file: host + "/cosyvoice.log", text: text, level: norm(level), seq: g.seq}
}

func (g *generator) access(host string) entry {
	path := "/inference_" + modes[g.r.IntN(4)]
	method := "POST"
	if g.r.IntN(6) == 0 {
		method, path = "GET", "/health"
	}
	level, status := "INFO", "200 OK"
	switch x := g.r.IntN(100); {
	case x < 7:
		level, status = "ERROR", "500 Internal Server Error"
	case x < 10:
		status = "422 Unprocessable Entity"
	}
	pad := strings.Repeat(" ", 10-len(level)-1)
	text := fmt.Sprintf("%s:%s127.0.0.1:%d - \"%s %s HTTP/1.1\" %s seq=%d\n", level, pad, 30000+g.r.IntN(30000), method, path, status, g.seq)
	return entry{file: host + "/access.log", text: text, level: norm(level), seq: g.seq}
}

func (g *generator) metrics(host string, ts time.Time) entry {
	level := strings.ToLower(g.pickLevel())
	req := fmt.Sprintf("req-%08x", g.r.Uint32())
	spk := speakers[g.r.IntN(len(speakers))]
	var text string
	if level == "error" || level == "critical" {
		text = fmt.Sprintf("ts=%s level=%s msg=\"tts failed\" request_id=%s speaker=%s err=\"CUDA error: device-side assert triggered\" duration=%dms seq=%d\n",
			ts.Format("2006-01-02T15:04:05.000Z07:00"), level, req, spk, 100+g.r.IntN(3000), g.seq)
	} else {
		text = fmt.Sprintf("ts=%s level=%s msg=\"tts done\" request_id=%s speaker=%s mode=%s text_len=%d audio_sec=%.2fs duration=%dms rtf=%.3f gpu_mem=%.1fGiB seq=%d\n",
			ts.Format("2006-01-02T15:04:05.000Z07:00"), level, req, spk, modes[g.r.IntN(len(modes))], 1+g.r.IntN(400), g.r.Float64()*40, 300+g.r.IntN(15000), g.r.Float64()*1.4, 2+g.r.Float64()*21, g.seq)
	}
	return entry{file: host + "/metrics.log", text: text, level: norm(level), seq: g.seq}
}

// run is run.sh's output in the guide's shape, "2024-12-17 14:30:52 INFO
// Generating audio: text_len=12, seed=42", then the entry's seq. Its
// pairs are separated by ", ", so | logfmt keeps a trailing comma on
// text_len ("12,"); | regexp extracts clean values.
func (g *generator) run(host string, ts time.Time) entry {
	level := g.pickLevel()
	var msg string
	if level == "ERROR" || level == "CRITICAL" {
		msg = fmt.Sprintf("run.sh: python app.py exited with status %d", 1+g.r.IntN(2))
	} else {
		msg = fmt.Sprintf("Generating audio: text_len=%d, seed=%d", 1+g.r.IntN(450), g.r.IntN(100000))
	}
	text := fmt.Sprintf("%s %s %s seq=%d\n", ts.Format(time.DateTime), level, msg, g.seq)
	return entry{file: host + "/run.log", text: text, level: norm(level), seq: g.seq}
}

func (g *generator) event(host string, ts time.Time) entry {
	level := strings.ToLower(g.pickLevel())
	ev := events[g.r.IntN(len(events))]
	errv := "null"
	if level == "error" || level == "critical" {
		errv = `"cuda oom"`
	}
	text := fmt.Sprintf(`{"ts":%q,"level":%q,"event":%q,"msg":"%s event","latency_ms":%d,"queue":{"depth":%d,"name":"tts"},"gpu":{"util":%d,"mem_gib":%.1f},"error":%s,"seq":%d}`+"\n",
		ts.Format(time.RFC3339Nano), level, ev, ev, g.r.IntN(5000), g.r.IntN(40), g.r.IntN(101), 2+g.r.Float64()*21, errv, g.seq)
	return entry{file: host + "/events.json.log", text: text, level: norm(level), seq: g.seq}
}

// scheduledRestart is a restart restartSchedule plans.
type scheduledRestart struct {
	host   string
	ts     time.Time
	commit string
}

// restartSchedule plans the history's restarts: every host starts on the
// first commit at Start, moves to each later commit at an equal share of the
// span (a rolling deploy: hosts a few minutes apart), and now and then
// restarts on the same commit after a crash. It draws from its own source,
// so it changes nothing else the seed writes.
func restartSchedule(opts Options) []scheduledRestart {
	r := rand.New(rand.NewPCG(opts.Seed^0x5bd1e9955bd1e995, opts.Seed+1))
	share := opts.Span / time.Duration(len(Commits))
	var out []scheduledRestart
	for h := 1; h <= opts.Instances; h++ {
		host := fmt.Sprintf("host-%d", h)
		for d, c := range Commits {
			at := opts.Start.Add(time.Duration(d) * share)
			if d > 0 {
				at = at.Add(time.Duration(r.Int64N(int64(share/8) + 1)))
			}
			out = append(out, scheduledRestart{host: host, ts: at.Truncate(time.Second), commit: c})
			if r.IntN(2) == 0 { // a crash later in this commit's share
				crash := opts.Start.Add(time.Duration(d)*share + share/4 + time.Duration(r.Int64N(int64(share/2)+1)))
				out = append(out, scheduledRestart{host: host, ts: crash.Truncate(time.Second), commit: c})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ts.Before(out[j].ts) })
	return out
}

// startup is a startup.log entry: the guide's "[SYSTEM] Starting
// CosyVoice3 v0.3 @ commit <hash>" after the time it was written (so a
// history read back later keeps its times), and the entry's seq. [SYSTEM]
// names no level: Loki's detection, and Lokal's, label it level="unknown".
func (g *generator) startup(r scheduledRestart) entry {
	g.seq++
	text := fmt.Sprintf("%s [SYSTEM] Starting CosyVoice3 v0.3 @ commit %s seq=%d\n", r.ts.Format(time.RFC3339), r.commit, g.seq)
	return entry{file: r.host + "/startup.log", text: text, level: "unknown", seq: g.seq}
}

// longEvent is an events.json.log line of LongLineBytes (a dumped payload).
func (g *generator) longEvent(ts time.Time) entry {
	host := g.instances[g.r.IntN(len(g.instances))]
	payload := strings.Repeat("A", LongLineBytes)
	text := fmt.Sprintf(`{"ts":%q,"level":"debug","event":"payload_dump","msg":"request body","body":"%s","seq":%d}`+"\n", ts.Format(time.RFC3339Nano), payload, g.seq)
	return entry{file: host + "/events.json.log", text: text, level: "debug", seq: g.seq}
}

// plant puts a token into an entry's first line, before its seq.
func (g *generator) plant(e entry, tok string) string {
	i := strings.Index(e.text, "seq=")
	if e.file[strings.IndexByte(e.file, '/')+1:] == "events.json.log" {
		i = strings.Index(e.text, `"seq":`)
		return e.text[:i] + `"needle":"` + tok + `",` + e.text[i:]
	}
	return e.text[:i] + tok + " " + e.text[i:]
}

// ReadManifest reads the manifest Write left in dir.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return m, fmt.Errorf("sample: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("sample: manifest %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return m, nil
}
