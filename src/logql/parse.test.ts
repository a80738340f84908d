import { highlightTokens } from './highlight';
import {
  escapeRegexInString,
  findSyntaxErrors,
  formatSyntaxError,
  hasParser,
  isLogsQuery,
  logsSampleSource,
  logVolumeSource,
  maskVariables,
  quoteString,
  unquoteString,
} from './parse';

const SEED_QUERIES = [
  '{job="cosyvoice3"} |= "error"',
  '{job="cosyvoice3"} |~ "timeout|fail"',
  'rate({job="cosyvoice3"}[5m])',
  'count_over_time({job="cosyvoice3"} |= "CUDA out of memory"[5m])',
  'sum by (level) (rate({job="cosyvoice3"}[5m]))',
];

describe('findSyntaxErrors', () => {
  it.each(SEED_QUERIES)('accepts the seed query %s', (q) => {
    expect(findSyntaxErrors(q)).toEqual([]);
  });

  it.each([
    ['', 0],
    ['   ', 0],
    ['{job="a"} | logfmt | level="error" | line_format "{{.msg}}"', 0],
    ['sum by (level) (count_over_time({job="a"} | json [$__auto]))', 0],
    ['rate({job="$job"}[$__interval])', 0],
    ['{job=~"${service:regex}"} |= "x"', 0],
    ['count_over_time({job="a"}[5m]) > $threshold', 0],
  ])('accepts %j (template variables masked)', (q, n) => {
    expect(findSyntaxErrors(q)).toHaveLength(n);
  });

  it.each([
    ['{job="cos', 1, 6, 'unterminated string'],
    ['{job=cosyvoice3}', 1, 6, 'label matcher'],
    ['rate({job="a"}[5m]', 1, 19, 'unexpected end of query'],
    ['{job="a"} |= error', 1, 14, 'line filter'],
    ['{job="a"}\n| json\n| = "x"', 3, 3, 'unexpected'],
  ])('reports %j at line %d column %d', (q, line, column, message) => {
    const errs = findSyntaxErrors(q);
    expect(errs.length).toBeGreaterThan(0);
    expect(errs[0].startLine).toBe(line);
    expect(errs[0].startColumn).toBe(column);
    expect(errs[0].message).toContain(message);
  });

  it('formats an error with its position', () => {
    const [err] = findSyntaxErrors('{job=cosyvoice3}');
    expect(formatSyntaxError(err)).toMatch(/^Syntax error at line 1, column 6: /);
  });

  it('merges the pieces of one mistake', () => {
    expect(findSyntaxErrors('{job="cos')).toHaveLength(1);
  });
});

describe('maskVariables', () => {
  it('keeps offsets and makes durations, numbers and strings parse', () => {
    const q = 'rate({job="$job"}[$__auto]) > $min';
    const m = maskVariables(q);
    expect(m).toHaveLength(q.length);
    expect(m).toBe('rate({job="xxxx"}[111111s]) > 1111');
  });
});

describe('isLogsQuery and hasParser', () => {
  it.each([
    ['{job="a"}', true, false],
    ['{job="a"} |= "x" | logfmt', true, true],
    ['{job="a"} | json | x="y"', true, true],
    ['rate({job="a"}[5m])', false, false],
    ['sum(count_over_time({job="a"} | pattern "<a> <b>" [1m]))', false, true],
  ])('%s: logs=%s parser=%s', (q, logs, parser) => {
    expect(isLogsQuery(q)).toBe(logs);
    expect(hasParser(q)).toBe(parser);
  });
});

describe('logVolumeSource', () => {
  it.each([
    ['{job="a"}', '{job="a"}'],
    ['{job="a"} |= "error" != "debug"', '{job="a"} |= "error" != "debug"'],
    // parsers and formats change no count: dropped
    ['{job="a"} |= "x" | logfmt | line_format "{{.msg}}"', '{job="a"} |= "x"'],
    ['{job="a"} | json', '{job="a"}'],
    // a filter after a parser depends on it: the whole query is kept
    ['{job="a"} | logfmt | level="error"', '{job="a"} | logfmt | level="error"'],
    ['{job="a"} | line_format "{{.x}}" |= "y"', '{job="a"} | line_format "{{.x}}" |= "y"'],
  ])('%s -> %s', (q, want) => {
    expect(logVolumeSource(q)).toBe(want);
  });

  it.each(['rate({job="a"}[5m])', '{job="a', ''])('has none for %j', (q) => {
    expect(logVolumeSource(q)).toBeUndefined();
  });
});

describe('logsSampleSource', () => {
  it.each([
    ['rate({job="a"}[5m])', '{job="a"}'],
    ['count_over_time({job="a"} |= "CUDA out of memory"[5m])', '{job="a"} |= "CUDA out of memory"'],
    ['sum(avg_over_time({job="a"} | logfmt | unwrap dur [5m]))', '{job="a"} | logfmt'],
    ['{job="a"}', undefined],
    ['rate({job="a"[5m])', undefined],
  ])('%s -> %s', (q, want) => {
    expect(logsSampleSource(q)).toBe(want);
  });
});

describe('strings', () => {
  it.each(['plain', 'with "quotes"', 'back\\slash', 'new\nline', '中文'])('round-trips %j', (v) => {
    expect(unquoteString(quoteString(v))).toBe(v);
  });

  it('reads raw strings', () => {
    expect(unquoteString('`a\\b`')).toBe('a\\b');
  });

  it('escapes regex metacharacters for a double-quoted string', () => {
    // the LogQL string "a\\.b" is the regex a\.b
    expect(escapeRegexInString('a.b')).toBe('a\\\\.b');
    expect(unquoteString(`"${escapeRegexInString('a.b')}"`)).toBe('a\\.b');
    expect(unquoteString(`"${escapeRegexInString('x\\"y')}"`)).toBe('x\\\\"y');
  });
});

describe('highlightTokens', () => {
  it('classifies the tokens of a query', () => {
    const q = 'sum by (level) (count_over_time({job="a"} |= "x" | json [5m]))';
    const kinds = highlightTokens(q).map((t) => [q.slice(t.from, t.to), t.kind]);
    expect(kinds).toEqual(
      expect.arrayContaining([
        ['sum', 'function'],
        ['by', 'keyword'],
        ['level', 'label'],
        ['count_over_time', 'function'],
        ['job', 'label'],
        ['"a"', 'string'],
        ['|=', 'operator'],
        ['"x"', 'string'],
        ['json', 'keyword'],
        ['5m', 'number'],
      ])
    );
  });

  it('returns tokens in order without overlaps', () => {
    const tokens = highlightTokens('{job="a"} | logfmt | level="error" | line_format "{{.msg}}"');
    for (let i = 1; i < tokens.length; i++) {
      expect(tokens[i].from).toBeGreaterThanOrEqual(tokens[i - 1].to);
    }
  });
});
