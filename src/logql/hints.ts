// Hints where Loki stays silent, computed from the parsed query as the
// backend's engine computes them (pkg/logql/engine/hints.go): a
// line_format, label_format or label filter that reads a field no stream
// has and no stage before it extracts. Loki renders such a field as empty
// without a word; the editor says so and suggests a parser.
import type { SyntaxNode } from '@lezer/common';

import { findNodes, findSyntaxErrors, parseLogQL, pipelineStages, quoteString, unquoteString } from './parse';

/** A hint on a span of the query (0-based offsets), with the query rewritten to follow it. */
export interface LogQLHint {
  from: number;
  to: number;
  message: string;
  /** The query with a | regexp per missing field before the stage that reads them. */
  suggestion: string;
}

// Filters whose first identifier is the label they compare.
const FILTER_LEAVES = new Set(['Matcher', 'NumberFilter', 'DurationFilter', 'BytesFilter', 'IpLabelFilter']);

const IDENT = '[A-Za-z_][A-Za-z0-9_]*';

/** Named groups of a regexp parser's expression: (?P<name>…) and (?<name>…). */
function regexpNames(re: string): string[] {
  return [...re.matchAll(new RegExp(`\\(\\?P?<(${IDENT})>`, 'g'))].map((m) => m[1]);
}

/** Named captures of a pattern parser's expression; <_> names none. */
function patternNames(pattern: string): string[] {
  return [...pattern.matchAll(new RegExp(`<(${IDENT})>`, 'g'))].map((m) => m[1]).filter((n) => n !== '_');
}

/**
 * The fields a Go template reads from its data: .x and $.x inside {{ }}.
 * A template using with or range changes the dot, so it gives none rather
 * than a wrong hint.
 */
export function templateFields(tmpl: string): string[] {
  const out: string[] = [];
  for (const action of tmpl.matchAll(/\{\{(.*?)\}\}/gs)) {
    // strings inside an action are not fields
    const code = action[1].replace(/"(?:[^"\\]|\\.)*"|`[^`]*`/g, '""');
    if (/^\s*-?\s*(with|range)\b/.test(code)) {
      return [];
    }
    for (const m of code.matchAll(new RegExp(`(^|[^A-Za-z0-9_.)\\]$])\\$?\\.(${IDENT})`, 'g'))) {
      out.push(m[2]);
    }
  }
  return out;
}

function childText(expr: string, node: SyntaxNode | null): string {
  return node ? expr.slice(node.from, node.to) : '';
}

/** The labels a label filter stage compares. */
function filterNames(expr: string, stage: SyntaxNode): string[] {
  const out: string[] = [];
  const visit = (n: SyntaxNode) => {
    if (FILTER_LEAVES.has(n.name)) {
      out.push(childText(expr, n.getChild('Identifier')));
      return;
    }
    for (let c = n.firstChild; c; c = c.nextSibling) {
      visit(c);
    }
  };
  visit(stage);
  return out;
}

/** A stage's own node: what follows its pipe. */
function stageBody(stage: SyntaxNode): SyntaxNode | null {
  const first = stage.firstChild;
  return first?.name === 'Pipe' ? first.nextSibling : first;
}

/** What a stage extracts: names, or 'any' for parsers that take whatever the line holds. */
function extracted(expr: string, stage: SyntaxNode): string[] | 'any' {
  const kind = stageBody(stage);
  if (!kind) {
    return [];
  }
  switch (kind.name) {
    case 'LabelParser': {
      const param = kind.getChild('String');
      if (kind.getChild('Regexp') && param) {
        return regexpNames(unquoteString(childText(expr, param)));
      }
      if (kind.getChild('Pattern') && param) {
        return patternNames(unquoteString(childText(expr, param)));
      }
      return 'any'; // json, unpack
    }
    case 'LogfmtParser':
      return 'any';
    case 'JsonExpressionParser':
    case 'LogfmtExpressionParser':
      return findNodesIn(kind, 'LabelExtractionExpression').map((n) => childText(expr, n.getChild('Identifier')));
  }
  return [];
}

function findNodesIn(node: SyntaxNode, name: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  const cursor = node.cursor();
  const end = node.to;
  while (cursor.next() && cursor.from < end) {
    if (cursor.name === name) {
      out.push(cursor.node);
    }
  }
  return out;
}

/** The fields a stage reads, and how a hint names the stage. */
function reads(expr: string, stage: SyntaxNode): { fields: string[]; what: string } {
  const kind = stageBody(stage);
  switch (kind?.name) {
    case 'LabelFilter':
      return { fields: filterNames(expr, kind), what: '`' + expr.slice(stage.from, stage.to).trim() + '`' };
    case 'LineFormatExpr':
      return { fields: templateFields(unquoteString(childText(expr, kind.getChild('String')))), what: 'line_format' };
    case 'LabelFormatExpr': {
      const fields: string[] = [];
      for (const m of findNodesIn(kind, 'LabelFormatMatcher')) {
        const ids = m.getChildren('Identifier');
        const tmpl = m.getChild('String');
        if (tmpl) {
          fields.push(...templateFields(unquoteString(childText(expr, tmpl))));
        } else if (ids.length > 1) {
          fields.push(childText(expr, ids[1]));
        }
      }
      return { fields, what: 'label_format' };
    }
  }
  return { fields: [], what: '' };
}

/** Names the label_format stage writes. */
function written(expr: string, stage: SyntaxNode): string[] {
  const kind = stageBody(stage);
  if (kind?.name !== 'LabelFormatExpr') {
    return [];
  }
  return findNodesIn(kind, 'LabelFormatMatcher').map((m) => childText(expr, m.getChild('Identifier')));
}

function hintMessage(fields: string[], what: string, suggestion: string): string {
  const q = fields.map((f) => '`' + f + '`');
  const one = fields.length === 1;
  const subject = one
    ? `${q[0]} is not a label here`
    : `${q.slice(0, -1).join(', ')} and ${q[q.length - 1]} are not labels here`;
  const it = one ? 'it' : 'them';
  const reads = one ? 'it reads' : 'they read';
  return (
    `${subject} (no stream has ${it} and no stage before ${what} extracts ${it}, so ${reads} as empty); ` +
    `add \`| logfmt\` or \`| regexp\` before ${what}, e.g. ${suggestion}`
  );
}

/**
 * Hints for expr, given the label names of the streams its selectors
 * match. Without them (not fetched yet, or the fetch failed) a field cannot
 * be told from a stream label, so there are none.
 */
export function findFieldHints(expr: string, streamLabels: string[] | undefined): LogQLHint[] {
  if (!streamLabels || expr.trim() === '' || findSyntaxErrors(expr).length > 0) {
    return [];
  }
  const have = new Set(streamLabels);
  const tree = parseLogQL(expr);
  const hints: LogQLHint[] = [];
  const owners = [...findNodes(tree, 'LogExpr'), ...findNodes(tree, 'LogRangeExpr')];
  for (const owner of owners) {
    const made = new Set<string>();
    for (const stage of pipelineStages(owner)) {
      const { fields, what } = reads(expr, stage);
      const missing = [
        ...new Set(fields.filter((f) => f !== '' && !f.startsWith('__') && !made.has(f) && !have.has(f))),
      ];
      if (missing.length > 0) {
        const insert = missing.map((f) => `| regexp ${quoteString(`${f}=(?P<${f}>[^, ]+)`)} `).join('');
        const suggestion = expr.slice(0, stage.from) + insert + expr.slice(stage.from);
        hints.push({ from: stage.from, to: stage.to, message: hintMessage(missing, what, suggestion), suggestion });
      }
      const ex = extracted(expr, stage);
      if (ex === 'any') {
        break;
      }
      [...ex, ...written(expr, stage)].forEach((n) => made.add(n));
    }
  }
  return hints.sort((a, b) => a.from - b.from);
}

/** Whether a stage of expr reads a field no stage before it extracts, so hints need the stream labels. */
export function readsUnextractedFields(expr: string): boolean {
  return findFieldHints(expr, []).length > 0;
}
