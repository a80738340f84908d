// Package log is the line pipeline that LogQL's log stages compile to, with
// Loki's semantics: line filters, parsers, label filters, formatters,
// drop/keep and decolorize, plus the sample extractors of metric queries.
// It knows nothing of the LogQL syntax tree; the engine maps AST nodes to
// the constructors here.
//
// Building blocks:
//
//   - Line filters (Filter): NewLineFilter for |= != |~ !~ |> !>,
//     NewIPLineFilter for ip("..."), NewAndFilter / NewOrFilter for chains
//     and `or`, NewFilterStage to put one in a pipeline. Regular
//     expressions that are literals, literal alternations or (?i)literal
//     run as substring searches. RequiredLiterals derives the literals a
//     kept line must contain, for the store's block filters.
//   - Parsers (Stage): NewJSONParser, NewJSONExpressionParser,
//     NewLogfmtParser, NewLogfmtExpressionParser, NewRegexpParser,
//     NewPatternParser, NewUnpackParser.
//   - Label filters (Stage): NewStringLabelFilter, NewNumericLabelFilter,
//     NewDurationLabelFilter, NewBytesLabelFilter, NewIPLabelFilter,
//     NewAndLabelFilter, NewOrLabelFilter.
//   - Formatters and label stages (Stage): NewLineFormatter,
//     NewLabelsFormatter, NewDropStage, NewKeepStage, NewDecolorizeStage.
//   - Pipelines: NewPipeline(stages...).ForStream(streamLabels) gives a
//     StreamPipeline whose Process returns the rewritten line and the
//     entry's labels; NewLineSampleExtractor / NewLabelSampleExtractor do
//     the same for metric queries.
//   - Line detection, shared by ingestion (the level label, entry times,
//     traceback joining) and the query side (detected_level, patterns):
//     DetectLevel and Level, DetectTime, IsLevelWord, StripANSI.
//
// Per-line failures are data, as in Loki: a parser or filter that fails
// keeps the line and sets __error__ / __error_details__ (LabelsBuilder).
//
// A Pipeline and its stages are built once per query and may be shared by
// goroutines; ForStream gives each stream its own state (buffers, caches),
// and a StreamPipeline must be used by one goroutine at a time.
package log
