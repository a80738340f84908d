package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// fingerprintBytes is how much of a file's head identifies its content. 1 KiB
// holds a few timestamped lines, enough to tell rotated generations apart,
// and costs one small read.
const fingerprintBytes = 1024

// fileID is where a file lives on disk. Paths change on rotation; the inode
// does not. Inodes are reused after deletion, which the fingerprint catches.
type fileID struct {
	Dev, Ino uint64
}

// fingerprint is a hash of a file's first N bytes (N < fingerprintBytes only
// while the file is shorter than that).
type fingerprint struct {
	N   int
	Sum [16]byte
}

func (f fingerprint) String() string { return strconv.Itoa(f.N) + ":" + hex.EncodeToString(f.Sum[:]) }

func parseFingerprint(s string) (fingerprint, error) {
	n, h, ok := strings.Cut(s, ":")
	if !ok {
		return fingerprint{}, fmt.Errorf("fingerprint %q: missing ':'", s)
	}
	var f fingerprint
	var err error
	if f.N, err = strconv.Atoi(n); err != nil || f.N < 0 || f.N > fingerprintBytes {
		return fingerprint{}, fmt.Errorf("fingerprint %q: bad length", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != len(f.Sum) {
		return fingerprint{}, fmt.Errorf("fingerprint %q: bad hash", s)
	}
	copy(f.Sum[:], b)
	return f, nil
}

func fingerprintOf(head []byte) fingerprint {
	if len(head) > fingerprintBytes {
		head = head[:fingerprintBytes]
	}
	s := sha256.Sum256(head)
	f := fingerprint{N: len(head)}
	copy(f.Sum[:], s[:])
	return f
}

// matches reports whether head (a file's first bytes) starts with the content
// f was taken from. A head shorter than f.N cannot match: the file shrank.
func (f fingerprint) matches(head []byte) bool {
	if len(head) < f.N {
		return false
	}
	return fingerprintOf(head[:f.N]) == f
}

// readHead returns up to fingerprintBytes of the file's start.
func readHead(f *os.File) ([]byte, error) {
	buf := make([]byte, fingerprintBytes)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// errIncomplete marks a .gz that ends early, most likely still being
// written: not a problem to report, just something to look at later.
var errIncomplete = errors.New("incomplete gzip stream (still being written?)")

// gzipMagic starts every gzip member.
var gzipMagic = []byte{0x1f, 0x8b}

func isGzipName(p string) bool { return strings.HasSuffix(p, ".gz") }

// readGzipHead returns up to fingerprintBytes of the decompressed stream.
func readGzipHead(path string) ([]byte, error) {
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	magic := make([]byte, 2)
	if _, err := io.ReadFull(f, magic); err != nil || !bytes.Equal(magic, gzipMagic) {
		return nil, fmt.Errorf("%s: not a gzip file", path)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer zr.Close()
	buf := make([]byte, fingerprintBytes)
	n, err := io.ReadFull(zr, buf)
	switch {
	case err == nil, errors.Is(err, io.EOF):
	case errors.Is(err, io.ErrUnexpectedEOF) && n < len(buf):
		// Either a short file or one still being compressed: only a
		// complete stream tells, and the identity must not change later.
		if _, cerr := io.Copy(io.Discard, zr); cerr != nil {
			return nil, fmt.Errorf("%s: %w: %w", path, errIncomplete, cerr)
		}
	default:
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return buf[:n], nil
}

// position is a cursor value: where to resume a file and how to recognise
// it. It is JSON so an operator can read it with the store's tools.
type position struct {
	Offset int64 `json:"offset"` // bytes consumed (of the decompressed stream for gzip)
	// Fingerprint of the file's head when the position was taken.
	FP string `json:"fp"`
	// Path is where the file was last seen; Name is the path it was
	// discovered at (its filename label, which rotation does not change).
	Path string `json:"path"`
	Name string `json:"name"`
	// Target is the scrape target (job_name/static_config index) whose
	// labels and stages the file's lines get.
	Target string `json:"target"`
	Size   int64  `json:"size"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Gzip   bool   `json:"gzip,omitempty"`
	// Done: the file was rotated away and read to its end; the cursor stays
	// while the file exists so it is never read again.
	Done bool `json:"done,omitempty"`
	// Seen is when (Unix ns) the position was last handed to the store: a
	// file in the same directory changed after it was not rotated yet then.
	Seen int64 `json:"seen,omitempty"`
	// Missing is when (Unix seconds) a finished file was first found gone.
	Missing int64 `json:"missing,omitempty"`
}

// cursorPrefix namespaces the ingester's keys in the store's cursor map.
const cursorPrefix = "file/"

func cursorKey(id fileID, gz bool, fp fingerprint) string {
	if gz {
		// A compressed copy is identified by its content, whatever its inode.
		return cursorPrefix + "gz/" + fp.String()
	}
	return cursorPrefix + strconv.FormatUint(id.Dev, 10) + "/" + strconv.FormatUint(id.Ino, 10)
}

func encodePosition(p position) []byte {
	b, _ := json.Marshal(p) // cannot fail: plain strings and numbers
	return b
}

func decodePosition(b []byte) (position, fingerprint, error) {
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return position{}, fingerprint{}, fmt.Errorf("decode position: %w", err)
	}
	fp, err := parseFingerprint(p.FP)
	if err != nil {
		return position{}, fingerprint{}, fmt.Errorf("decode position: %w", err)
	}
	if p.Offset < 0 {
		return position{}, fingerprint{}, fmt.Errorf("decode position: negative offset %d", p.Offset)
	}
	return p, fp, nil
}
