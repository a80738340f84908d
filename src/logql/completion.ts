// Where the cursor is in a LogQL query and what may be typed there, for the
// editor's autocompletion. Pure functions over the text before the cursor, so
// they work on incomplete input that no parser accepts yet.
import { TimeRange } from '@grafana/data';

import type { LanguageProvider } from '../languageProvider';
import { quoteString } from './parse';

export type CompletionSituation =
  | { type: 'LABEL_NAME'; selector: string; otherLabels: string[] }
  | { type: 'LABEL_VALUE'; label: string; selector: string; prefix: string; quoted: boolean }
  | { type: 'GROUPING_LABEL' }
  | { type: 'PIPE_OPERATION' }
  | { type: 'DURATION' }
  | { type: 'EXPRESSION_START' }
  | { type: 'NONE' };

export interface CompletionItem {
  label: string;
  insertText: string;
  kind: 'label' | 'value' | 'function' | 'keyword' | 'duration' | 'snippet';
  detail?: string;
  /** How many characters before the cursor the insertion replaces. */
  replaceBefore: number;
}

export const RANGE_FUNCTIONS = [
  'count_over_time',
  'rate',
  'bytes_over_time',
  'bytes_rate',
  'rate_counter',
  'avg_over_time',
  'sum_over_time',
  'min_over_time',
  'max_over_time',
  'stddev_over_time',
  'stdvar_over_time',
  'quantile_over_time',
  'first_over_time',
  'last_over_time',
  'absent_over_time',
];

export const AGGREGATIONS = [
  'sum',
  'avg',
  'min',
  'max',
  'count',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'sort',
  'sort_desc',
];

const PIPE_OPERATIONS: Array<{ label: string; insertText: string; detail: string }> = [
  { label: 'json', insertText: 'json', detail: 'parse JSON fields into labels' },
  { label: 'logfmt', insertText: 'logfmt', detail: 'parse key=value pairs into labels' },
  { label: 'regexp', insertText: 'regexp ""', detail: 'extract labels with named groups' },
  { label: 'pattern', insertText: 'pattern ""', detail: 'extract labels with a <field> pattern' },
  { label: 'unpack', insertText: 'unpack', detail: 'unpack labels packed by Promtail' },
  { label: 'line_format', insertText: 'line_format ""', detail: 'rewrite the line with a template' },
  { label: 'label_format', insertText: 'label_format ', detail: 'rename or template labels' },
  { label: 'drop', insertText: 'drop ', detail: 'drop labels' },
  { label: 'keep', insertText: 'keep ', detail: 'keep only these labels' },
  { label: 'decolorize', insertText: 'decolorize', detail: 'strip ANSI colours' },
  { label: 'unwrap', insertText: 'unwrap ', detail: 'use a label as the sample value' },
];

export const DURATIONS = ['$__auto', '$__interval', '$__range', '1m', '5m', '10m', '1h', '1d'];

/** Index of the '{' that opens the selector the cursor is in, or -1 when not inside one. */
function openSelectorStart(before: string): number {
  let quote = '';
  let open = -1;
  for (let i = 0; i < before.length; i++) {
    const c = before[i];
    if (quote) {
      if (c === '\\' && quote === '"') {
        i++;
      } else if (c === quote) {
        quote = '';
      }
    } else if (c === '"' || c === '`') {
      quote = c;
    } else if (c === '{') {
      open = i;
    } else if (c === '}') {
      open = -1;
    }
  }
  return open;
}

const MATCHER_RE = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|`[^`]*`)/g;

export function getCompletionContext(text: string, offset: number): CompletionSituation {
  const before = text.slice(0, offset);
  const open = openSelectorStart(before);
  if (open >= 0) {
    const inside = before.slice(open + 1);
    const value = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("?)((?:[^"\\,}]|\\.)*)$/.exec(inside);
    const complete = [...inside.matchAll(MATCHER_RE)];
    const selector = `{${complete.map((m) => m[0]).join(', ')}}`;
    if (value && !(value[3] === '' && value[4] !== '')) {
      // a matcher for the current label would restrict its own values
      const others = complete.filter((m) => m[1] !== value[1]).map((m) => m[0]);
      return {
        type: 'LABEL_VALUE',
        label: value[1],
        selector: others.length ? `{${others.join(', ')}}` : '',
        prefix: value[4],
        quoted: value[3] === '"',
      };
    }
    if (/(^|,)\s*[A-Za-z_0-9]*$/.test(inside)) {
      return {
        type: 'LABEL_NAME',
        selector: complete.length ? selector : '',
        otherLabels: complete.map((m) => m[1]),
      };
    }
    return { type: 'NONE' };
  }
  if (/\b(by|without)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*\s*,\s*)*[A-Za-z_0-9]*$/.test(before)) {
    return { type: 'GROUPING_LABEL' };
  }
  if (/\[[^\]]*$/.test(before)) {
    return { type: 'DURATION' };
  }
  if (/\|\s*[A-Za-z_]*$/.test(before)) {
    return { type: 'PIPE_OPERATION' };
  }
  if (/(^|[(,]|\b(and|or|unless)|[-+*/%^])\s*[A-Za-z_]*$/.test(before)) {
    return { type: 'EXPRESSION_START' };
  }
  return { type: 'NONE' };
}

function currentWord(before: string): string {
  return /[A-Za-z_0-9$]*$/.exec(before)?.[0] ?? '';
}

/** The completion items for the cursor position, fetching label metadata as needed. */
export async function getCompletions(
  text: string,
  offset: number,
  provider: LanguageProvider,
  range?: TimeRange
): Promise<CompletionItem[]> {
  const before = text.slice(0, offset);
  const ctx = getCompletionContext(text, offset);
  const word = currentWord(before);
  switch (ctx.type) {
    case 'LABEL_NAME': {
      const names = await provider.fetchLabels(range, ctx.selector || undefined);
      return names
        .filter((n) => !ctx.otherLabels.includes(n))
        .map((n) => ({ label: n, insertText: `${n}=`, kind: 'label', replaceBefore: word.length }));
    }
    case 'LABEL_VALUE': {
      const values = await provider.fetchLabelValues(ctx.label, range, ctx.selector || undefined);
      return values.map((v) => {
        const quoted = quoteString(v);
        // inside an open quote, insert the escaped value and the closing quote
        const insertText = ctx.quoted ? quoted.slice(1) : quoted;
        const replaceBefore = ctx.quoted ? ctx.prefix.length : 0;
        return { label: v, insertText, kind: 'value' as const, replaceBefore };
      });
    }
    case 'GROUPING_LABEL': {
      const names = await provider.fetchLabels(range);
      return names.map((n) => ({ label: n, insertText: n, kind: 'label', replaceBefore: word.length }));
    }
    case 'PIPE_OPERATION':
      return PIPE_OPERATIONS.map((p) => ({ ...p, kind: 'keyword', replaceBefore: word.length }));
    case 'DURATION':
      return DURATIONS.map((d) => ({ label: d, insertText: d, kind: 'duration', replaceBefore: word.length }));
    case 'EXPRESSION_START':
      return [
        { label: '{}', insertText: '{', kind: 'snippet', detail: 'stream selector', replaceBefore: word.length },
        ...RANGE_FUNCTIONS.map((f) => ({
          label: f,
          insertText: `${f}(`,
          kind: 'function' as const,
          detail: 'range aggregation',
          replaceBefore: word.length,
        })),
        ...AGGREGATIONS.map((f) => ({
          label: f,
          insertText: `${f}`,
          kind: 'function' as const,
          detail: 'vector aggregation',
          replaceBefore: word.length,
        })),
      ];
    default:
      return [];
  }
}
