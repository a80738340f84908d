package ingest

import (
	"fmt"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/ingest/stages"
	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/store"
)

// filePipeline is one file's stages: multiline state belongs to a file, so
// each file gets its own.
type filePipeline struct {
	p  *stages.Pipeline
	in *Ingester
}

// checkStages compiles a scrape config's stages once, so New reports what
// only compiling finds (bad regexes, templates) before anything is read.
func checkStages(cfg []config.Stage) error {
	_, err := stages.New(cfg, stages.Options{Labels: labels.FromStrings("filename", "/check")})
	return err
}

// fileLabels are a target's labels plus the filename label, which Promtail
// sets to the path the file was discovered at.
func fileLabels(tg *target, filename string) labels.Labels {
	return labels.New(append(append(labels.Labels{}, tg.labels...), labels.Label{Name: "filename", Value: filename})...)
}

func (in *Ingester) newFilePipeline(tg *target, filename string) (*filePipeline, error) {
	p, err := stages.New(tg.stages, stages.Options{Labels: fileLabels(tg, filename), Now: in.opts.Now})
	if err != nil {
		return nil, fmt.Errorf("pipeline of %s: %w", tg.key, err)
	}
	in.mu.Lock()
	in.pipes[p] = struct{}{}
	in.mu.Unlock()
	return &filePipeline{p: p, in: in}, nil
}

// release folds a finished pipeline's counters into the retired totals.
func (fp *filePipeline) release() {
	if fp == nil {
		return
	}
	in := fp.in
	in.mu.Lock()
	if _, ok := in.pipes[fp.p]; ok {
		delete(in.pipes, fp.p)
		in.retiredStats.Add(fp.p.Stats())
	}
	in.mu.Unlock()
}

// process runs one raw line through the stages into the result.
func (fp *filePipeline) process(rl rawLine, now time.Time, r *chunkResult) {
	fp.p.Process(stages.Entry{Ts: now, Line: rl.Text, Offset: rl.Off}, r.addEntry)
}

// flushOld releases held entries whose wait is over; flushAll releases all.
func (fp *filePipeline) flushOld(now time.Time, r *chunkResult) { fp.p.Flush(now, r.addEntry) }
func (fp *filePipeline) flushAll(r *chunkResult)                { fp.p.Flush(time.Time{}, r.addEntry) }

// pendingFrom is the offset of the oldest line the stages still hold.
func (fp *filePipeline) pendingFrom() (int64, bool) {
	if fp == nil {
		return 0, false
	}
	return fp.p.Pending()
}

// addEntry groups an entry into its stream.
func (r *chunkResult) addEntry(e stages.Entry) {
	// Stages hand out the same label set for most entries of a file: a
	// pointer check skips hashing the labels of every line.
	if r.countReadTime && e.ReadTime() {
		r.noteReadTime(e.Labels, e.Ts.UnixNano())
	}
	if r.last != nil && sameSlice(r.last.Labels, e.Labels) {
		r.last.Entries = append(r.last.Entries, store.Entry{Ts: e.Ts.UnixNano(), Seq: uint64(e.Offset), Line: e.Line})
		r.lines++
		return
	}
	h := e.Labels.Hash()
	se := r.streams[h]
	for se != nil && !labels.Equal(se.Labels, e.Labels) {
		// A hash collision between two label sets of one chunk: rare
		// enough that a linear search of the extras is fine.
		se = nil
		for _, x := range r.extra {
			if labels.Equal(x.Labels, e.Labels) {
				se = x
				break
			}
		}
		if se == nil {
			se = &store.StreamEntries{Labels: e.Labels}
			r.extra = append(r.extra, se)
		}
	}
	if se == nil {
		se = &store.StreamEntries{Labels: e.Labels}
		r.streams[h] = se
	}
	if se.Entries == nil {
		se.Entries = make([]store.Entry, 0, max(256, r.entryHints[h]))
	}
	se.Entries = append(se.Entries, store.Entry{Ts: e.Ts.UnixNano(), Seq: uint64(e.Offset), Line: e.Line})
	r.last = se
	r.lines++
}

// sameSlice reports whether a and b are the very same label set in memory.
func sameSlice(a, b labels.Labels) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}
