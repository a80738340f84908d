import {
  addLabelFilter,
  addLineFilter,
  addParser,
  queryHasFilter,
  removeLabelFilter,
  selectorMatchers,
  toggleLabelFilter,
} from './modify';
import { findSyntaxErrors, hasParser } from './parse';

describe('addLabelFilter', () => {
  it.each([
    // no parser: into the selector, where the index helps
    ['{job="a"}', 'level', 'error', '=', '{job="a", level="error"}'],
    ['{job="a"} |= "x"', 'level', 'error', '!=', '{job="a", level!="error"} |= "x"'],
    // a parser: after the pipeline, where parsed labels exist
    ['{job="a"} | logfmt', 'mode', 'vc', '=', '{job="a"} | logfmt | mode="vc"'],
    ['{job="a"} | json | line_format "{{.msg}}"', 'x', 'y', '=', '{job="a"} | json | line_format "{{.msg}}" | x="y"'],
    // metric queries: every log expression, before the range
    ['rate({job="a"}[5m])', 'level', 'error', '=', 'rate({job="a", level="error"}[5m])'],
    [
      'sum(count_over_time({job="a"} | json [5m]))',
      'x',
      'y',
      '=',
      'sum(count_over_time({job="a"} | json | x="y" [5m]))',
    ],
    [
      'rate({job="a"}[5m]) / rate({job="b"}[5m])',
      'i',
      '1',
      '=',
      'rate({job="a", i="1"}[5m]) / rate({job="b", i="1"}[5m])',
    ],
    // values are quoted and escaped
    ['{job="a"}', 'path', 'C:\\x "y"', '=', '{job="a", path="C:\\\\x \\"y\\""}'],
    // already there: unchanged
    ['{job="a", level="error"}', 'level', 'error', '=', '{job="a", level="error"}'],
  ])('%s + %s%s%s', (expr, key, value, op, want) => {
    const got = addLabelFilter(expr, key, value, op as '=' | '!=');
    expect(got).toBe(want);
    expect(findSyntaxErrors(got)).toEqual([]);
  });

  it('leaves an unparsable query alone', () => {
    expect(addLabelFilter('{job="a', 'x', 'y')).toBe('{job="a');
  });
});

describe('removeLabelFilter and queryHasFilter', () => {
  it.each([
    ['{job="a", level="error"}', 'level', 'error', '=', '{job="a"}'],
    ['{level="error", job="a"}', 'level', 'error', '=', '{job="a"}'],
    ['{job="a"} | logfmt | mode="vc"', 'mode', 'vc', '=', '{job="a"} | logfmt'],
    ['{job="a"} | logfmt | mode="vc" | line_format "x"', 'mode', 'vc', '=', '{job="a"} | logfmt | line_format "x"'],
    // the last matcher of a selector stays: a query needs one
    ['{job="a"}', 'job', 'a', '=', '{job="a"}'],
    // another op or value: untouched
    ['{job="a", level!="error"}', 'level', 'error', '=', '{job="a", level!="error"}'],
  ])('%s - %s%s%s', (expr, key, value, op, want) => {
    expect(removeLabelFilter(expr, key, value, op as '=' | '!=')).toBe(want);
  });

  it.each([
    ['{job="a", level="error"}', 'level', 'error', '=', true],
    ['{job="a"} | json | level="error"', 'level', 'error', '=', true],
    ['{job="a"} | json | level="error"', 'level', 'error', '!=', false],
    ['{job="a"} |= "level=error"', 'level', 'error', '=', false],
    ['rate({job="a", level="error"}[5m])', 'level', 'error', '=', true],
  ])('%s has %s%s%s: %s', (expr, key, value, op, want) => {
    expect(queryHasFilter(expr, key, value, op as '=' | '!=')).toBe(want);
  });
});

describe('toggleLabelFilter', () => {
  it('adds, then removes on a second toggle', () => {
    const once = toggleLabelFilter('{job="a"}', 'level', 'error', '=');
    expect(once).toBe('{job="a", level="error"}');
    expect(toggleLabelFilter(once, 'level', 'error', '=')).toBe('{job="a"}');
  });

  it('replaces the opposite filter', () => {
    expect(toggleLabelFilter('{job="a", level="error"}', 'level', 'error', '!=')).toBe('{job="a", level!="error"}');
    expect(toggleLabelFilter('{job="a"} | json | x!="1"', 'x', '1', '=')).toBe('{job="a"} | json | x="1"');
  });
});

describe('addLineFilter', () => {
  it.each([
    ['{job="a"}', 'error', '|=', '{job="a"} |= "error"'],
    ['{job="a"} |= "x" | logfmt', 'y', '!=', '{job="a"} |= "x" != "y" | logfmt'],
    ['count_over_time({job="a"}[5m])', 'OOM', '|=', 'count_over_time({job="a"} |= "OOM"[5m])'],
  ])('%s + %s %s', (expr, value, op, want) => {
    const got = addLineFilter(expr, value, op as '|=' | '!=');
    expect(got).toBe(want);
    expect(findSyntaxErrors(got)).toEqual([]);
  });
});

describe('addParser', () => {
  it.each([
    ['{job="a"}', 'logfmt', '{job="a"} | logfmt'],
    ['{job="a"} |= "x"', 'json', '{job="a"} |= "x" | json'],
    ['{job="a"} | json', 'logfmt', '{job="a"} | json'],
    ['rate({job="a"}[5m])', 'logfmt', 'rate({job="a"} | logfmt[5m])'],
  ])('%s + %s', (expr, parser, want) => {
    expect(addParser(expr, parser as 'json' | 'logfmt')).toBe(want);
  });
});

describe('selectorMatchers', () => {
  it('lists the first selector', () => {
    expect(selectorMatchers('{job="a", level=~"err.*"} | json | x="y"')).toEqual([
      { name: 'job', op: '=', value: 'a' },
      { name: 'level', op: '=~', value: 'err.*' },
    ]);
  });
});

describe('every edit of a valid query stays valid', () => {
  const queries = [
    '{job="cosyvoice3"} |= "error"',
    '{job="cosyvoice3"} |~ "timeout|fail"',
    'rate({job="cosyvoice3"}[5m])',
    'count_over_time({job="cosyvoice3"} |= "CUDA out of memory"[5m])',
    'sum by (level) (rate({job="cosyvoice3"}[5m]))',
    '{job="a", instance=~"h.*"} | logfmt | level="error" | line_format "{{.msg}}"',
    'sum(count_over_time({job="a"} | json | status >= 500 [1m])) / sum(count_over_time({job="a"}[1m]))',
    'topk(3, sum by (filename) (bytes_over_time({job="a"}[1h])))',
  ];
  const edits: Array<[string, (q: string) => string]> = [
    ['add level="x y"', (q) => addLabelFilter(q, 'level', 'x y', '=')],
    ['add level!="x"', (q) => addLabelFilter(q, 'level', 'x', '!=')],
    ['toggle for', (q) => toggleLabelFilter(q, 'mode', 'vc', '=')],
    ['toggle out', (q) => toggleLabelFilter(q, 'mode', 'vc', '!=')],
    ['line filter', (q) => addLineFilter(q, 'a "quoted" \\ value', '|=')],
    ['line filter out', (q) => addLineFilter(q, 'debug', '!=')],
    ['json', (q) => addParser(q, 'json')],
    ['logfmt', (q) => addParser(q, 'logfmt')],
  ];
  for (const q of queries) {
    it.each(edits)(`${q}: %s`, (name, edit) => {
      expect(findSyntaxErrors(q)).toEqual([]);
      const out = edit(q);
      // a parser is added only where there is none
      if (!(name === 'json' || name === 'logfmt') || !hasParser(q)) {
        expect(out).not.toBe(q);
      }
      expect(findSyntaxErrors(out)).toEqual([]);
    });

    it(`${q}: toggling a filter twice restores it`, () => {
      expect(toggleLabelFilter(toggleLabelFilter(q, 'mode', 'vc', '='), 'mode', 'vc', '=')).toBe(q);
    });
  }
});
