// Textual edits of LogQL queries for Explore's "filter for / filter out value",
// line filters and parser hints. Edits are located with the lezer tree and
// applied to the original text, so the user's formatting and template
// variables survive. A query that does not parse is returned unchanged.
import type { SyntaxNode } from '@lezer/common';

import {
  findNodes,
  findSyntaxErrors,
  isParserStage,
  parseLogQL,
  pipelineStages,
  quoteString,
  stageKind,
  unquoteString,
} from './parse';

export type MatchOp = '=' | '!=';
export type LineFilterOp = '|=' | '!=';

interface Edit {
  from: number;
  to: number;
  insert: string;
}

function applyEdits(expr: string, edits: Edit[]): string {
  let out = expr;
  for (const e of [...edits].sort((a, b) => b.from - a.from)) {
    out = out.slice(0, e.from) + e.insert + out.slice(e.to);
  }
  return out;
}

/** A log expression of the query: a selector and its pipeline, inside a log or a metric query. */
interface LogPart {
  selector: SyntaxNode;
  stages: SyntaxNode[];
}

function logParts(expr: string): LogPart[] | undefined {
  if (expr.trim() === '' || findSyntaxErrors(expr).length > 0) {
    return undefined;
  }
  const tree = parseLogQL(expr);
  const parts: LogPart[] = [];
  for (const name of ['LogExpr', 'LogRangeExpr']) {
    for (const node of findNodes(tree, name)) {
      const selector = node.getChild('Selector');
      if (selector) {
        parts.push({ selector, stages: pipelineStages(node) });
      }
    }
  }
  return parts.sort((a, b) => a.selector.from - b.selector.from);
}

interface FoundMatcher {
  name: string;
  op: string;
  value: string;
  node: SyntaxNode;
  /** The pipeline stage holding a label filter; undefined for a selector matcher. */
  stage?: SyntaxNode;
}

function readMatcher(expr: string, node: SyntaxNode): Omit<FoundMatcher, 'node' | 'stage'> | undefined {
  const id = node.getChild('Identifier');
  const str = node.getChild('String');
  const op = id?.nextSibling;
  if (!id || !str || !op) {
    return undefined;
  }
  return {
    name: expr.slice(id.from, id.to),
    op: expr.slice(op.from, op.to),
    value: unquoteString(expr.slice(str.from, str.to)),
  };
}

function matchersOf(expr: string, part: LogPart): FoundMatcher[] {
  const out: FoundMatcher[] = [];
  const collect = (root: SyntaxNode, stage?: SyntaxNode) => {
    const cursor = root.cursor();
    do {
      if (cursor.name === 'Matcher') {
        const m = readMatcher(expr, cursor.node);
        if (m) {
          out.push({ ...m, node: cursor.node, stage });
        }
      }
    } while (cursor.next() && cursor.from < root.to);
  };
  collect(part.selector);
  for (const stage of part.stages) {
    // Only a label filter that is exactly one matcher can be toggled off as a whole stage.
    const filter = stage.getChild('LabelFilter');
    const matcher = filter?.firstChild;
    if (filter && matcher?.name === 'Matcher' && !matcher.nextSibling) {
      collect(matcher, stage);
    }
  }
  return out;
}

/** Whether any log expression of the query has the matcher key op "value". */
export function queryHasFilter(expr: string, key: string, value: string, op: MatchOp = '='): boolean {
  const parts = logParts(expr);
  if (!parts) {
    return false;
  }
  return parts.some((p) => matchersOf(expr, p).some((m) => m.name === key && m.op === op && m.value === value));
}

/**
 * Adds key op "value" to every log expression: into the stream selector when
 * the expression has no parser (every label is then a stream label and the
 * index can use it), else as a label filter at the end of its pipeline, where
 * parsed labels exist too.
 */
export function addLabelFilter(expr: string, key: string, value: string, op: MatchOp = '='): string {
  const parts = logParts(expr);
  if (!parts || parts.length === 0) {
    return expr;
  }
  const matcher = `${key}${op}${quoteString(value)}`;
  const edits: Edit[] = [];
  for (const part of parts) {
    if (matchersOf(expr, part).some((m) => m.name === key && m.op === op && m.value === value)) {
      continue;
    }
    if (part.stages.some(isParserStage)) {
      const end = part.stages[part.stages.length - 1].to;
      edits.push({ from: end, to: end, insert: ` | ${matcher}` });
    } else {
      const close = part.selector.to - 1; // the closing brace
      const inner = expr.slice(part.selector.from + 1, close).trim();
      edits.push({ from: close, to: close, insert: inner === '' ? matcher : `, ${matcher}` });
    }
  }
  return applyEdits(expr, edits);
}

/**
 * Removes key op "value" wherever it is a selector matcher or a whole label
 * filter stage. A selector's last matcher is kept: a query needs one.
 */
export function removeLabelFilter(expr: string, key: string, value: string, op: MatchOp = '='): string {
  const parts = logParts(expr);
  if (!parts) {
    return expr;
  }
  const edits: Edit[] = [];
  for (const part of parts) {
    const all = matchersOf(expr, part);
    const inSelector = all.filter((m) => !m.stage);
    for (const m of all) {
      if (m.name !== key || m.op !== op || m.value !== value) {
        continue;
      }
      if (m.stage) {
        // the stage and the space before it
        let from = m.stage.from;
        while (from > 0 && /[ \t]/.test(expr[from - 1])) {
          from--;
        }
        edits.push({ from, to: m.stage.to, insert: '' });
        continue;
      }
      if (inSelector.length <= 1) {
        continue;
      }
      const idx = inSelector.indexOf(m);
      if (idx === 0) {
        // up to the next matcher, taking the comma
        edits.push({ from: m.node.from, to: inSelector[1].node.from, insert: '' });
      } else {
        edits.push({ from: inSelector[idx - 1].node.to, to: m.node.to, insert: '' });
      }
    }
  }
  return applyEdits(expr, edits);
}

/**
 * Explore's toggle: filter for (or out) a value, removing the filter if it is
 * already there and the opposite one if present.
 */
export function toggleLabelFilter(expr: string, key: string, value: string, op: MatchOp): string {
  if (queryHasFilter(expr, key, value, op)) {
    return removeLabelFilter(expr, key, value, op);
  }
  const opposite: MatchOp = op === '=' ? '!=' : '=';
  return addLabelFilter(removeLabelFilter(expr, key, value, opposite), key, value, op);
}

/**
 * Adds a line filter right after the selector's leading line filters, where
 * it is cheapest (before parsers) and reads naturally.
 */
export function addLineFilter(expr: string, value: string, op: LineFilterOp = '|='): string {
  const parts = logParts(expr);
  if (!parts || parts.length === 0) {
    return expr;
  }
  const filter = `${op} ${quoteString(value)}`;
  const edits: Edit[] = [];
  for (const part of parts) {
    let at = part.selector.to;
    for (const stage of part.stages) {
      if (stageKind(stage) !== 'LineFilters') {
        break;
      }
      at = stage.to;
    }
    edits.push({ from: at, to: at, insert: ` ${filter}` });
  }
  return applyEdits(expr, edits);
}

/** Appends a parser stage (| json, | logfmt) to every log expression that has none. */
export function addParser(expr: string, parserName: 'json' | 'logfmt'): string {
  const parts = logParts(expr);
  if (!parts || parts.length === 0) {
    return expr;
  }
  const edits: Edit[] = [];
  for (const part of parts) {
    if (part.stages.some(isParserStage)) {
      continue;
    }
    const at = part.stages.length > 0 ? part.stages[part.stages.length - 1].to : part.selector.to;
    edits.push({ from: at, to: at, insert: ` | ${parserName}` });
  }
  return applyEdits(expr, edits);
}

/** The stream selector matchers of the first log expression, e.g. for the label browser. */
export function selectorMatchers(expr: string): Array<{ name: string; op: string; value: string }> {
  const parts = logParts(expr);
  if (!parts || parts.length === 0) {
    return [];
  }
  return matchersOf(expr, parts[0])
    .filter((m) => !m.stage)
    .map(({ name, op, value }) => ({ name, op, value }));
}
