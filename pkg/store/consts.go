package store

import "time"

// Limits and defaults, each with the reason for its value.
const (
	// blockTargetRaw is the line bytes a block aims at: big enough that
	// zstd finds the repetition in log lines and per-block metadata stays
	// small, small enough that a needle query decompresses little.
	blockTargetRaw = 1 << 20
)

// Defaults a store gets when its user sets nothing; the settings schema
// refers to these so each default lives here only.
const (
	// DefaultRetention keeps a week, the span users look back over most.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultMaxBytes caps the store well below a typical disk.
	DefaultMaxBytes int64 = 10 << 30
	// DefaultHeadFlushBytes commits the head once it holds this much:
	// large enough that most streams cut whole blocks, small enough for a
	// modest RSS during catch-up.
	DefaultHeadFlushBytes int64 = 16 << 20
	// DefaultHeadMemoryBudget is where Append starts waiting for (or, when
	// commits fail, refusing with ErrPaused) a commit.
	DefaultHeadMemoryBudget int64 = 32 << 20
	// DefaultHeadMaxAge bounds how long a line waits in memory; file
	// positions move only at commits, so this is also how much a restart
	// may have to read again.
	DefaultHeadMaxAge = 15 * time.Second
)

const (
	// maxLineBytes bounds one entry; the ingester truncates long lines far
	// below it, so only a broken caller reaches it.
	maxLineBytes = 64 << 20
	// entryOverhead is the head's memory per entry beyond its line.
	entryOverhead = 32
	// metadataPairOverhead is the head's memory per structured metadata
	// pair beyond its bytes.
	metadataPairOverhead = 32
	// backgroundTick is how often the background loop checks age and
	// retention; it also bounds commit latency after a poke is missed.
	backgroundTick = time.Second
	// commitRetryInterval spaces retries while commits fail (full disk).
	commitRetryInterval = 5 * time.Second
	// retentionInterval is how often retention runs on its own.
	retentionInterval = 10 * time.Minute
	// checkpointInterval is how often a running writer copies a manifest
	// that grew to MANIFEST.prev (besides at open, at close and after a
	// rewrite), bounding what a lost or damaged manifest can take along.
	checkpointInterval = 10 * time.Minute
	// manifestRewriteMin is the log size below which compacting the
	// manifest is not worth a rewrite.
	manifestRewriteMin = 1 << 20
	// batchMaxEntries caps a Batch. Every stream a log query merges holds
	// its current batch (36 bytes an entry besides the decoded block), so
	// a sixth of a block's entries, not a whole block's, keeps 41 streams
	// of a limit-5000 query over a day at 84 MB peak instead of 101 MB,
	// for no measurable cost to counting queries.
	batchMaxEntries = 2048
)
