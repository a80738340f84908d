import { DataFrame, toDataFrame } from '@grafana/data';

import { backendErrors, ERROR_RANGE_KEY, formatBackendError } from './backendErrors';

function errorFrame(expr: string, message: string, start: number[], end: number[], refId = 'A'): DataFrame {
  const pos = ([offset, line, col]: number[]) => ({ offset, line, col });
  return toDataFrame({
    refId,
    fields: [],
    meta: { custom: { [ERROR_RANGE_KEY]: { expr, message, start: pos(start), end: pos(end) } } },
  });
}

describe('backendErrors', () => {
  const validation = 'sum(sum_over_time({job="x"}[5m]))';
  const cases: Array<{
    name: string;
    expr: string;
    frames: DataFrame[];
    want: Array<{
      from: number;
      to: number;
      startLine: number;
      startColumn: number;
      endColumn: number;
      message: string;
    }>;
  }> = [
    {
      name: 'a validation error spans its node, without Loki\'s "parse error :" prefix',
      expr: validation,
      frames: [
        errorFrame(
          validation,
          'parse error : invalid aggregation sum_over_time without unwrap',
          [4, 1, 5],
          [32, 1, 33]
        ),
      ],
      want: [
        {
          from: 4,
          to: 32,
          startLine: 1,
          startColumn: 5,
          endColumn: 33,
          message: 'invalid aggregation sum_over_time without unwrap',
        },
      ],
    },
    {
      name: 'a grammar error on a later line',
      expr: '{job="a"}\n  |= ',
      frames: [
        errorFrame(
          '{job="a"}\n  |= ',
          'parse error at line 2, col 6: syntax error: unexpected $end, expecting STRING or IP',
          [15, 2, 6],
          [15, 2, 6]
        ),
      ],
      want: [
        {
          from: 15,
          to: 15,
          startLine: 2,
          startColumn: 6,
          endColumn: 6,
          message: 'syntax error: unexpected $end, expecting STRING or IP',
        },
      ],
    },
    {
      // the backend counts characters; the editor counts UTF-16 units, two for an emoji
      name: 'columns past an astral character',
      expr: '{job="🚀"} |~ "("',
      frames: [
        errorFrame(
          '{job="🚀"} |~ "("',
          'parse error at line 1, col 14: invalid regular expression',
          [16, 1, 14],
          [19, 1, 17]
        ),
      ],
      want: [{ from: 14, to: 17, startLine: 1, startColumn: 15, endColumn: 18, message: 'invalid regular expression' }],
    },
    {
      name: 'nothing once the text differs from what the backend parsed',
      expr: validation + ' ',
      frames: [errorFrame(validation, 'parse error : x', [4, 1, 5], [32, 1, 33])],
      want: [],
    },
    {
      name: "nothing from another query's frame",
      expr: validation,
      frames: [errorFrame(validation, 'parse error : x', [4, 1, 5], [32, 1, 33], 'B')],
      want: [],
    },
    {
      name: 'nothing for a position outside the text or a malformed meta',
      expr: '{a="b"}',
      frames: [
        errorFrame('{a="b"}', 'parse error : x', [0, 3, 1], [1, 3, 2]),
        toDataFrame({ refId: 'A', fields: [], meta: { custom: { [ERROR_RANGE_KEY]: { expr: '{a="b"}' } } } }),
        toDataFrame({ refId: 'A', fields: [] }),
      ],
      want: [],
    },
  ];
  it.each(cases)('$name', ({ expr, frames, want }) => {
    expect(backendErrors(expr, frames, 'A')).toEqual(want.map((w) => expect.objectContaining(w)));
  });

  it('handles no frames', () => {
    expect(backendErrors('{a="b"}', undefined, 'A')).toEqual([]);
  });

  it('words the error with its position', () => {
    const [err] = backendErrors(validation, [errorFrame(validation, 'parse error : bad', [4, 1, 5], [32, 1, 33])], 'A');
    expect(formatBackendError(err)).toBe('Query error at line 1, column 5: bad');
  });
});
