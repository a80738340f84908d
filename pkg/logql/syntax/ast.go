package syntax

import (
	"time"

	"github.com/lokal-logs/lokal/pkg/labels"
)

// Expr is any node of a parsed query. String prints canonical LogQL that
// parses back to an equal tree.
type Expr interface {
	String() string
	isExpr()
}

// LogSelectorExpr is a log query: a stream selector, optionally followed by
// a pipeline. Its value is a set of log streams.
type LogSelectorExpr interface {
	Expr
	// Matchers returns the stream selector's matchers.
	Matchers() []*labels.Matcher
	isLogSelector()
}

// SampleExpr is a metric query: its value is a vector (or a scalar).
type SampleExpr interface {
	Expr
	isSampleExpr()
}

// StageExpr is one stage of a log pipeline.
type StageExpr interface {
	Expr
	isStage()
}

// MatcherExpr is a stream selector such as {app="api", env!="dev"}.
// Mts is named so that the Matchers method can serve LogSelectorExpr.
type MatcherExpr struct {
	Mts []*labels.Matcher
}

// PipelineExpr is a stream selector followed by one or more stages.
type PipelineExpr struct {
	Left   *MatcherExpr
	Stages []StageExpr
}

// LineFilterOp is the operator of a line filter.
type LineFilterOp string

// Line filter operators.
const (
	LineContains        LineFilterOp = "|="
	LineNotContains     LineFilterOp = "!="
	LineMatchRegexp     LineFilterOp = "|~"
	LineNotMatchRegexp  LineFilterOp = "!~"
	LineMatchPattern    LineFilterOp = "|>"
	LineNotMatchPattern LineFilterOp = "!>"
)

// Negative reports whether the operator keeps lines that do NOT match.
func (op LineFilterOp) Negative() bool {
	return op == LineNotContains || op == LineNotMatchRegexp || op == LineNotMatchPattern
}

// LineFilterExpr is a line filter: `|= "foo"`, `!~ "a|b"`, `|> "<_> x <_>"`,
// `|= ip("10.0.0.0/8")`. Or holds the alternatives written as
// `|= "a" or "b"`; they share Op. For a positive Op the line is kept when
// Value or any alternative matches; for a negative Op the line is kept when
// neither Value nor any alternative matches (Loki's semantics).
type LineFilterExpr struct {
	Op    LineFilterOp
	Value string
	// IP marks `ip("…")`: Value is an address, range or CIDR. Only with
	// |= and !=.
	IP bool
	Or []*LineFilterExpr
}

// ParserKind names a label parser stage.
type ParserKind string

// Label parsers.
const (
	ParserJSON    ParserKind = "json"
	ParserLogfmt  ParserKind = "logfmt"
	ParserRegexp  ParserKind = "regexp"
	ParserPattern ParserKind = "pattern"
	ParserUnpack  ParserKind = "unpack"
)

// LabelParserExpr is a parser stage without extraction parameters:
// `| json`, `| logfmt --strict`, `| regexp "(?P<x>…)"`, `| pattern "<a> <_>"`,
// `| unpack`. Param holds the regexp or pattern.
type LabelParserExpr struct {
	Kind      ParserKind
	Param     string
	Strict    bool // logfmt --strict
	KeepEmpty bool // logfmt --keep-empty
}

// LabelExtraction is one parameter of `| json a="path", b` or
// `| logfmt a="key", b`. Expr is the JSON path or logfmt key; when the
// parameter was written as a bare identifier Expr equals Name and Bare is set.
type LabelExtraction struct {
	Name string
	Expr string
	Bare bool
}

// JSONExpressionParserExpr is `| json name="path", …`.
type JSONExpressionParserExpr struct {
	Params []LabelExtraction
}

// LogfmtExpressionParserExpr is `| logfmt [--strict] [--keep-empty] name="key", …`.
type LogfmtExpressionParserExpr struct {
	Params    []LabelExtraction
	Strict    bool
	KeepEmpty bool
}

// ComparisonOp is the operator of a numeric, duration or bytes label filter.
// `=` is parsed as CmpEq.
type ComparisonOp string

// Comparison operators.
const (
	CmpEq  ComparisonOp = "=="
	CmpNeq ComparisonOp = "!="
	CmpGt  ComparisonOp = ">"
	CmpGte ComparisonOp = ">="
	CmpLt  ComparisonOp = "<"
	CmpLte ComparisonOp = "<="
)

// LabelFilterExpr is a label filter stage: `| a="b" and (c > 10 or d < 5s)`.
type LabelFilterExpr struct {
	Filter LabelFilter
}

// LabelFilter is a node of a label filter's tree: BinaryLabelFilter or one
// of the leaves StringLabelFilter, NumericLabelFilter, DurationLabelFilter,
// BytesLabelFilter, IPLabelFilter.
type LabelFilter interface {
	String() string
	isLabelFilter()
}

// BinaryLabelFilter joins two filters. And is false for `or`. `and`, `,`
// and a space all mean and (another `|` starts a new stage); `and` binds
// tighter than `or`, and a comma or space groups as Loki's grammar does
// (see the package documentation).
type BinaryLabelFilter struct {
	And         bool
	Left, Right LabelFilter
}

// StringLabelFilter compares a label with a string: =, !=, =~, !~.
type StringLabelFilter struct {
	Matcher *labels.Matcher
}

// NumericLabelFilter compares a label's value, parsed as a float, with Value.
type NumericLabelFilter struct {
	Name  string
	Op    ComparisonOp
	Value float64
}

// DurationLabelFilter compares a label's value, parsed as a duration, with Value.
type DurationLabelFilter struct {
	Name  string
	Op    ComparisonOp
	Value time.Duration
}

// BytesLabelFilter compares a label's value, parsed as a byte size
// (humanize semantics: KB=1000, KiB=1024), with Value.
type BytesLabelFilter struct {
	Name  string
	Op    ComparisonOp
	Value uint64
}

// IPLabelFilter is `name = ip("…")` or `name != ip("…")`; Pattern is an
// address, a range a-b or a CIDR.
type IPLabelFilter struct {
	Name    string
	Negate  bool
	Pattern string
}

// LineFmtExpr is `| line_format "template"`.
type LineFmtExpr struct {
	Value string
}

// LabelFmt is one item of label_format: `dst=src` (Rename, Value is the
// source label name) or `dst="template"`.
type LabelFmt struct {
	Name   string
	Value  string
	Rename bool
}

// LabelFmtExpr is `| label_format a=b, c="{{.d}}"`.
type LabelFmtExpr struct {
	Formats []LabelFmt
}

// LabelRef names a label for drop/keep: by name (Matcher nil), or by a
// matcher such as level="debug" that must also hold.
type LabelRef struct {
	Name    string
	Matcher *labels.Matcher
}

// DropLabelsExpr is `| drop a, b="c"`.
type DropLabelsExpr struct {
	Labels []LabelRef
}

// KeepLabelsExpr is `| keep a, b="c"`.
type KeepLabelsExpr struct {
	Labels []LabelRef
}

// DecolorizeExpr is `| decolorize`: strips ANSI colour sequences.
type DecolorizeExpr struct{}

// Unwrap conversions.
const (
	UnwrapNone            = ""
	UnwrapDuration        = "duration"
	UnwrapDurationSeconds = "duration_seconds"
	UnwrapBytes           = "bytes"
)

// UnwrapExpr is `| unwrap [conv(]label[)]` followed by optional label
// filters that apply after unwrapping (typically `| __error__=""`).
type UnwrapExpr struct {
	Identifier  string
	Operation   string // UnwrapNone, UnwrapDuration, UnwrapDurationSeconds, UnwrapBytes
	PostFilters []*LabelFilterExpr
}

// LogRangeExpr is a log query over a sliding window: `{…} | … [5m] offset 1h`.
type LogRangeExpr struct {
	Left     LogSelectorExpr
	Interval time.Duration
	Offset   time.Duration
	Unwrap   *UnwrapExpr
}

// Range aggregation operations.
const (
	OpRangeTypeCount       = "count_over_time"
	OpRangeTypeRate        = "rate"
	OpRangeTypeRateCounter = "rate_counter"
	OpRangeTypeBytes       = "bytes_over_time"
	OpRangeTypeBytesRate   = "bytes_rate"
	OpRangeTypeAbsent      = "absent_over_time"
	OpRangeTypeSum         = "sum_over_time"
	OpRangeTypeAvg         = "avg_over_time"
	OpRangeTypeMin         = "min_over_time"
	OpRangeTypeMax         = "max_over_time"
	OpRangeTypeFirst       = "first_over_time"
	OpRangeTypeLast        = "last_over_time"
	OpRangeTypeStddev      = "stddev_over_time"
	OpRangeTypeStdvar      = "stdvar_over_time"
	OpRangeTypeQuantile    = "quantile_over_time"
)

// Vector aggregation operations.
const (
	OpTypeSum      = "sum"
	OpTypeAvg      = "avg"
	OpTypeMin      = "min"
	OpTypeMax      = "max"
	OpTypeCount    = "count"
	OpTypeStddev   = "stddev"
	OpTypeStdvar   = "stdvar"
	OpTypeTopK     = "topk"
	OpTypeBottomK  = "bottomk"
	OpTypeSort     = "sort"
	OpTypeSortDesc = "sort_desc"
)

// Binary operators.
const (
	OpTypeOr     = "or"
	OpTypeAnd    = "and"
	OpTypeUnless = "unless"
	OpTypeAdd    = "+"
	OpTypeSub    = "-"
	OpTypeMul    = "*"
	OpTypeDiv    = "/"
	OpTypeMod    = "%"
	OpTypePow    = "^"
	OpTypeCmpEQ  = "=="
	OpTypeNEQ    = "!="
	OpTypeGT     = ">"
	OpTypeGTE    = ">="
	OpTypeLT     = "<"
	OpTypeLTE    = "<="
)

// Grouping is `by (a, b)` or `without (a, b)`. A nil *Grouping means none
// was written; an empty Groups with Without false is `by ()`.
type Grouping struct {
	Groups  []string
	Without bool
}

// RangeAggregationExpr applies a function over a log range:
// `rate({…}[5m])`, `quantile_over_time(0.99, {…} | unwrap x [5m]) by (a)`.
type RangeAggregationExpr struct {
	Operation string
	Left      *LogRangeExpr
	Params    *float64 // quantile_over_time's φ
	Grouping  *Grouping
}

// VectorAggregationExpr aggregates a vector: `sum by (a) (…)`, `topk(3, …)`.
type VectorAggregationExpr struct {
	Operation string
	Left      SampleExpr
	Grouping  *Grouping
	Params    int // topk/bottomk's k
}

// VectorMatchCardinality says how many series of each side may match.
type VectorMatchCardinality int

// Cardinalities.
const (
	CardOneToOne  VectorMatchCardinality = iota
	CardManyToOne                        // group_left
	CardOneToMany                        // group_right
)

func (c VectorMatchCardinality) String() string {
	switch c {
	case CardManyToOne:
		return "many-to-one"
	case CardOneToMany:
		return "one-to-many"
	}
	return "one-to-one"
}

// VectorMatching is `on (…)` / `ignoring (…)` with optional
// `group_left (…)` / `group_right (…)`; Include is nil when group_x names
// no labels. It is nil in BinOpOptions when
// neither on nor ignoring was written (group_left/right need one of them).
type VectorMatching struct {
	On             bool
	MatchingLabels []string
	Card           VectorMatchCardinality
	Include        []string
}

// BinOpOptions are a binary operator's modifiers.
type BinOpOptions struct {
	ReturnBool     bool
	VectorMatching *VectorMatching
}

// BinOpExpr is `LHS op [bool] [on/ignoring …] RHS`. Opts is nil when no
// modifier was written.
type BinOpExpr struct {
	Op       string
	LHS, RHS SampleExpr
	Opts     *BinOpOptions
}

// LiteralExpr is a number: a scalar.
type LiteralExpr struct {
	Val float64
}

// VectorExpr is `vector(1)`: a one-sample vector without labels.
type VectorExpr struct {
	Val float64
}

// LabelReplaceExpr is `label_replace(expr, "dst", "replacement", "src", "regex")`.
// The regex was checked at parse time; it is anchored like Prometheus's.
type LabelReplaceExpr struct {
	Left        SampleExpr
	Dst         string
	Replacement string
	Src         string
	Regex       string
}

func (*MatcherExpr) isExpr()                {}
func (*PipelineExpr) isExpr()               {}
func (*LineFilterExpr) isExpr()             {}
func (*LabelParserExpr) isExpr()            {}
func (*JSONExpressionParserExpr) isExpr()   {}
func (*LogfmtExpressionParserExpr) isExpr() {}
func (*LabelFilterExpr) isExpr()            {}
func (*LineFmtExpr) isExpr()                {}
func (*LabelFmtExpr) isExpr()               {}
func (*DropLabelsExpr) isExpr()             {}
func (*KeepLabelsExpr) isExpr()             {}
func (*DecolorizeExpr) isExpr()             {}
func (*UnwrapExpr) isExpr()                 {}
func (*LogRangeExpr) isExpr()               {}
func (*RangeAggregationExpr) isExpr()       {}
func (*VectorAggregationExpr) isExpr()      {}
func (*BinOpExpr) isExpr()                  {}
func (*LiteralExpr) isExpr()                {}
func (*VectorExpr) isExpr()                 {}
func (*LabelReplaceExpr) isExpr()           {}

func (*MatcherExpr) isLogSelector()  {}
func (*PipelineExpr) isLogSelector() {}

func (*RangeAggregationExpr) isSampleExpr()  {}
func (*VectorAggregationExpr) isSampleExpr() {}
func (*BinOpExpr) isSampleExpr()             {}
func (*LiteralExpr) isSampleExpr()           {}
func (*VectorExpr) isSampleExpr()            {}
func (*LabelReplaceExpr) isSampleExpr()      {}

func (*LineFilterExpr) isStage()             {}
func (*LabelParserExpr) isStage()            {}
func (*JSONExpressionParserExpr) isStage()   {}
func (*LogfmtExpressionParserExpr) isStage() {}
func (*LabelFilterExpr) isStage()            {}
func (*LineFmtExpr) isStage()                {}
func (*LabelFmtExpr) isStage()               {}
func (*DropLabelsExpr) isStage()             {}
func (*KeepLabelsExpr) isStage()             {}
func (*DecolorizeExpr) isStage()             {}

func (*BinaryLabelFilter) isLabelFilter()   {}
func (*StringLabelFilter) isLabelFilter()   {}
func (*NumericLabelFilter) isLabelFilter()  {}
func (*DurationLabelFilter) isLabelFilter() {}
func (*BytesLabelFilter) isLabelFilter()    {}
func (*IPLabelFilter) isLabelFilter()       {}

// Matchers returns the selector's matchers.
func (e *MatcherExpr) Matchers() []*labels.Matcher { return e.Mts }

// Matchers returns the stream selector's matchers.
func (e *PipelineExpr) Matchers() []*labels.Matcher { return e.Left.Mts }

// Selector returns the stream selector of a log range.
func (e *LogRangeExpr) Selector() LogSelectorExpr { return e.Left }
