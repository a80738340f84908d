package sample

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Rotation modes, as logrotate names them.
const (
	RotateRename       = "rename"       // rename f to f.1, create a new f
	RotateCopyTruncate = "copytruncate" // copy f to f.1, truncate f in place
)

// LiveOptions describe live appending.
type LiveOptions struct {
	Seed uint64
	// Rate is entries per second (0: 100).
	Rate float64
	// RotateBytes rotates a file once it exceeds this size (0: never).
	RotateBytes int64
	// RotateMode is RotateRename (default) or RotateCopyTruncate.
	RotateMode string
	// MaxBackups keeps that many rotated files per log, deleting older ones
	// (0: keep all, so a test can account for every entry).
	MaxBackups int
	// Compress gzips rotated files from the second on (f.2.gz, f.3.gz, ...),
	// as logrotate's compress with delaycompress does.
	Compress bool
	// Instances is the number of hosts (0: DefaultInstances).
	Instances int
	// FirstSeq continues the seq numbering, e.g. after Manifest.LastSeq.
	FirstSeq int64
	// MaxEntries stops after that many entries (0: until ctx is done).
	MaxEntries int64
	// Job is the job label (default "cosyvoice3").
	Job string
}

// LiveResult is the ground truth of a live run.
type LiveResult struct {
	Entries   int64            `json:"entries"`
	FirstSeq  int64            `json:"first_seq"`
	LastSeq   int64            `json:"last_seq"` // FirstSeq-1 when nothing was written
	Rotations int              `json:"rotations"`
	PerFile   map[string]int64 `json:"per_file"` // entries by relative path of the live file
	OOM       int64            `json:"oom_entries"`
}

// Live appends entries to dir's files at opts.Rate until ctx is done or
// MaxEntries are written, rotating files beyond RotateBytes. Each entry is
// written with one write call, so a reader never sees half an entry unless
// it reads mid-call. It returns what it wrote; ctx ending is not an error.
func Live(ctx context.Context, dir string, opts LiveOptions) (LiveResult, error) {
	if opts.Rate <= 0 {
		opts.Rate = 100
	}
	if opts.RotateMode == "" {
		opts.RotateMode = RotateRename
	}
	if opts.RotateMode != RotateRename && opts.RotateMode != RotateCopyTruncate {
		return LiveResult{}, fmt.Errorf("sample: unknown rotate mode %q (use %s or %s)", opts.RotateMode, RotateRename, RotateCopyTruncate)
	}
	if opts.FirstSeq <= 0 {
		opts.FirstSeq = 1
	}
	gopts := withDefaults(Options{Seed: opts.Seed, Instances: opts.Instances, Job: opts.Job, Start: time.Now()})
	g := newGenerator(gopts, opts.FirstSeq)
	res := LiveResult{FirstSeq: opts.FirstSeq, LastSeq: opts.FirstSeq - 1, PerFile: map[string]int64{}}
	sizes := map[string]int64{}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		due := int64(time.Since(start).Seconds()*opts.Rate) + 1
		if opts.MaxEntries > 0 && due > opts.MaxEntries {
			due = opts.MaxEntries
		}
		for res.Entries < due {
			e := g.next(time.Now().UTC())
			p := filepath.Join(dir, filepath.FromSlash(e.file))
			size, ok := sizes[e.file]
			if !ok {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return res, fmt.Errorf("sample: %w", err)
				}
				if fi, err := os.Stat(p); err == nil {
					size = fi.Size()
				}
			}
			if err := appendFile(p, e.text); err != nil {
				return res, err
			}
			size += int64(len(e.text))
			res.Entries++
			res.LastSeq = e.seq
			res.PerFile[e.file]++
			if strings.Contains(e.text, "CUDA out of memory") {
				res.OOM++
			}
			if opts.RotateBytes > 0 && size > opts.RotateBytes {
				if err := rotate(p, opts.RotateMode, opts.MaxBackups, opts.Compress); err != nil {
					return res, err
				}
				res.Rotations++
				size = 0
			}
			sizes[e.file] = size
		}
		if opts.MaxEntries > 0 && res.Entries >= opts.MaxEntries {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, nil
		case <-tick.C:
		}
	}
}

func appendFile(p, text string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("sample: append %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sample: append %s: %w", p, err)
	}
	return nil
}

// rotate shifts p.N (or p.N.gz) to p.N+1 (dropping beyond maxBackups when
// set), then moves p's content to p.1 by rename or by copy and truncate, and
// with compress gzips p.2.
func rotate(p, mode string, maxBackups int, compress bool) error {
	name := func(k int) string {
		n := fmt.Sprintf("%s.%d", p, k)
		if _, err := os.Stat(n); err == nil {
			return n
		}
		if _, err := os.Stat(n + ".gz"); err == nil {
			return n + ".gz"
		}
		return ""
	}
	n := 1
	for name(n) != "" {
		n++
	}
	for k := n - 1; k >= 1; k-- {
		from := name(k)
		if maxBackups > 0 && k >= maxBackups {
			if err := os.Remove(from); err != nil {
				return fmt.Errorf("sample: rotate: %w", err)
			}
			continue
		}
		to := fmt.Sprintf("%s.%d", p, k+1)
		if strings.HasSuffix(from, ".gz") {
			to += ".gz"
		}
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("sample: rotate: %w", err)
		}
	}
	if compress {
		if second := fmt.Sprintf("%s.%d", p, 2); fileExists(second) {
			if err := gzipFile(second); err != nil {
				return fmt.Errorf("sample: rotate: %w", err)
			}
		}
	}
	first := p + ".1"
	if mode == RotateRename {
		if err := os.Rename(p, first); err != nil {
			return fmt.Errorf("sample: rotate: %w", err)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("sample: rotate: %w", err)
		}
		return f.Close()
	}
	if err := copyFile(p, first); err != nil {
		return fmt.Errorf("sample: rotate: %w", err)
	}
	if err := os.Truncate(p, 0); err != nil {
		return fmt.Errorf("sample: rotate: %w", err)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// gzipFile replaces p by p.gz, written completely before p is removed.
func gzipFile(p string) error {
	src, err := os.Open(p)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := p + ".gz.tmp"
	dst, err := os.Create(tmp)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(dst)
	if _, err := io.Copy(zw, src); err != nil {
		dst.Close()
		return err
	}
	if err := errors.Join(zw.Close(), dst.Sync(), dst.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp, p+".gz"); err != nil {
		return err
	}
	return os.Remove(p)
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return errors.Join(dst.Sync(), dst.Close())
}
