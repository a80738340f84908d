package store

import (
	"cmp"
	"slices"
)

// roomOps are the drops that make room for a commit of jobs into the
// partitions days (sorted, oldest first), replacing the merged blocks:
// while the store, the manifest and the commit's blocks together would
// pass MaxBytes, the oldest whole
// day goes, in the commit's own record. Only days older than every day the
// commit writes are candidates, so a day is never dropped in part and the
// newest partition never goes; retention after the commit
// (ApplyRetention) then keeps the store under the limit as before. Without
// this, during a catch-up each commit first lands on top of a store that is
// already at its limit, and the store passes it by a whole commit (many
// days of a quiet stream) until retention runs. The caller holds commitMu.
func (s *Store) roomOps(jobs []*encodeJob, days []int64, merged []*blockRef) []op {
	if s.opts.MaxBytes <= 0 || len(days) == 0 {
		return nil
	}
	total := s.manSize.Load()
	for _, j := range jobs {
		total += int64(len(j.out))
	}
	for _, b := range merged {
		total -= b.h.totalLen()
	}
	type dayInfo struct {
		day   int64
		bytes int64
	}
	var older []dayInfo
	s.mu.RLock()
	for d, ds := range s.m.days {
		total += ds.bytes
		if d < days[0] {
			older = append(older, dayInfo{d, ds.bytes})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(older, func(a, b dayInfo) int { return cmp.Compare(a.day, b.day) })
	var ops []op
	for _, d := range older {
		if total <= s.opts.MaxBytes {
			break
		}
		// The size limit drops what forward clients have not sent, and
		// counts the loss, as ApplyRetention does (forward.go, rule 3).
		s.mu.Lock()
		if s.fwdDayUnsent(d.day) {
			s.fwdNoteDrop(d.day)
		}
		s.mu.Unlock()
		ops = append(ops, op{kind: opDropDay, day: d.day})
		total -= d.bytes
	}
	return ops
}
