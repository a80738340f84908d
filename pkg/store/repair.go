package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lokal-logs/lokal/pkg/internal/fsync"
)

// RepairReport says what Repair found and did.
type RepairReport struct {
	Dir string
	// Source says where the rebuilt metadata came from.
	Source string
	// Problems lists everything found wrong, one sentence each.
	Problems []string
	// RecordsSkipped counts damaged manifest records left out.
	RecordsSkipped int
	// EntriesRecovered are the entries of the blocks the store keeps.
	EntriesRecovered int64
	// EntriesLost are the entries of blocks the manifest lists but that are
	// corrupt (quarantined) or whose segment file is missing or short.
	EntriesLost int64
	// EntriesUnaccounted are the entries found in segment files no readable
	// manifest record accounts for; those files are quarantined.
	EntriesUnaccounted  int64
	BlocksQuarantined   int
	SegmentsQuarantined int
	// Quarantine is the folder holding what was moved aside; empty when
	// nothing was.
	Quarantine string
	// ManifestRebuilt: the manifest was damaged or missing and was rebuilt;
	// its cursors may be older than the data was.
	ManifestRebuilt bool
	// ManifestKept: the damaged manifest was copied into Quarantine.
	ManifestKept bool
	// Changed is false when the store was sound and nothing was written.
	Changed bool
}

// Repair rebuilds a store's manifest after damage, taking the lock like a
// writer (the store must not be open elsewhere). It reads every manifest
// record that passes its checksum, using the checkpoint MANIFEST.prev for
// what the damage covers, checks every block it lists against its segment
// (header, copy in the manifest, all section checksums), and moves what it
// cannot read or account for into quarantine/ instead of deleting it:
// corrupt blocks (their bytes; the manifest drops them), segment files no
// record accounts for, and the damaged manifest. It reports how many entries
// were recovered and how many lost.
func Repair(dir string) (*RepairReport, error) {
	rep := &RepairReport{Dir: dir}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("store to repair: %w", err)
	}
	lf, err := lockStore(dir)
	if err != nil {
		return nil, err
	}
	defer unlockStore(lf)
	path := filepath.Join(dir, manifestName)
	cur, curErr := os.ReadFile(path)
	if curErr != nil && !errors.Is(curErr, os.ErrNotExist) {
		return nil, fmt.Errorf("read manifest: %w", curErr)
	}
	prev, prevErr := os.ReadFile(filepath.Join(dir, manifestPrevName))
	prevOK := prevErr == nil
	if prevOK {
		if _, _, err := readManifest(prev); err != nil {
			prevOK = false
			rep.Problems = append(rep.Problems, fmt.Sprintf("the checkpoint %s is damaged too (%v)", manifestPrevName, err))
		}
	}

	// The candidates for the store's metadata: the manifest's readable
	// records and, when it is damaged, the checkpoint with or without the
	// records appended after it. The one that accounts for the most entries
	// wins; the others' segments then show up as unaccounted below.
	type candidate struct {
		source string
		data   []byte
	}
	var cands []candidate
	damaged := false
	if curErr != nil {
		damaged = true
		rep.Problems = append(rep.Problems, "MANIFEST is missing")
	} else {
		_, valid, rerr := readManifest(cur)
		var me *ManifestError
		switch {
		case rerr == nil || errors.Is(rerr, errTornTail):
			source := "MANIFEST"
			if rerr != nil {
				damaged = true
				source = "MANIFEST without its torn tail"
				rep.Problems = append(rep.Problems, "MANIFEST ends in an interrupted commit, which is cut off")
			}
			if errors.As(checkCheckpoint(dir, prev, cur, valid), &me) {
				damaged = true
				rep.Problems = append(rep.Problems, me.What())
			}
			cands = append(cands, candidate{source, cur})
		case errors.As(rerr, &me):
			damaged = true
			me.Path = path
			rep.Problems = append(rep.Problems, me.What())
			cands = append(cands, candidate{"the readable records of MANIFEST", cur})
		default:
			damaged = true
			rep.Problems = append(rep.Problems, rerr.Error())
			cands = append(cands, candidate{"the readable records of MANIFEST", cur})
		}
		if damaged && prevOK && len(prev) <= len(cur) {
			// The checkpoint is an earlier state of the same log unless the
			// manifest was rewritten since: its bytes replace the damaged
			// ones they cover.
			patched := slices.Concat(prev, cur[len(prev):])
			if _, _, perr := readManifest(patched); perr == nil || errors.Is(perr, errTornTail) {
				cands = append(cands, candidate{manifestPrevName + " plus the records of MANIFEST after it", patched})
			}
		}
		if damaged && prevErr == nil {
			// Both may be damaged, in different records.
			cands = append(cands, candidate{"the good records of MANIFEST and " + manifestPrevName + " together", mergeLogs(cur, prev)})
		}
	}
	if damaged && prevOK {
		cands = append(cands, candidate{manifestPrevName + " (the last checkpoint)", prev})
	}
	m, deleted, complete := newMeta(), map[blockKey]bool{}, false
	rep.Source = "nothing: no readable manifest and no checkpoint"
	var best int64 = -1
	var bestProblems []string
	for _, c := range cands {
		var scratch RepairReport
		cm, cdel, ccomplete := replayLenient(c.data, &scratch)
		var n int64
		for _, b := range cm.blocks {
			n += int64(b.h.Count)
		}
		if n > best {
			best, m, deleted, complete, rep.Source = n, cm, cdel, ccomplete, c.source
			bestProblems, rep.RecordsSkipped = scratch.Problems, scratch.RecordsSkipped
		}
	}
	rep.Problems = append(rep.Problems, bestProblems...)
	if !complete {
		// Records or operations were left out (a record that does not
		// apply passes every checksum): the manifest must be rewritten.
		damaged = true
	}

	var q string
	quarantine := func() (string, error) {
		if q == "" {
			var err error
			if q, err = newQuarantine(dir, "repair"); err != nil {
				return "", err
			}
			rep.Quarantine = q
		}
		return q, nil
	}

	quarantineBlock := func(seg *segment, off int64, data []byte) error {
		qd, err := quarantine()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("%s-%016x-%d%s", dayDir(seg.day), seg.id, off, quarantineBlockExt)
		if err := os.MkdirAll(filepath.Join(qd, "blocks"), 0o755); err != nil {
			return fmt.Errorf("quarantine block: %w", err)
		}
		if err := fsync.WriteFile(filepath.Join(qd, "blocks", name), data); err != nil {
			return fmt.Errorf("quarantine block: %w", err)
		}
		rep.BlocksQuarantined++
		return nil
	}

	// Every block the metadata lists must read back whole.
	var dels []op
	for _, b := range sortedBlocks(m) {
		whole, rerr := readBlockFile(dir, b)
		if rerr == nil {
			rerr = checkBlockBytes(&b.h, whole)
		}
		if rerr == nil {
			rep.EntriesRecovered += int64(b.h.Count)
			continue
		}
		rep.EntriesLost += int64(b.h.Count)
		rep.Problems = append(rep.Problems, fmt.Sprintf("block at %d of segment %s/%s (%d entries of %s): %v", b.off, dayDir(b.seg.day), segName(b.seg.id), b.h.Count, b.stream.lbls, rerr))
		dels = append(dels, op{kind: opDelBlock, seg: b.seg.id, off: b.off})
		if len(whole) > 0 {
			if err := quarantineBlock(b.seg, b.off, whole); err != nil {
				return nil, err
			}
		}
	}
	if _, err := m.apply(dels); err != nil {
		return nil, fmt.Errorf("drop corrupt blocks: %w", err)
	}

	// When records or operations were left out, blocks of listed segments
	// that no record read adds or deletes may be what they added: those
	// are copied to quarantine (the segment stays). After a complete
	// replay such blocks are ones a merge or recompaction replaced.
	for _, seg := range m.segments {
		if complete {
			break
		}
		data, err := os.ReadFile(segPath(dir, seg))
		if err != nil {
			continue // its blocks were reported above
		}
		for _, fb := range scanBlocks(data) {
			k := blockKey{seg.id, fb.off}
			if m.blocks[k] != nil || deleted[k] {
				continue
			}
			rep.EntriesUnaccounted += int64(fb.h.Count)
			rep.Problems = append(rep.Problems, fmt.Sprintf("block at %d of segment %s/%s (%d entries) is in no readable manifest record", fb.off, dayDir(seg.day), segName(seg.id), fb.h.Count))
			if err := quarantineBlock(seg, fb.off, data[fb.off:fb.off+fb.h.totalLen()]); err != nil {
				return nil, err
			}
		}
	}

	// Segment files nothing accounts for go to quarantine.
	live := map[string]bool{}
	for _, seg := range m.segments {
		live[segPath(dir, seg)] = true
	}
	for _, p := range segmentFiles(dir) {
		id, _ := parseSegName(filepath.Base(p))
		m.nextSeg = max(m.nextSeg, id+1) // never hand its id out again
		if live[p] {
			continue
		}
		n, blocks := scanSegment(p)
		rep.EntriesUnaccounted += n
		rep.Problems = append(rep.Problems, fmt.Sprintf("segment %s/%s (%d readable blocks, %d entries) is in no readable manifest record", filepath.Base(filepath.Dir(p)), filepath.Base(p), blocks, n))
		qd, err := quarantine()
		if err != nil {
			return nil, err
		}
		if err := moveToQuarantine(qd, p); err != nil {
			return nil, err
		}
		rep.SegmentsQuarantined++
	}

	if !damaged && q == "" {
		if prevErr == nil && !prevOK {
			// Only the checkpoint was bad: take a new one.
			if err := writeCheckpoint(dir, cur); err != nil {
				return nil, err
			}
			rep.Changed = true
		}
		return rep, nil
	}
	rep.Changed, rep.ManifestRebuilt = true, damaged
	removeResultCache(dir) // derived from blocks this repair may drop
	removeFilterSums(dir)
	if curErr == nil && damaged {
		qd, err := quarantine()
		if err != nil {
			return nil, err
		}
		if err := fsync.WriteFile(filepath.Join(qd, manifestName), cur); err != nil {
			return nil, fmt.Errorf("keep the damaged manifest: %w", err)
		}
		rep.ManifestKept = true
	}
	data := append([]byte(manifestMagic), frameRecord(encodeOps(m.snapshotOps()))...)
	tmp := filepath.Join(dir, manifestTmpName)
	if err := fsync.WriteFile(tmp, data); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	if err := fsync.Dir(dir); err != nil {
		return nil, err
	}
	if err := writeCheckpoint(dir, data); err != nil {
		return nil, err
	}
	return rep, nil
}

// lockStore takes the writer's lock on dir: the one process that may
// change the store.
func lockStore(dir string) (*os.File, error) {
	lf, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open store lock: %w", err)
	}
	if err := tryLockFile(lf); err != nil {
		b, _ := os.ReadFile(lf.Name())
		lf.Close()
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if errors.Is(err, errLockHeld) {
			return nil, &LockedError{Dir: dir, PID: pid}
		}
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	if err := lf.Truncate(0); err == nil {
		_, _ = lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return lf, nil
}

func unlockStore(lf *os.File) {
	unlockFile(lf)
	_ = lf.Close()
}

// replayLenient rebuilds metadata from every record of data that passes its
// checksum, skipping damaged ones (found again by their frames) and single
// operations that do not fit what came before (a block of a stream whose
// record was lost). complete says nothing was left out.
func replayLenient(data []byte, rep *RepairReport) (m *meta, deleted map[blockKey]bool, complete bool) {
	m, deleted, complete = newMeta(), map[blockKey]bool{}, true
	if len(data) < len(manifestMagic) || string(data[:len(manifestMagic)]) != manifestMagic {
		rep.Problems = append(rep.Problems, "the manifest has no valid magic; no record could be read")
		return m, deleted, false
	}
	p := len(manifestMagic)
	for p < len(data) {
		ops, n, reason, _ := parseRecord(data, p)
		if reason != "" {
			q := nextGoodRecord(data, p)
			if q < 0 {
				break // the tail is torn: nothing after it
			}
			rep.RecordsSkipped++
			complete = false
			rep.Problems = append(rep.Problems, fmt.Sprintf("manifest record at offset %d skipped: %s", p, reason))
			p = q
			continue
		}
		for i := range ops {
			if _, err := m.apply(ops[i : i+1]); err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("manifest record at offset %d: operation left out: %v", p, err))
				complete = false
			} else if ops[i].kind == opDelBlock {
				deleted[blockKey{ops[i].seg, ops[i].off}] = true
			}
		}
		p += n
	}
	return m, deleted, complete
}

// mergeLogs combines a manifest and its checkpoint, which are the same log
// where both have bytes unless the manifest was rewritten since: record by
// record, it takes the longer one's record when it passes its checksum and
// the other's otherwise, and stops where neither does.
func mergeLogs(a, b []byte) []byte {
	if len(b) > len(a) {
		a, b = b, a
	}
	out := slices.Clone(a)
	p := len(manifestMagic)
	if len(out) < p || len(b) < p {
		return out
	}
	copy(out, manifestMagic)
	for p < len(out) {
		if _, n, reason, _ := parseRecord(out, p); reason == "" {
			p += n
			continue
		}
		if p >= len(b) {
			break
		}
		_, n, reason, _ := parseRecord(b, p)
		if reason != "" {
			break
		}
		copy(out[p:], b[p:p+n])
		p += n
	}
	return out
}

func sortedBlocks(m *meta) []*blockRef {
	out := make([]*blockRef, 0, len(m.blocks))
	for _, b := range m.blocks {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b *blockRef) int {
		if a.seg.id != b.seg.id {
			return cmpInt64(int64(a.seg.id), int64(b.seg.id))
		}
		return cmpInt64(a.off, b.off)
	})
	return out
}

// readBlockFile reads a block's bytes from its segment file; a short file
// returns what there is and an error.
func readBlockFile(dir string, b *blockRef) ([]byte, error) {
	f, err := os.Open(segPath(dir, b.seg))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, b.h.totalLen())
	n, err := f.ReadAt(buf, b.off)
	if err == io.EOF {
		err = corruptf("segment file ends %d bytes into the block", n)
	}
	return buf[:n], err
}

// foundBlock is a block found by walking a segment file.
type foundBlock struct {
	off int64
	h   blockHeader
}

// scanBlocks walks a segment file's blocks by their headers, skipping over
// damage to the next block magic, and returns those whose checksums all
// pass.
func scanBlocks(data []byte) []foundBlock {
	var out []foundBlock
	for p := 0; p+blockHeaderSize <= len(data); {
		h, err := parseHeader(data[p:])
		if err != nil || int64(len(data)-p) < h.totalLen() {
			i := bytes.Index(data[p+1:], []byte(blockMagic))
			if i < 0 {
				break
			}
			p += 1 + i
			continue
		}
		if checkBlockBytes(&h, data[p:p+int(h.totalLen())]) == nil {
			out = append(out, foundBlock{int64(p), h})
		}
		p += int(h.totalLen())
	}
	return out
}

// scanSegment counts the readable blocks of a segment file and their
// entries.
func scanSegment(path string) (entries int64, blocks int) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, b := range scanBlocks(data) {
		entries += int64(b.h.Count)
		blocks++
	}
	return entries, blocks
}

// Verify checks every committed block's checksums now (queries check a
// block at its first read), marks the bad ones corrupt so every query
// skips them, and returns how many blocks are known corrupt.
func (s *Store) Verify() (int, error) {
	if err := s.refresh(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	blocks := sortedBlocks(s.m)
	for _, b := range blocks {
		b.seg.readers++
	}
	s.mu.Unlock()
	var held []*segment
	for _, b := range blocks {
		held = append(held, b.seg)
	}
	defer s.releaseSegments(held)
	var buf []byte
	n := 0
	for _, b := range blocks {
		if !b.corrupt.Load() && !b.verified.Load() {
			var err error
			buf, err = s.verifyBlock(b, buf)
			if err != nil {
				if !isReadCorruption(err) {
					return n, fmt.Errorf("verify block of %s: %w", b.stream.lbls, err)
				}
				if !b.corrupt.Swap(true) {
					s.noteCorrupt(b, err)
				}
			}
		}
		if b.corrupt.Load() {
			n++
		}
	}
	return n, nil
}
