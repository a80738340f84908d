// Package syntax is LogQL's front end: it lexes and parses a query into an
// abstract syntax tree, validates it with Loki's rules and prints it back as
// canonical LogQL. The engine evaluates the tree; nothing here touches data.
//
// The grammar is Loki 3.x's, parsed by hand (recursive descent, precedence
// climbing for binary operators). Where Loki's yacc grammar has a quirk
// that changes results, the parser reproduces it:
//
//   - In a label filter, `and` binds tighter than `or`, but a comma or two
//     filters written side by side join the filter just before them with
//     everything after them: `a, b or c` is a and (b or c), while
//     `a and b or c` is (a and b) or c.
//   - A binary operator between two literals is folded while parsing:
//     comparisons give 1 or 0 with or without bool, and x/0 and x%0 give
//     NaN (ScalarBinOp). A set operator (and, or, unless) rejects a
//     literal operand.
//   - A sign belongs to a number only: `-1 ^ 2` is (-1)^2.
//   - Keywords and function names are case-insensitive; label names are not.
//   - `group_left (…)` reads a label list only when the parenthesis holds
//     names; `group_left (sum(x))` is the right operand.
//
// The parser is more lenient than Loki in a few harmless places: trailing
// commas in label lists, `==` between a label and a string, fractional
// and spaced durations inside a range, and NaN/Inf literals (so that folded
// results print and parse back).
//
// Every error is a *ParseError (errors.As finds one) and matches ErrParse.
// Grammar errors carry a line and column and say what was found and what
// was expected, and so do errors in one token (a regex, pattern or ip()
// that cannot be used). Errors of Loki's validation rules (a selector that
// selects everything, unwrap with the wrong aggregation, a literal leg of a
// set operator, …) are *ValidationError: they print as Loki prints them
// ("parse error : …"), without a position. Every error also carries the
// span of the query it is about, Range (byte offsets, lines and columns of
// its start and end, as Prometheus's parser reports them): the offending
// token of a grammar error, the offending node of a validation error.
// ErrorRange returns it.
package syntax
