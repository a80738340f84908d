import {
  CoreApp,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceInstanceSettings,
  dateTime,
  FieldType,
  LogLevel,
  LogRowContextQueryDirection,
  LogRowModel,
  SupplementaryQueryType,
  toDataFrame,
} from '@grafana/data';
import { DataSourceWithBackend, TemplateSrv } from '@grafana/runtime';
import { lastValueFrom, of } from 'rxjs';

import { contextSelector, DataSource, interpolateValue, isJSONLine, isLogfmtLine } from './datasource';
import { LokalJsonData, LokalQuery, LokalQueryType } from './types';

const getDataStream = jest.fn();
jest.mock('@grafana/runtime', () => ({
  ...jest.requireActual('@grafana/runtime'),
  getGrafanaLiveSrv: () => ({ getDataStream }),
}));

const settings = {
  id: 1,
  uid: 'lokal-uid',
  type: 'lokal-logql-datasource',
  name: 'Lokal',
  meta: { id: 'lokal-logql-datasource' },
  jsonData: {},
  access: 'proxy',
  readOnly: false,
} as unknown as DataSourceInstanceSettings<LokalJsonData>;

/** A template service that knows $job (single) and $levels (multi). */
function templateSrv(): TemplateSrv {
  const vars: Record<string, { value: string | string[]; multi?: boolean }> = {
    job: { value: 'cosyvoice3' },
    levels: { value: ['error', 'warn.x'], multi: true },
  };
  return {
    replace: (target?: string, _scoped?: unknown, format?: unknown) =>
      (target ?? '').replace(/\$(\w+)/g, (m, name: string) => {
        const v = vars[name];
        if (!v) {
          return m;
        }
        return typeof format === 'function' ? format(v.value, { multi: v.multi }) : String(v.value);
      }),
    getVariables: () => [],
    containsTemplate: () => false,
    updateTimeRange: () => {},
  } as unknown as TemplateSrv;
}

function makeDS() {
  return new DataSource(settings, templateSrv());
}

const q = (expr: string, extra: Partial<LokalQuery> = {}): LokalQuery => ({ refId: 'A', expr, ...extra });

describe('query model defaults', () => {
  it('defaults to range, and to instant for alert rules', () => {
    const ds = makeDS();
    expect(ds.getDefaultQuery(CoreApp.Explore)).toEqual({ expr: '', queryType: 'range' });
    expect(ds.getDefaultQuery(CoreApp.UnifiedAlerting)).toEqual({ expr: '', queryType: 'instant' });
  });

  it.each([
    ['', false],
    ['   ', false],
    ['{job="a"}', true],
  ])('filterQuery(%j) = %s', (expr, want) => {
    expect(makeDS().filterQuery(q(expr))).toBe(want);
  });

  it('does not run hidden queries', () => {
    expect(makeDS().filterQuery(q('{job="a"}', { hide: true }))).toBe(false);
  });
});

describe('applyTemplateVariables', () => {
  it('interpolates expr, legend and step; multi values become an escaped alternation', () => {
    const out = makeDS().applyTemplateVariables(
      q('{job="$job", level=~"$levels"} |= "x"', { legendFormat: '{{level}} $job', step: '$job' }),
      {}
    );
    expect(out.expr).toBe('{job="cosyvoice3", level=~"(error|warn\\\\.x)"} |= "x"');
    expect(out.legendFormat).toBe('{{level}} cosyvoice3');
  });

  it('leaves $__auto and $__interval for the backend', () => {
    expect(makeDS().applyTemplateVariables(q('rate({job="a"}[$__auto])'), {}).expr).toBe('rate({job="a"}[$__auto])');
  });

  it('applies ad hoc filters as label filters', () => {
    const out = makeDS().applyTemplateVariables(q('{job="a"}'), {}, [
      { key: 'level', operator: '=', value: 'error' },
      { key: 'instance', operator: '!=', value: 'h1' },
    ]);
    expect(out.expr).toBe('{job="a", level="error", instance!="h1"}');
  });

  it('formats values like Loki', () => {
    expect(interpolateValue('a.b')).toBe('a.b');
    expect(interpolateValue('a.b', { multi: true })).toBe('a\\\\.b');
    expect(interpolateValue(['x'])).toBe('x');
  });
});

describe('log volume (supplementary queries)', () => {
  const ds = makeDS();

  it('supports log volume and logs sample', () => {
    expect(ds.getSupportedSupplementaryQueryTypes()).toEqual([
      SupplementaryQueryType.LogsVolume,
      SupplementaryQueryType.LogsSample,
    ]);
  });

  it('samples the lines behind a metric query', () => {
    const sample = ds.getSupplementaryQuery(
      { type: SupplementaryQueryType.LogsSample, limit: 50 },
      q('sum by (level) (avg_over_time({job="a"} |= "x" | logfmt | unwrap dur [5m]))')
    );
    expect(sample).toMatchObject({
      refId: 'log-sample-A',
      expr: '{job="a"} |= "x" | logfmt',
      maxLines: 50,
      direction: 'backward',
      supportingQueryType: 'logsSample',
    });
    expect(ds.getSupplementaryQuery({ type: SupplementaryQueryType.LogsSample }, q('{job="a"}'))).toBeUndefined();
  });

  it('counts the selector and filters by level at an automatic step', () => {
    const vol = ds.getSupplementaryQuery(
      { type: SupplementaryQueryType.LogsVolume },
      q('{job="a"} |= "error" | logfmt')
    );
    expect(vol).toMatchObject({
      refId: 'log-volume-A',
      expr: 'sum by (level) (count_over_time({job="a"} |= "error" [$__auto]))',
      queryType: 'range',
      supportingQueryType: 'logsVolume',
    });
  });

  it('has none for metric, empty or broken queries', () => {
    for (const expr of ['rate({job="a"}[5m])', '', '{job=']) {
      expect(ds.getSupplementaryQuery({ type: SupplementaryQueryType.LogsVolume }, q(expr))).toBeUndefined();
    }
  });

  it('builds a request of volume queries only', () => {
    const request = {
      targets: [q('{job="a"}'), q('rate({job="a"}[5m])', { refId: 'B' })],
      range: { from: dateTime(0), to: dateTime(1000), raw: { from: 'now-1h', to: 'now' } },
    } as unknown as DataQueryRequest<LokalQuery>;
    const out = ds.getSupplementaryRequest(SupplementaryQueryType.LogsVolume, request);
    expect(out?.targets.map((t) => t.refId)).toEqual(['log-volume-A']);
    const sample = ds.getSupplementaryRequest(SupplementaryQueryType.LogsSample, request);
    expect(sample?.targets.map((t) => t.refId)).toEqual(['log-sample-B']);
  });
});

describe('toggleable filters and query modification', () => {
  const ds = makeDS();

  it('filters for a value, then toggles it off', () => {
    const on = ds.toggleQueryFilter(q('{job="a"}'), { type: 'FILTER_FOR', options: { key: 'level', value: 'error' } });
    expect(on.expr).toBe('{job="a", level="error"}');
    expect(ds.queryHasFilter(on, { key: 'level', value: 'error' })).toBe(true);
    const off = ds.toggleQueryFilter(on, { type: 'FILTER_FOR', options: { key: 'level', value: 'error' } });
    expect(off.expr).toBe('{job="a"}');
    expect(ds.queryHasFilter(off, { key: 'level', value: 'error' })).toBe(false);
  });

  it('filters out a value, replacing a filter for it', () => {
    const out = ds.toggleQueryFilter(q('{job="a", level="error"}'), {
      type: 'FILTER_OUT',
      options: { key: 'level', value: 'error' },
    });
    expect(out.expr).toBe('{job="a", level!="error"}');
  });

  it.each([
    ['ADD_FILTER', { key: 'mode', value: 'vc' }, '{job="a"} | logfmt', '{job="a"} | logfmt | mode="vc"'],
    [
      'ADD_FILTER_OUT',
      { key: 'mode', value: 'vc' },
      '{job="a"} | logfmt | mode="vc"',
      '{job="a"} | logfmt | mode!="vc"',
    ],
    ['ADD_STRING_FILTER', { value: 'OOM' }, '{job="a"} | json', '{job="a"} |= "OOM" | json'],
    ['ADD_STRING_FILTER_OUT', { value: 'debug' }, '{job="a"}', '{job="a"} != "debug"'],
    ['ADD_LOGFMT_PARSER', {}, '{job="a"}', '{job="a"} | logfmt'],
    ['ADD_JSON_PARSER', {}, '{job="a"}', '{job="a"} | json'],
    ['UNKNOWN', {}, '{job="a"}', '{job="a"}'],
  ])('%s', (type, options, expr, want) => {
    expect(ds.modifyQuery(q(expr), { type, options }).expr).toBe(want);
  });

  it('lists what it supports', () => {
    expect(ds.getSupportedQueryModifications()).toEqual(
      expect.arrayContaining(['ADD_FILTER', 'ADD_FILTER_OUT', 'ADD_STRING_FILTER', 'ADD_STRING_FILTER_OUT'])
    );
  });
});

describe('query hints', () => {
  const ds = makeDS();
  const frame = (lines: string[]) =>
    toDataFrame({
      fields: [
        { name: 'timestamp', type: FieldType.time, values: lines.map((_, i) => i) },
        { name: 'body', type: FieldType.string, values: lines },
      ],
    });

  it('suggests json for JSON lines and logfmt for key=value lines', () => {
    const json = ds.getQueryHints(q('{job="a"}'), [frame(['{"level":"info","msg":"x"}', '{"a":1}'])]);
    expect(json.map((h) => h.type)).toEqual(['ADD_JSON_PARSER']);
    const logfmt = ds.getQueryHints(q('{job="a"}'), [frame(['ts=1 level=info msg="tts done"', 'a=1 b=2'])]);
    expect(logfmt.map((h) => h.type)).toEqual(['ADD_LOGFMT_PARSER']);
  });

  it('is silent for parsed, metric or plain queries', () => {
    expect(ds.getQueryHints(q('{job="a"} | json'), [frame(['{"a":1}'])])).toEqual([]);
    expect(ds.getQueryHints(q('rate({job="a"}[5m])'), [frame(['{"a":1}'])])).toEqual([]);
    expect(ds.getQueryHints(q('{job="a"}'), [frame(['plain text line', 'another'])])).toEqual([]);
  });

  it.each([
    ['{"a":1}', true, false],
    ['[1,2]', false, false],
    ['{not json}', false, false],
    ['ts=1 level=info', false, true],
    ['[INFO] x=1', false, false],
    ['msg="a b" c=d', false, true],
  ])('%s: json=%s logfmt=%s', (line, json, logfmt) => {
    expect(isJSONLine(line)).toBe(json);
    expect(isLogfmtLine(line)).toBe(logfmt);
  });
});

describe('logs context', () => {
  const row = {
    uid: 'A_1',
    rowId: 'id-2',
    timeEpochMs: 1_700_000_000_000,
    labels: { job: 'cosyvoice3', instance: 'h1', filename: '/logs/cosyvoice.log', level: 'error', mode: 'vc' },
    logLevel: LogLevel.error,
  } as unknown as LogRowModel;

  it('selects the source file, not the level', () => {
    expect(contextSelector(row.labels)).toBe('{job="cosyvoice3", instance="h1", filename="/logs/cosyvoice.log"}');
    expect(contextSelector({ app: 'x', level: 'info' })).toBe('{app="x"}');
    expect(() => contextSelector({})).toThrow(/no labels/);
  });

  it('builds backward and forward queries', async () => {
    const ds = makeDS();
    const back = await ds.getLogRowContextQuery(row, { direction: LogRowContextQueryDirection.Backward, limit: 25 });
    expect(back).toMatchObject({ direction: 'backward', maxLines: 25, queryType: 'range' });
    const fwd = await ds.getLogRowContextQuery(row, { direction: LogRowContextQueryDirection.Forward });
    expect(fwd).toMatchObject({ direction: 'forward', maxLines: 10 });
  });

  it('queries around the row and drops the row itself', async () => {
    const ds = makeDS();
    const frame = toDataFrame({
      fields: [
        { name: 'timestamp', type: FieldType.time, values: [3, 2, 1] },
        { name: 'body', type: FieldType.string, values: ['c', 'b', 'a'] },
        { name: 'id', type: FieldType.string, values: ['id-3', 'id-2', 'id-1'] },
      ],
    });
    const spy = jest
      .spyOn(DataSourceWithBackend.prototype, 'query')
      .mockReturnValue(of({ data: [frame] } as DataQueryResponse));
    const rsp = await ds.getLogRowContext(row, { direction: LogRowContextQueryDirection.Backward, limit: 5 });
    const request = spy.mock.calls[0][0] as DataQueryRequest<LokalQuery>;
    expect(request.targets[0].expr).toContain('filename="/logs/cosyvoice.log"');
    expect(request.range.to.valueOf()).toBe(row.timeEpochMs + 1);
    expect(request.range.from.valueOf()).toBe(row.timeEpochMs - 2 * 60 * 60 * 1000);
    expect(rsp.data[0].length).toBe(2);
    expect(rsp.data[0].fields[2].values).toEqual(['id-3', 'id-1']);
    spy.mockRestore();
  });
});

describe('live tail', () => {
  it('sends stream queries through Grafana Live with the query as channel data', async () => {
    getDataStream.mockReturnValue(of({ data: [], key: 'x' }));
    const ds = makeDS();
    const request = {
      requestId: 'r1',
      targets: [q('{job="$job"}', { queryType: LokalQueryType.Stream })],
      scopedVars: {},
      range: { from: dateTime(0), to: dateTime(1000), raw: { from: 'now-1h', to: 'now' } },
    } as unknown as DataQueryRequest<LokalQuery>;
    await lastValueFrom(ds.query(request));
    const opts = getDataStream.mock.calls[0][0];
    expect(opts.addr.stream).toBe('lokal-uid');
    expect(opts.addr.path).toMatch(/^tail\/A-/);
    expect(opts.addr.data).toMatchObject({ expr: '{job="cosyvoice3"}', queryType: 'stream' });
    expect(opts.buffer).toMatchObject({ maxLength: 1000 });
  });
});

describe('variables and ad hoc filters', () => {
  it('answers label_names() and label_values()', async () => {
    const ds = makeDS();
    const spy = jest.spyOn(ds, 'getResource').mockImplementation(async (path: string) => {
      if (path === 'labels') {
        return { status: 'success', data: ['level', 'job'] };
      }
      return { status: 'success', data: ['cosyvoice3'] };
    });
    expect(await ds.metricFindQuery('label_names()')).toEqual([{ text: 'job' }, { text: 'level' }]);
    expect(await ds.metricFindQuery('label_values({level="error"}, job)')).toEqual([{ text: 'cosyvoice3' }]);
    expect(spy).toHaveBeenLastCalledWith('label/job/values', { query: '{level="error"}' });
    await expect(ds.metricFindQuery('nonsense')).rejects.toThrow(/label_names\(\) or label_values/);
    expect(await ds.getTagKeys()).toEqual([{ text: 'job' }, { text: 'level' }]);
  });
});
