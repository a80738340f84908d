package plugin

import (
	"github.com/lokal-logs/lokal/pkg/ingest"
	"github.com/lokal-logs/lokal/pkg/store"
)

// Lines without a timestamp of their own are stored at the time they were
// read, as in Loki; a first catch-up of a backlog puts hours of them into
// its few minutes. Health and the notices of every query over such a span
// say so (see ingest.ReadTimeStat).

// readTimeStats are the counts of entries stored at their read time: the
// running ingester's (fresher), else those committed in the store.
func (ds *Datasource) readTimeStats(st *store.Store) []ingest.ReadTimeStat {
	if ds.shared != nil {
		if r := ds.shared.Current(); r != nil {
			return r.Ingester().ReadTimeStamped()
		}
	}
	if st == nil {
		return nil
	}
	stats, err := ingest.ReadTimeStatsFrom(st.Cursors())
	if err != nil {
		ds.log.Warn("read-time counts", "error", err.Error())
	}
	return stats
}
