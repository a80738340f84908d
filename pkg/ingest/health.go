package ingest

import (
	"sort"
	"time"

	"github.com/lokal-logs/lokal/pkg/forward"
	"github.com/lokal-logs/lokal/pkg/store"
)

// maxProblems bounds the problems kept for the health check: a directory of
// thousands of disallowed files must not grow memory without limit.
const maxProblems = 100

// Health is what the health check and `lokal stats` show about ingestion.
type Health struct {
	FilesMatched  int          // files the globs matched and the allowlist admitted
	FilesTracked  int          // files open or resumable now (rotated ones included)
	FilesDone     int          // rotated files read to their end, kept so they are not read again
	FilesRejected []FileReject // matched but refused, with the reason
	Files         []FileStatus // every tracked file

	Lines int64 // entries handed to the store
	Bytes int64 // raw bytes consumed from files

	TimestampFailures int64 // lines whose timestamp could not be parsed (time of reading used)
	Dropped           int64 // entries dropped by drop and match stages, as configured
	TruncatedLines    int64 // lines longer than max_line_bytes, cut and marked
	InvalidUTF8Lines  int64 // lines with bytes replaced by U+FFFD
	LabelCapWarnings  []string

	// Paused is true while the store refuses appends (e.g. disk full);
	// positions do not advance, so nothing is lost.
	Paused       bool
	PausedReason string
	LastAppend   time.Time

	// Problems lists everything else a user should act on, newest last.
	Problems []string

	// Forward reports each of the settings' clients while the ingester
	// forwards (see package forward).
	Forward []forward.Status
}

// FileReject is a matched path Lokal refused to read.
type FileReject struct {
	Path   string
	Reason string
}

// FileStatus is one tracked file.
type FileStatus struct {
	Path    string // where the file is now
	Name    string // its filename label
	Job     string
	Offset  int64 // bytes read and stored
	Size    int64
	Rotated bool // no longer at the path it was discovered at
	Done    bool
	Gzip    bool
}

// Notification tells a live-tail subscriber what was just stored.
type Notification struct {
	Streams []store.StreamEntries
	// Missed counts notifications dropped before this one because the
	// subscriber did not keep up; a tail that sees Missed > 0 should re-query.
	Missed int
}

// healthState is the mutable side of Health, guarded by Ingester.mu.
type healthState struct {
	lines, bytes       int64
	truncated, invalid int64
	paused             bool
	pausedReason       string
	lastAppend         time.Time
	problems           []string
	rejects            map[string]string
	matched            int
	files              []FileStatus
	tracked, done      int
	problemSeen        map[string]bool
}

func (h *healthState) problem(msg string) {
	if h.problemSeen == nil {
		h.problemSeen = map[string]bool{}
	}
	if h.problemSeen[msg] {
		return
	}
	h.problemSeen[msg] = true
	h.problems = append(h.problems, msg)
	if len(h.problems) > maxProblems {
		delete(h.problemSeen, h.problems[0])
		h.problems = h.problems[1:]
	}
}

func (h *healthState) snapshot() Health {
	out := Health{
		FilesMatched:     h.matched,
		FilesTracked:     h.tracked,
		FilesDone:        h.done,
		Files:            append([]FileStatus(nil), h.files...),
		Lines:            h.lines,
		Bytes:            h.bytes,
		TruncatedLines:   h.truncated,
		InvalidUTF8Lines: h.invalid,
		Paused:           h.paused,
		PausedReason:     h.pausedReason,
		LastAppend:       h.lastAppend,
		Problems:         append([]string(nil), h.problems...),
	}
	for p, r := range h.rejects {
		out.FilesRejected = append(out.FilesRejected, FileReject{Path: p, Reason: r})
	}
	sort.Slice(out.FilesRejected, func(i, j int) bool { return out.FilesRejected[i].Path < out.FilesRejected[j].Path })
	return out
}
