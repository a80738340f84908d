// Package engine evaluates LogQL queries against the store with Loki's
// semantics: log queries stream entries out of the store's iterators in the
// requested direction and stop at the limit; metric queries fold samples into
// per-series step arrays (memory grows with series × steps, never with the
// data) and then apply vector aggregations, binary operators and functions
// step by step. Functions that need a window's samples (quantile_over_time,
// rate_counter), and range aggregations over a pipeline directly under a
// vector aggregation, keep only the samples of the current window per live
// series instead, as Loki does.
//
// Work spreads over cores: line counts fold per stream in parallel, parsed
// and unwrapped streams are read and parsed on their own goroutines and
// merged in time order, and long log scans read streams ahead.
package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
	"github.com/lokal-logs/lokal/pkg/logql/syntax"
	"github.com/lokal-logs/lokal/pkg/store"
)

// Limits mirror Loki's defaults, so a query Loki rejects is rejected here
// with the same message.
const (
	// DefaultMaxSeries is Loki's max_query_series.
	DefaultMaxSeries = 500
	// DefaultMaxEntriesLimit is Loki's max_entries_limit_per_query.
	DefaultMaxEntriesLimit = 5000
	// DefaultLimit is the entries a log query returns when Params.Limit is 0
	// (Loki's HTTP default).
	DefaultLimit = 100
	// MaxPoints is Loki's (and Prometheus's) cap on points per series of a
	// range query: it bounds the step arrays the evaluator allocates.
	MaxPoints = 11000
	// DefaultTimeout is Loki's query_timeout: the longest one query may
	// run, whatever deadline its context carries.
	DefaultTimeout = time.Minute
	// DefaultMemoryBudget is what one query may hold at once where it
	// accumulates: the lines of a log query's result, a metric query's
	// series (labels and step arrays) and window samples. Reading holds
	// more besides (a merge in time order keeps a decoded block per stream,
	// some 45 MB for 35 streams) and the garbage collector lets the heap
	// grow past what is live, so this is what keeps a query that reaches it
	// near 100 MB of process memory (measured on a 4 GiB store); a query
	// past it fails with ErrMemoryBudget instead of taking the process
	// down. A metric query may always hold MaxSeries series, whatever their
	// steps cost.
	DefaultMemoryBudget = 16 << 20
)

// Options configure an Engine. Zero values take the defaults above.
type Options struct {
	MaxSeries       int
	MaxEntriesLimit int
	// Parallelism is how many streams are evaluated at once (GOMAXPROCS
	// when 0).
	Parallelism int
	// Timeout is the longest a query may run (DefaultTimeout when 0, no
	// limit when negative); the caller's context can only shorten it. A
	// query past it fails with an error that matches
	// context.DeadlineExceeded.
	Timeout time.Duration
	// MemoryBudget is DefaultMemoryBudget when 0.
	MemoryBudget int64
	// BlockCacheBytes bounds the results kept per immutable block for the
	// next query (DefaultBlockCacheBytes when 0, no cache when negative).
	BlockCacheBytes int64
	// DiskCache keeps the block cache's results on disk too, next to a
	// store that offers a result cache directory (*store.Store), so a new
	// process starts warm; a read-only store's are read, never written.
	// Off without the memory cache.
	DiskCache bool
	// DiskCacheBytes bounds the disk tier's files (when 0, the smaller of
	// DefaultDiskCacheBytes and DefaultDiskCacheShare of the store).
	DiskCacheBytes int64
}

// Engine evaluates queries. It is safe for concurrent use.
type Engine struct {
	r    store.Reader
	opts Options
	// noFuse turns off streaming range aggregations into the vector
	// aggregation above them (tests check both ways agree).
	noFuse bool
	// noProject has parsers extract every label, with no prefilter and no
	// projection (tests check the answers are the same).
	noProject bool
	// noHints leaves hints out of Result.Warnings (tests check the answer
	// is the same without them).
	noHints bool
	// cache keeps partial results per immutable block (nil: off).
	cache *blockCache
}

// New returns an engine reading from r.
func New(r store.Reader, opts Options) *Engine {
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = DefaultMaxSeries
	}
	if opts.MaxEntriesLimit <= 0 {
		opts.MaxEntriesLimit = DefaultMaxEntriesLimit
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.GOMAXPROCS(0)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MemoryBudget <= 0 {
		opts.MemoryBudget = DefaultMemoryBudget
	}
	if opts.BlockCacheBytes == 0 {
		opts.BlockCacheBytes = DefaultBlockCacheBytes
	}
	e := &Engine{r: r, opts: opts}
	if opts.BlockCacheBytes > 0 {
		e.cache = newBlockCache(opts.BlockCacheBytes)
		if rc, ok := r.(resultCacheStore); ok && opts.DiskCache {
			e.cache.disk = newDiskTier(rc, opts.DiskCacheBytes)
		}
	}
	return e
}

// Params describe one query.
type Params struct {
	// Query is LogQL text; Expr, when set, is used instead.
	Query string
	Expr  syntax.Expr
	// Start and End bound a range query: log queries read [Start, End);
	// metric queries first snap Start down and End up to multiples of Step
	// (as Loki's query frontend does) and evaluate at every multiple
	// between. An instant query evaluates at Start (or at End when Start is
	// zero).
	Start, End time.Time
	// Step of a range metric query; 0 takes Loki's default
	// (range/250, at least 1s).
	Step time.Duration
	// Interval, for log queries, keeps only entries at least Interval after
	// (backward: before) the last entry kept, across all streams (Loki's
	// interval parameter).
	Interval time.Duration
	Limit    int // entries of a log query; 0 means DefaultLimit
	// Direction of a log query. The zero value is Forward; Loki's HTTP
	// API defaults to Backward, so callers mirroring it must say so.
	Direction store.Direction
	Instant   bool
}

// ValueType names a result's shape as Loki's resultType does.
type ValueType string

// Result types.
const (
	ValueStreams ValueType = "streams"
	ValueMatrix  ValueType = "matrix"
	ValueVector  ValueType = "vector"
	ValueScalar  ValueType = "scalar"
)

// Entry is one log line of a result stream.
type Entry struct {
	Ts   int64 // Unix ns
	Line string
	Seq  uint64
}

// Stream is a result stream: entries sharing a final label set, ordered as
// the query's direction.
type Stream struct {
	Labels  labels.Labels
	Entries []Entry
}

// Point is one value of a series at T (Unix ms).
type Point struct {
	T int64
	V float64
}

// Series is one series of a range metric query.
type Series struct {
	Metric labels.Labels
	Points []Point
}

// Sample is one element of an instant vector.
type Sample struct {
	Metric labels.Labels
	T      int64 // Unix ms
	V      float64
}

// Scalar is a plain number at T (Unix ms).
type Scalar struct {
	T int64
	V float64
}

// Stats are what a query cost.
type Stats struct {
	Store           store.Stats
	ExecTime        time.Duration
	EntriesReturned int
	// Cache counts the blocks whose kept results this query reused.
	Cache CacheStats
}

// Result is a query's value; Type says which field holds it.
type Result struct {
	Type    ValueType
	Streams []Stream
	Matrix  []Series
	Vector  []Sample
	Scalar  Scalar
	Stats   Stats
	// LimitReached is true when a log query stopped at its limit, so more
	// entries may exist in the range.
	LimitReached bool
	// Warnings are what a user should know about this answer without it
	// being wrong: data the query could not read, hints where Loki stays
	// silent. Grafana shows them as the frame's notices, the CLI on stderr.
	// They never change the result itself.
	Warnings []string
}

// Errors a caller can test with errors.Is. Their messages follow Loki's.
var (
	// ErrLimit marks a limit above max_entries_limit_per_query.
	ErrLimit = errors.New("max entries limit per query exceeded")
	// ErrTooManySeries marks a metric query above max_query_series.
	ErrTooManySeries = errors.New("maximum number of series reached for a single query")
	// ErrPipeline marks a metric query whose samples carry __error__.
	ErrPipeline = errors.New("pipeline error")
	// ErrMemoryBudget marks a query that would hold more than
	// Options.MemoryBudget.
	ErrMemoryBudget = errors.New("query memory budget exceeded")
	// ErrBadQuery marks a query the engine cannot evaluate as asked
	// (wrong query type, bad parameters, invalid regular expressions,
	// templates...).
	ErrBadQuery = errors.New("bad query")
	// ErrInternal marks a recovered panic: a bug, reported instead of
	// crashing the process.
	ErrInternal = errors.New("internal error")
)

// errEndBeforeStart is Loki's own wording.
var errEndBeforeStart = queryErr(ErrBadQuery, "end timestamp must not be before or equal to start time")

// QueryError carries a Loki-compatible message and a sentinel kind.
type QueryError struct {
	Kind error
	Msg  string
}

func (e *QueryError) Error() string        { return e.Msg }
func (e *QueryError) Is(target error) bool { return target == e.Kind }

func queryErr(kind error, format string, args ...any) error {
	return &QueryError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Query evaluates one query.
func (e *Engine) Query(ctx context.Context, p Params) (res Result, err error) {
	began := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = queryErr(ErrInternal, "internal error evaluating query: %v\n%s", r, debug.Stack())
		}
	}()
	if e.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.opts.Timeout)
		defer cancel()
	}
	defer func() {
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("query timed out after %s: narrow its time range or selector: %w",
				time.Since(began).Round(time.Millisecond), context.DeadlineExceeded)
		}
	}()
	expr := p.Expr
	if expr == nil {
		expr, err = syntax.ParseExpr(p.Query)
		if err != nil {
			return Result{}, err
		}
	}
	collector := store.StatsFrom(ctx)
	if collector == nil {
		collector = &store.StatsCollector{}
		ctx = store.WithStats(ctx, collector)
	}
	counter := &cacheCounter{}
	ctx = withCacheCounter(ctx, counter)
	switch x := expr.(type) {
	case syntax.LogSelectorExpr:
		res, err = e.logQuery(ctx, x, p)
	case syntax.SampleExpr:
		res, err = e.metricQuery(ctx, x, p)
	default:
		return Result{}, queryErr(ErrBadQuery, "unsupported expression %T", expr)
	}
	if err != nil {
		return Result{}, decodedLimit(err)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	res.Stats.Store = collector.Snapshot()
	res.Stats.Cache = counter.snapshot()
	res.Stats.ExecTime = time.Since(began)
	if n := res.Stats.Store.BlocksCorrupt; n > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d corrupt block(s) in the range were skipped: their entries are missing from this answer (see the store's health)", n))
	}
	if !e.noHints {
		res.Warnings = append(res.Warnings, e.hints(ctx, expr, p, &res)...)
	}
	return res, nil
}
