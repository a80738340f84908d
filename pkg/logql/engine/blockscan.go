package engine

import (
	"bytes"
	"context"
	"fmt"

	"github.com/lokal-logs/lokal/pkg/logql/log"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// lineScan counts a block's lines through a pipeline of `|=` filters alone
// (`count_over_time({…} |= "a" |= "b" [5m])`) without a batch or a string
// per line: the first literal is searched across the block's whole text,
// each hit is mapped to its line through the line sizes, the other literals
// are checked in that line only, and the search goes on after it. The
// timestamp column alone places a counted line in its bucket.
//
// When the store's encoding keeps every literal as it is
// (store.StoredMatchExact), the search runs over the block's stored text
// instead (store.BlockInfo.ScanStored), which spares rebuilding the lines:
// digits and timestamps put back.
type lineScan struct {
	first  literal  // searched across the text; empty counts every line
	rest   [][]byte // each must be in the line too
	bytes  bool     // bytes_over_time: a line counts its length
	stored bool     // every literal is found in the stored text as in the lines
}

// lineScanFor is the scan of x, or nil when its pipeline does more than
// keep lines containing literals (then lines go through the pipeline).
func lineScanFor(x *syntax.RangeAggregationExpr, ex *log.SampleExtractor) *lineScan {
	if x.Left == nil || x.Left.Unwrap != nil || ex.LineOnly() {
		return nil
	}
	p, ok := x.Left.Left.(*syntax.PipelineExpr)
	if !ok {
		return nil
	}
	var lits []string
	for _, st := range p.Stages {
		f, ok := st.(*syntax.LineFilterExpr)
		if !ok || f.Op != syntax.LineContains || f.IP || len(f.Or) > 0 {
			return nil
		}
		lits = append(lits, f.Value)
	}
	return newLineScan(lits, ex.Kind() == log.LineBytes)
}

// newLineScan keeps lines holding every literal of lits.
func newLineScan(lits []string, bytes bool) *lineScan {
	s := &lineScan{bytes: bytes, stored: true}
	for _, l := range lits {
		lit := []byte(l)
		s.stored = s.stored && (len(lit) == 0 || store.StoredMatchExact(lit))
		switch {
		case len(lit) == 0: // `|= ""` keeps every line
		case len(lit) > len(s.first.lit): // the longest literal finds the fewest false starts
			if len(s.first.lit) > 0 {
				s.rest = append(s.rest, s.first.lit)
			}
			s.first = newLiteral(lit)
		default:
			s.rest = append(s.rest, lit)
		}
	}
	return s
}

// each calls fn with the index, start and end of every line of text (lines
// back to back, sizes long) that holds all the literals, in order. When
// cuts is not nil, an occurrence in line i must also lie on one side of
// offset cuts[i] in it, unless that is 0 (see store.StoredLines).
func (s *lineScan) each(text []byte, sizes, cuts []uint32, fn func(i, start, end int)) {
	cut := func(line int) int {
		if cuts == nil {
			return 0
		}
		return int(cuts[line])
	}
	line, start, end := 0, 0, 0 // the line holding pos, and its bounds
	if len(sizes) > 0 {
		end = int(sizes[0])
	}
	for pos := 0; line < len(sizes); {
		if len(s.first.lit) > 0 {
			k := s.first.index(text[pos:])
			if k < 0 {
				return
			}
			pos += k
			for end <= pos && line < len(sizes)-1 {
				line++
				start, end = end, end+int(sizes[line])
			}
			if pos+len(s.first.lit) > end { // the hit runs over into the next line
				pos++
				continue
			}
			if c := start + cut(line); c > start && pos < c && c < pos+len(s.first.lit) { // and over the cut
				pos++
				continue
			}
		}
		if s.restIn(text[start:end], cut(line)) {
			fn(line, start, end)
		}
		line++
		if line < len(sizes) {
			start, end = end, end+int(sizes[line])
		}
		pos = start
	}
}

// restIn reports whether line l holds every literal of rest, on one side
// of offset cut when it is not 0.
func (s *lineScan) restIn(l []byte, cut int) bool {
	for _, lit := range s.rest {
		if cut > 0 {
			if !bytes.Contains(l[:cut], lit) && !bytes.Contains(l[cut:], lit) {
				return false
			}
		} else if !bytes.Contains(l, lit) {
			return false
		}
	}
	return true
}

// scanPart is computePart for a lineScan: it reads the block's lines at
// once (store.BlockInfo.ScanLines, or ScanStored when the scan can search
// the stored text) and reports false when the block must be read through
// its iterator instead. The first counted line goes through the pipeline,
// which gives the series' labels as computePart would get them (and checks
// the scan agrees with the pipeline).
func scanPart(ctx context.Context, b *store.BlockInfo, s *lineScan, ex *log.SampleExtractor, gr *grouper, whole bool, g blockGrid) (*blockPart, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, true, err
	}
	part := &blockPart{}
	var failed error
	// add counts line i, stamped ts and size bytes long; l is its text,
	// needed for the first line only.
	add := func(i int, ts int64, size int, l []byte) {
		if failed != nil {
			return
		}
		if len(part.series) == 0 {
			sx := ex.ForStream(b.Iter.Labels())
			_, ls, h, ok := sx.ProcessStringMetadata(ts, string(l), nil)
			if !ok {
				failed = fmt.Errorf("internal error: the pipeline drops line %d of block %s, which its literal scan keeps", i, b.ID)
				return
			}
			ls, h = gr.group(ls, h)
			part.series = append(part.series, partSeries{ls: ls, hash: h})
		}
		v := 1.0
		if s.bytes {
			v = float64(size)
		}
		e := b.MaxTs
		if !whole {
			e = g.end(ts)
		}
		part.series[0].add(e, v)
	}
	var ok bool
	var err error
	if s.stored {
		ok, err = b.ScanStored(func(sl *store.StoredLines) error {
			s.each(sl.Text, sl.Sizes, sl.Cuts, func(i, _, _ int) {
				var l []byte
				if len(part.series) == 0 && failed == nil {
					l, failed = sl.Line(i) // rebuilt for the pipeline
				}
				add(i, sl.Ts[i], int(sl.Lens[i]), l)
			})
			return failed
		})
	} else {
		ok, err = b.ScanLines(func(bl *store.BlockLines) error {
			s.each(bl.Text, bl.Sizes, nil, func(i, start, end int) {
				add(i, bl.Ts[i], end-start, bl.Text[start:end])
			})
			return failed
		})
	}
	return scanned(b, part, ok, err)
}

// timesPart is computePart for a count without a pipeline (`rate({…}[5m])`,
// `bytes_over_time`): it decodes only the block's time column, and the line
// sizes for bytes (store.BlockInfo.ScanTimes), and reports false when the
// block must be read through its iterator instead. Without structured
// metadata, every entry belongs to the stream's one series.
func timesPart(ctx context.Context, b *store.BlockInfo, ex *log.SampleExtractor, gr *grouper, whole bool, g blockGrid) (*blockPart, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, true, err
	}
	bytes := ex.Kind() == log.LineBytes
	part := &blockPart{}
	ok, err := b.ScanTimes(bytes, func(bt *store.BlockTimes) error {
		if len(bt.Ts) == 0 {
			return nil
		}
		wm := newWithMetadata(b.Iter.Labels())
		ls, h := gr.group(wm.stream, wm.hash)
		part.series = append(part.series, partSeries{ls: ls, hash: h})
		s := &part.series[0]
		// A block's times ascend (the store checks it), so each bucket is
		// one run of them: find its end by comparing, not dividing, and
		// add the run at once.
		for i := 0; i < len(bt.Ts); {
			e, j := b.MaxTs, len(bt.Ts)
			if !whole {
				e, j = g.end(bt.Ts[i]), i+1
				for j < len(bt.Ts) && bt.Ts[j] <= e {
					j++
				}
			}
			v := float64(j - i)
			if bytes {
				v = 0
				for _, sz := range bt.Sizes[i:j] {
					v += float64(sz)
				}
			}
			s.addRun(e, v, uint32(j-i))
			i = j
		}
		return nil
	})
	return scanned(b, part, ok, err)
}

// addRun adds n entries worth v in all to the bucket ending at end, which
// is the last bucket or after it.
func (s *partSeries) addRun(end int64, v float64, n uint32) {
	if k := len(s.ends); k > 0 && s.ends[k-1] == end {
		s.vals[k-1] += v
		s.cnts[k-1] += n
		return
	}
	s.ends = append(s.ends, end)
	s.vals = append(s.vals, v)
	s.cnts = append(s.cnts, n)
}

// scanned ends scanPart and timesPart: the part the scan computed, or
// false when the block's iterator must read it instead.
func scanned(b *store.BlockInfo, part *blockPart, ok bool, err error) (*blockPart, bool, error) {
	if err != nil {
		return nil, true, fmt.Errorf("read stream %s: %w", b.Iter.Labels(), err)
	}
	if !ok {
		return nil, false, nil
	}
	part.measure()
	return part, true, nil
}
