package ingest

import "runtime/debug"

// ProcessGCPercent is the garbage collector target for a process whose main
// work is ingesting (the plugin, `lokal ingest` and `lokal tail`).
//
// Catch-up allocates about 8 bytes per raw byte (lines, entries, the
// store's block buffers) while its live heap stays near 65 MB (mostly the
// store's head), so with Go's default of 100 the heap, and with it the RSS,
// grows to about twice the live set: 188-197 MB peak for a 1 GiB corpus.
// Measured with `lokal ingest` on /tmp/corpus1g (2 cores, shared):
//
//	GOGC 100: 178-182 MB/s, peak RSS 188-197 MB
//	GOGC  50: 157-159 MB/s, peak RSS 146-155 MB
//	GOGC  35: 146-154 MB/s, peak RSS 136-141 MB
//	GOGC  30: 142-150 MB/s, peak RSS 132-136 MB
//
// 35 keeps the peak under the 150 MB target with room for the plugin's own
// baseline, for about 15% more CPU. A fixed memory limit is no substitute:
// GOMEMLIMIT=100MiB sits too close to the live heap and collapses throughput
// to 8 MB/s, where a percentage scales with whatever is live.
const ProcessGCPercent = 35

// StoreHeadBudget is the store head budget (store.Options.HeadMemoryBudget)
// for a process that ingests: the store commits its head at 16 MiB and lets
// appends run on while a commit encodes, until the head holds this much.
// The store's default of 32 MiB lets a 16 MiB commit overlap with another
// 16 MiB of appends; during catch-up the CPU is already saturated by then
// (1.85 of 2 cores, the ingester waiting in Append 70% of the time), so the
// extra overlap buys no throughput and costs its bytes twice over in heap.
// Measured with BenchmarkPluginCatchUpCorpus (pkg/plugin) on /tmp/corpus1g
// at GOGC 35: budget 32 MiB 152.5 MB peak RSS at 156 MB/s; 24 MiB 141-142 MB
// at 151-154 MB/s; 20 MiB (flush 12) 135 MB at 146 MB/s.
const StoreHeadBudget = 24 << 20

// SetProcessGC applies ProcessGCPercent to the whole process, unless the
// operator chose a target with the GOGC environment variable. Only a
// process's entry point should call it: it changes the runtime for every
// goroutine. It returns the percentage in effect afterwards.
func SetProcessGC(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		prev := debug.SetGCPercent(-1)
		debug.SetGCPercent(prev)
		return prev
	}
	debug.SetGCPercent(ProcessGCPercent)
	return ProcessGCPercent
}

// ProcessMemoryLimit is the soft memory limit (runtime/debug.SetMemoryLimit)
// of a process that only catches up (`lokal ingest`). GOGC 35 keeps the
// heap near a live set that is itself near flat (65-90 MB during a 1-4 GiB
// catch-up, GODEBUG=gctrace=1), but the peak RSS is the largest of
// thousands of GC cycles. Measured with `lokal ingest` (2026-12-06, 2
// cores shared, load 13-20): without a limit 117-138 MB peak on 1 GiB and
// 160 MB on 10 GiB; with this one 119-123 MB and 136 MB, for the same CPU
// (10 GiB: 121.4 vs 121.1 user-s). The collector works harder only in
// those moments.
// A process that also answers queries (the plugin) raises it by a query's
// headroom for each query in flight (host.QueryMemoryHeadroom): a query may
// legitimately hold up to 100 MB beside the ingester, and under a fixed
// limit the collector would then run flat out.
const ProcessMemoryLimit = 120 << 20

// SetProcessMemoryLimit applies ProcessMemoryLimit unless the operator set
// GOMEMLIMIT, and returns the limit in effect afterwards. Only a process's
// entry point should call it.
func SetProcessMemoryLimit(getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1)
	}
	debug.SetMemoryLimit(ProcessMemoryLimit)
	return ProcessMemoryLimit
}
