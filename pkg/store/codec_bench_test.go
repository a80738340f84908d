package store

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// corpusBlocks cuts a corpus into per-file blocks of about blockTargetRaw
// line bytes, the way the head does.
func corpusBlocks(tb testing.TB, dir string) (blocks [][]Entry, raw int64) {
	m := loadCorpusManifest(tb, dir)
	for _, f := range m.Files {
		var cur []Entry
		size := 0
		ts := m.Start.UnixNano()
		readCorpusLines(tb, filepath.Join(dir, f.Path), func(seq uint64, line string) {
			ts = lineTime(line, ts)
			cur = append(cur, Entry{Ts: ts, Seq: seq, Line: line})
			size += len(line)
			raw += int64(len(line))
			if size >= benchBlockSize() {
				blocks = append(blocks, cur)
				cur, size = nil, 0
			}
		})
		if len(cur) > 0 {
			blocks = append(blocks, cur)
		}
	}
	return blocks, raw
}

// BenchmarkBlockCodecs compares codecs on a real corpus:
// LOKAL_STORE_CORPUS=/tmp/corpus go test -run XXX -bench BlockCodecs -benchtime 1x ./pkg/store
func BenchmarkBlockCodecs(b *testing.B) {
	blocks, raw := corpusBlocks(b, corpusDir(b))
	cases := []struct {
		name  string
		codec uint8
		level zstd.EncoderLevel
		split bool
	}{
		{"s2", codecS2, zstd.SpeedDefault, false},
		{"zstd-fastest", codecZstd, zstd.SpeedFastest, false},
		{"zstd-fastest-split", codecZstd, zstd.SpeedFastest, true},
		{"zstd-default", codecZstd, zstd.SpeedDefault, false},
		{"zstd-better", codecZstd, zstd.SpeedBetterCompression, false},
		{"zstd-best", codecZstd, zstd.SpeedBestCompression, false},
		{"zstd-best-split", codecZstd, zstd.SpeedBestCompression, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			c, err := newCodecsLevel(tc.codec, tc.level)
			if err != nil {
				b.Fatal(err)
			}
			defer c.close()
			c.splitDigits = tc.split
			fb := newFilterBuilder()
			b.SetBytes(raw)
			var out int64
			var filt, meta int64
			var decT, encCPU time.Duration
			for i := 0; i < b.N; i++ {
				out, filt = 0, 0
				var buf []byte
				for _, bl := range blocks {
					var h blockHeader
					c0 := cpuTime()
					buf, h, err = encodeBlock(buf[:0], bl, c, fb)
					encCPU += cpuTime() - c0
					if err != nil {
						b.Fatal(err)
					}
					out += int64(len(buf))
					filt += int64(h.FilterLen)
					meta += int64(h.MetaLen)
					t0 := time.Now()
					if _, _, err := decodeBlock(buf, c, true); err != nil {
						b.Fatal(err)
					}
					decT += time.Since(t0)
				}
			}
			b.ReportMetric(float64(out)/float64(raw)*100, "%stored")
			b.ReportMetric(float64(filt)/float64(raw)*100, "%filter")
			b.ReportMetric(float64(meta)/float64(raw)*100, "%meta")
			b.ReportMetric(float64(raw)*float64(b.N)/decT.Seconds()/1e6, "decodeMB/s")
			b.ReportMetric(float64(raw)*float64(b.N)/encCPU.Seconds()/1e6, "encodeMB/cpu-s")
		})
	}
}

func benchBlockSize() int {
	if v, err := strconv.Atoi(os.Getenv("LOKAL_BLOCK_SIZE")); err == nil && v > 0 {
		return v
	}
	return blockTargetRaw
}
