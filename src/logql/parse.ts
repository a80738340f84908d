// LogQL analysis for the editor and the Explore features, built on the
// published @grafana/lezer-logql grammar rather than a hand-made tokenizer.
// The backend stays the judge of validity; these helpers give feedback while
// typing and edit queries textually, preserving the user's formatting.
import { parser } from '@grafana/lezer-logql';
import type { SyntaxNode, Tree } from '@lezer/common';

/** A syntax error with its 0-based offsets and 1-based line/column, as the editor shows it. */
export interface LogQLSyntaxError {
  from: number;
  to: number;
  startLine: number;
  startColumn: number;
  endLine: number;
  endColumn: number;
  message: string;
}

// Template variables are substituted before a query reaches the backend, so
// they are masked with placeholders of the same length (offsets stay valid)
// that parse in the position they stand in.
const VARIABLE_RE = /\$__\w+|\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]/g;

/** Replaces Grafana template variables with same-length placeholders that parse. */
export function maskVariables(expr: string): string {
  return expr.replace(VARIABLE_RE, (match: string, offset: number) => {
    const n = match.length;
    if (insideString(expr, offset)) {
      return 'x'.repeat(n);
    }
    const before = expr.slice(0, offset).trimEnd();
    const last = before.charAt(before.length - 1);
    if (last === '[' || last === ':' || /offset$/i.test(before)) {
      // a duration: digits then a unit
      return n === 1 ? 's' : '1'.repeat(n - 1) + 's';
    }
    if ('<>=!+-*/%^'.includes(last) && last !== '') {
      return '1'.repeat(n);
    }
    return 'x'.repeat(n);
  });
}

/** Whether offset lies inside a double-quoted or backtick string. */
function insideString(expr: string, offset: number): boolean {
  let quote = '';
  for (let i = 0; i < offset; i++) {
    const c = expr[i];
    if (quote) {
      if (c === '\\' && quote === '"') {
        i++;
      } else if (c === quote) {
        quote = '';
      }
    } else if (c === '"' || c === '`') {
      quote = c;
    }
  }
  return quote !== '';
}

export function parseLogQL(expr: string): Tree {
  return parser.parse(maskVariables(expr));
}

function position(expr: string, offset: number): { line: number; column: number } {
  const before = expr.slice(0, offset);
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

// What the parser was inside when it failed, for a message that says what is wrong.
const CONTEXT_HINTS: Record<string, string> = {
  Selector: 'in the stream selector: matchers look like {label="value"}',
  Matchers: 'in the stream selector: matchers look like {label="value"}',
  Matcher: 'in a label matcher: the value must be a quoted string, e.g. job="cosyvoice3"',
  LineFilter: 'in a line filter: expected a quoted string, e.g. |= "error"',
  LineFilters: 'in a line filter: expected a quoted string, e.g. |= "error"',
  LogRangeExpr: 'in a range: expected a duration in brackets, e.g. [5m]',
  Range: 'in a range: expected a duration in brackets, e.g. [5m]',
  RangeAggregationExpr: 'in a range aggregation: expected e.g. rate({job="x"}[5m])',
  VectorAggregationExpr: 'in an aggregation: expected e.g. sum by (level) (rate({job="x"}[5m]))',
  Grouping: 'in a grouping: expected label names, e.g. by (level)',
  PipelineStage: 'in a pipeline stage',
  LabelFilter: 'in a label filter',
  LineFormatExpr: 'in line_format: expected a quoted template',
  LabelFormatExpr: 'in label_format: expected name=template',
};

function describeError(expr: string, node: SyntaxNode): string {
  const text = expr.slice(node.from, node.to);
  let what: string;
  const rest = expr.slice(node.from);
  if (
    (rest.startsWith('"') && !/^"(?:[^"\\]|\\.)*"/.test(rest)) ||
    (rest.startsWith('`') && rest.indexOf('`', 1) < 0)
  ) {
    return 'unterminated string: a closing quote is missing';
  }
  if (node.from >= expr.trimEnd().length) {
    what = 'unexpected end of query';
  } else if (text.length > 0) {
    what = `unexpected ${JSON.stringify(text.length > 30 ? text.slice(0, 30) + '…' : text)}`;
  } else {
    const next = expr.slice(node.from).trimStart();
    what = `unexpected ${JSON.stringify(next.slice(0, 10))}`;
  }
  for (let p: SyntaxNode | null = node.parent; p; p = p.parent) {
    const hint = CONTEXT_HINTS[p.name];
    if (hint) {
      return `${what} ${hint}`;
    }
  }
  return what;
}

/**
 * Parses expr and returns its syntax errors, merged where the parser's error
 * recovery reports one mistake as adjacent pieces. Empty input has none.
 */
export function findSyntaxErrors(expr: string): LogQLSyntaxError[] {
  if (expr.trim() === '') {
    return [];
  }
  const tree = parseLogQL(expr);
  const nodes: SyntaxNode[] = [];
  tree.iterate({
    enter: (ref) => {
      if (ref.type.isError) {
        nodes.push(ref.node);
        return false;
      }
      return true;
    },
  });
  const errors: LogQLSyntaxError[] = [];
  for (const node of nodes) {
    const prev = errors[errors.length - 1];
    if (prev && node.from <= prev.to + 1) {
      prev.to = Math.max(prev.to, node.to);
      const end = position(expr, prev.to);
      prev.endLine = end.line;
      prev.endColumn = end.column;
      continue;
    }
    const start = position(expr, node.from);
    const end = position(expr, node.to);
    errors.push({
      from: node.from,
      to: node.to,
      startLine: start.line,
      startColumn: start.column,
      endLine: end.line,
      endColumn: end.column,
      message: describeError(expr, node),
    });
  }
  return errors;
}

/** Formats an error the way the editor shows it under the code. */
export function formatSyntaxError(err: LogQLSyntaxError): string {
  return `Syntax error at line ${err.startLine}, column ${err.startColumn}: ${err.message}`;
}

function topExpr(tree: Tree): SyntaxNode | null {
  const expr = tree.topNode.getChild('Expr');
  return expr?.firstChild ?? null;
}

/** True for a log query (a selector with a pipeline), false for a metric query. */
export function isLogsQuery(expr: string): boolean {
  const top = topExpr(parseLogQL(expr));
  return top?.name === 'LogExpr';
}

/** Every node of the given type, in document order. */
export function findNodes(tree: Tree, name: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  tree.iterate({
    enter: (ref) => {
      if (ref.name === name) {
        out.push(ref.node);
      }
    },
  });
  return out;
}

/** The pipeline stages of a log expression, in order (the grammar nests them left-recursively). */
export function pipelineStages(logExpr: SyntaxNode): SyntaxNode[] {
  const pipeline = logExpr.getChild('PipelineExpr');
  if (!pipeline) {
    return [];
  }
  const out: SyntaxNode[] = [];
  tree(pipeline);
  return out;

  function tree(node: SyntaxNode) {
    for (let c = node.firstChild; c; c = c.nextSibling) {
      if (c.name === 'PipelineExpr') {
        tree(c);
      } else if (c.name === 'PipelineStage') {
        out.push(c);
      }
    }
  }
}

const FILTER_STAGES = new Set(['LineFilters', 'LabelFilter']);

export function stageKind(stage: SyntaxNode): string {
  for (let c = stage.firstChild; c; c = c.nextSibling) {
    if (c.name !== 'Pipe') {
      return c.name;
    }
  }
  return '';
}

export function isParserStage(stage: SyntaxNode): boolean {
  return ['LabelParser', 'LogfmtParser', 'JsonExpressionParser', 'LogfmtExpressionParser'].includes(stageKind(stage));
}

/**
 * The part of a log query that decides which lines count, for the log volume
 * histogram: the selector and its filters. Parsers and formats are dropped
 * (they are costly over a day of logs and change no count) unless a filter
 * after them depends on what they extracted, in which case the whole query is
 * kept so the histogram counts exactly the lines the query returns.
 * Returns undefined for metric queries and unparsable input.
 */
export function logVolumeSource(expr: string): string | undefined {
  if (findSyntaxErrors(expr).length > 0) {
    return undefined;
  }
  const tree = parseLogQL(expr);
  const top = topExpr(tree);
  if (!top || top.name !== 'LogExpr') {
    return undefined;
  }
  const selector = top.getChild('Selector');
  if (!selector) {
    return undefined;
  }
  const stages = pipelineStages(top);
  const firstOther = stages.findIndex((s) => !FILTER_STAGES.has(stageKind(s)));
  if (firstOther < 0) {
    return expr.slice(top.from, top.to).trim();
  }
  const dependentFilter = stages.slice(firstOther).some((s) => FILTER_STAGES.has(stageKind(s)));
  if (dependentFilter) {
    return expr.slice(top.from, top.to).trim();
  }
  const end = firstOther === 0 ? selector.to : stages[firstOther - 1].to;
  return expr.slice(top.from, end).trim();
}

/**
 * The log query inside a metric query (its first selector and pipeline,
 * without unwrap and range), for Explore's sample of the lines behind a
 * graph. Undefined for log queries and unparsable input.
 */
export function logsSampleSource(expr: string): string | undefined {
  if (findSyntaxErrors(expr).length > 0) {
    return undefined;
  }
  const tree = parseLogQL(expr);
  const top = topExpr(tree);
  if (!top || top.name !== 'MetricExpr') {
    return undefined;
  }
  const range = findNodes(tree, 'LogRangeExpr')[0];
  const selector = range?.getChild('Selector');
  if (!range || !selector) {
    return undefined;
  }
  const stages = pipelineStages(range);
  const end = stages.length > 0 ? stages[stages.length - 1].to : selector.to;
  return expr.slice(selector.from, end).trim();
}

/** Whether a log query already parses its lines (so a parser hint is moot). */
export function hasParser(expr: string): boolean {
  const tree = parseLogQL(expr);
  return findNodes(tree, 'PipelineStage').some(isParserStage);
}

/** Quotes a label value or filter string as a LogQL double-quoted string. */
export function quoteString(value: string): string {
  return '"' + value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

/** Reads a LogQL string literal (double-quoted with escapes, or backtick raw). */
export function unquoteString(literal: string): string {
  if (literal.startsWith('`')) {
    return literal.slice(1, -1);
  }
  try {
    return JSON.parse(literal);
  } catch {
    return literal.slice(1, -1);
  }
}

/**
 * Escapes a literal for a regex inside a LogQL double-quoted string: regex
 * metacharacters get a backslash, then the string's own escaping doubles
 * every backslash and escapes quotes.
 */
export function escapeRegexInString(s: string): string {
  return s
    .replace(/[\\^$*+?.()|{}[\]]/g, '\\$&')
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"');
}
