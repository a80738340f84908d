package host

import (
	"fmt"
	"time"

	"github.com/lokal-logs/lokal/pkg/config"
	"github.com/lokal-logs/lokal/pkg/ingest"
	"github.com/lokal-logs/lokal/pkg/store"
)

// StoreOptions maps the settings schema onto the options of a store that
// an ingester writes.
func StoreOptions(s *config.Settings) store.Options {
	return store.Options{
		Retention: s.Storage.RetentionOrDefault(),
		MaxBytes:  s.Storage.MaxBytesOrDefault(),
		// The host ingests: keep catch-up's peak RSS in budget.
		HeadMemoryBudget: ingest.StoreHeadBudget,
	}
}

// Summary is what a health check says about a store.
type Summary struct {
	Dir         string    `json:"dir"`
	Streams     int       `json:"streams"`
	Blocks      int       `json:"blocks"`
	Entries     int64     `json:"entries"`
	RawBytes    int64     `json:"rawBytes"`
	StoredBytes int64     `json:"storedBytes"`
	From        time.Time `json:"from,omitzero"`
	To          time.Time `json:"to,omitzero"`
	Corrupt     int       `json:"corruptBlocks"`
}

func (s Summary) String() string {
	if s.Entries == 0 {
		return "empty"
	}
	return fmt.Sprintf("%d lines in %d streams, %s raw in %s on disk, from %s to %s",
		s.Entries, s.Streams, config.HumanBytes(s.RawBytes), config.HumanBytes(s.StoredBytes),
		s.From.Format(time.RFC3339), s.To.Format(time.RFC3339))
}

// Summarize reads a store's Info; a problem it reports is an error.
func Summarize(st *store.Store) (Summary, error) {
	in := st.Info()
	s := Summary{Dir: in.Dir, Streams: in.Streams, Blocks: in.Blocks, Entries: in.Entries + in.HeadEntries,
		RawBytes: in.RawBytes + in.HeadBytes, StoredBytes: in.StoredBytes, Corrupt: in.CorruptBlocks}
	if in.MinTime != 0 || in.MaxTime != 0 {
		s.From, s.To = time.Unix(0, in.MinTime).UTC(), time.Unix(0, in.MaxTime).UTC()
	}
	var err error
	switch {
	case in.Paused:
		err = fmt.Errorf("paused: %s", in.LastError)
	case in.CorruptBlocks > 0:
		err = fmt.Errorf("%d corrupt blocks are skipped by queries (the rest keeps serving)", in.CorruptBlocks)
	}
	return s, err
}
