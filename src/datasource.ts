import {
  AdHocVariableFilter,
  CoreApp,
  DataFrame,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceGetTagKeysOptions,
  DataSourceGetTagValuesOptions,
  DataSourceInstanceSettings,
  DataSourceWithLogsContextSupport,
  DataSourceWithQueryModificationSupport,
  DataSourceWithSupplementaryQueriesSupport,
  DataSourceWithToggleableQueryFiltersSupport,
  dateTime,
  FieldType,
  LegacyMetricFindQueryOptions,
  LiveChannelScope,
  LogRowContextOptions,
  LogRowContextQueryDirection,
  LogRowModel,
  MetricFindValue,
  QueryFilterOptions,
  QueryFixAction,
  QueryHint,
  ScopedVars,
  StreamingFrameAction,
  SupplementaryQueryOptions,
  SupplementaryQueryType,
  ToggleFilterAction,
} from '@grafana/data';
import { DataSourceWithBackend, getGrafanaLiveSrv, getTemplateSrv, TemplateSrv } from '@grafana/runtime';
import { lastValueFrom, merge, Observable } from 'rxjs';
import { map } from 'rxjs/operators';

import { LanguageProvider } from './languageProvider';
import {
  addLabelFilter,
  addLineFilter,
  addParser,
  queryHasFilter as exprHasFilter,
  removeLabelFilter,
  toggleLabelFilter,
} from './logql/modify';
import {
  escapeRegexInString,
  hasParser,
  isLogsQuery,
  logsSampleSource,
  logVolumeSource,
  quoteString,
} from './logql/parse';
import { LokalJsonData, LokalQuery, LokalQueryDirection, LokalQueryType } from './types';

/** Marks supplementary (log volume) queries, as Grafana's Loki datasource does. */
export const LOGS_VOLUME_SUPPORTING_TYPE = 'logsVolume';
export const LOGS_SAMPLE_SUPPORTING_TYPE = 'logsSample';
/** Lines in a logs sample when Explore does not say. */
export const DEFAULT_SAMPLE_LINES = 100;

/** How far around a row logs context looks when Grafana does not say. */
export const DEFAULT_CONTEXT_WINDOW_MS = 2 * 60 * 60 * 1000;
export const DEFAULT_CONTEXT_LIMIT = 10;
/** Lines a live tail keeps on screen when the query sets no line limit (Loki's default limit). */
export const DEFAULT_TAIL_LINES = 1000;

/**
 * Labels that name a line's source file. Context keeps to them so that the
 * stream split by level does not hide a traceback's neighbours.
 */
const CONTEXT_LABELS = ['job', 'instance', 'filename'];

/** Query modifications Explore may ask for, plus our parser hints' fixes. */
export const QUERY_MODIFICATIONS = [
  'ADD_FILTER',
  'ADD_FILTER_OUT',
  'ADD_STRING_FILTER',
  'ADD_STRING_FILTER_OUT',
  'ADD_LOGFMT_PARSER',
  'ADD_JSON_PARSER',
];

// Lines looked at when deciding whether unparsed lines are JSON or logfmt.
const HINT_SAMPLE_LINES = 25;

export class DataSource
  extends DataSourceWithBackend<LokalQuery, LokalJsonData>
  implements
    DataSourceWithSupplementaryQueriesSupport<LokalQuery>,
    DataSourceWithLogsContextSupport<LokalQuery>,
    DataSourceWithToggleableQueryFiltersSupport<LokalQuery>,
    DataSourceWithQueryModificationSupport<LokalQuery>
{
  languageProvider: LanguageProvider;

  constructor(
    instanceSettings: DataSourceInstanceSettings<LokalJsonData>,
    private readonly templateSrv: TemplateSrv = getTemplateSrv()
  ) {
    super(instanceSettings);
    this.languageProvider = new LanguageProvider((path, params) => this.getResource(path, params));
  }

  getDefaultQuery(app: CoreApp): Partial<LokalQuery> {
    // Alert rules need a metric value now, not a series over the range.
    const alerting = app === CoreApp.UnifiedAlerting || app === CoreApp.CloudAlerting;
    return { expr: '', queryType: alerting ? LokalQueryType.Instant : LokalQueryType.Range };
  }

  filterQuery(query: LokalQuery): boolean {
    return !query.hide && (query.expr ?? '').trim() !== '';
  }

  applyTemplateVariables(query: LokalQuery, scopedVars: ScopedVars, filters?: AdHocVariableFilter[]): LokalQuery {
    let expr = this.templateSrv.replace(query.expr ?? '', scopedVars, interpolateValue);
    for (const f of filters ?? []) {
      if (f.operator === '=' || f.operator === '!=') {
        expr = addLabelFilter(expr, f.key, f.value, f.operator);
      }
    }
    return {
      ...query,
      expr,
      legendFormat: query.legendFormat ? this.templateSrv.replace(query.legendFormat, scopedVars) : query.legendFormat,
      step: query.step ? this.templateSrv.replace(query.step, scopedVars) : query.step,
    };
  }

  interpolateVariablesInQueries(
    queries: LokalQuery[],
    scopedVars: ScopedVars,
    filters?: AdHocVariableFilter[]
  ): LokalQuery[] {
    return queries.map((q) => ({ ...this.applyTemplateVariables(q, scopedVars, filters), datasource: this.getRef() }));
  }

  query(request: DataQueryRequest<LokalQuery>): Observable<DataQueryResponse> {
    const live = request.targets.filter(
      (t) => !t.hide && (t.queryType === LokalQueryType.Stream || (request.liveStreaming && isLogsQuery(t.expr ?? '')))
    );
    if (live.length === 0) {
      return super.query(request);
    }
    // Live tail runs through Grafana Live: the backend's RunStream pushes new
    // lines matching the query as they are ingested.
    const streams = live.map((t) => this.tail(t, request));
    const rest = request.targets.filter((t) => !live.includes(t));
    if (rest.length > 0) {
      streams.push(super.query({ ...request, targets: rest }));
    }
    return merge(...streams);
  }

  private tail(target: LokalQuery, request: DataQueryRequest<LokalQuery>): Observable<DataQueryResponse> {
    const query = { ...this.applyTemplateVariables(target, request.scopedVars), queryType: LokalQueryType.Stream };
    return getGrafanaLiveSrv()
      .getDataStream({
        key: `${request.requestId}-${target.refId}`,
        // keep the newest lines, as many as the query's line limit
        buffer: { maxLength: target.maxLines ?? DEFAULT_TAIL_LINES, action: StreamingFrameAction.Append },
        addr: {
          scope: LiveChannelScope.DataSource,
          stream: this.uid,
          path: `tail/${target.refId}-${hashString(query.expr)}`,
          data: { ...query, datasource: this.getRef() },
        },
      })
      .pipe(map((rsp) => ({ ...rsp, key: `${target.refId}` })));
  }

  // ---- label metadata: template variables and ad hoc filters ----

  async metricFindQuery(
    query: string | { query?: string },
    options?: LegacyMetricFindQueryOptions
  ): Promise<MetricFindValue[]> {
    const text = this.templateSrv.replace(
      typeof query === 'string' ? query : (query?.query ?? ''),
      options?.scopedVars
    );
    const range = options?.range;
    const names = /^\s*label_names\(\s*\)\s*$/.exec(text);
    if (names) {
      return (await this.languageProvider.fetchLabels(range)).map((t) => ({ text: t }));
    }
    const values = /^\s*label_values\(\s*(?:(\{.*\})\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/.exec(text);
    if (values) {
      const [, selector, label] = values;
      return (await this.languageProvider.fetchLabelValues(label, range, selector)).map((t) => ({ text: t }));
    }
    throw new Error(
      `Unsupported variable query ${JSON.stringify(text)}: use label_names() or label_values([{selector},] label)`
    );
  }

  async getTagKeys(options?: DataSourceGetTagKeysOptions<LokalQuery>): Promise<MetricFindValue[]> {
    return (await this.languageProvider.fetchLabels(options?.timeRange)).map((t) => ({ text: t }));
  }

  async getTagValues(options: DataSourceGetTagValuesOptions<LokalQuery>): Promise<MetricFindValue[]> {
    return (await this.languageProvider.fetchLabelValues(options.key, options.timeRange)).map((t) => ({ text: t }));
  }

  // ---- Explore: log volume ----

  getSupportedSupplementaryQueryTypes(): SupplementaryQueryType[] {
    return [SupplementaryQueryType.LogsVolume, SupplementaryQueryType.LogsSample];
  }

  getSupplementaryQuery(options: SupplementaryQueryOptions, query: LokalQuery): LokalQuery | undefined {
    if (query.hide) {
      return undefined;
    }
    if (options.type === SupplementaryQueryType.LogsSample) {
      // the lines behind a metric query's graph
      const sample = logsSampleSource(query.expr ?? '');
      if (!sample) {
        return undefined;
      }
      return {
        ...query,
        refId: `log-sample-${query.refId}`,
        expr: sample,
        queryType: LokalQueryType.Range,
        maxLines: 'limit' in options && options.limit ? options.limit : DEFAULT_SAMPLE_LINES,
        direction: LokalQueryDirection.Backward,
        legendFormat: undefined,
        supportingQueryType: LOGS_SAMPLE_SUPPORTING_TYPE,
      };
    }
    if (options.type !== SupplementaryQueryType.LogsVolume) {
      return undefined;
    }
    const source = logVolumeSource(query.expr ?? '');
    if (!source) {
      return undefined;
    }
    const field = 'field' in options && options.field ? options.field : 'level';
    return {
      ...query,
      refId: `log-volume-${query.refId}`,
      // $__auto lets the backend choose a bucket for the range (never [1s] over hours)
      expr: `sum by (${field}) (count_over_time(${source} [$__auto]))`,
      queryType: LokalQueryType.Range,
      legendFormat: `{{ ${field} }}`,
      supportingQueryType: LOGS_VOLUME_SUPPORTING_TYPE,
      maxLines: undefined,
      direction: undefined,
    };
  }

  getSupplementaryRequest(
    type: SupplementaryQueryType,
    request: DataQueryRequest<LokalQuery>,
    options?: SupplementaryQueryOptions
  ): DataQueryRequest<LokalQuery> | undefined {
    if (type !== SupplementaryQueryType.LogsVolume && type !== SupplementaryQueryType.LogsSample) {
      return undefined;
    }
    const targets = request.targets
      .map((t) => this.getSupplementaryQuery(options ?? { type }, t))
      .filter((t): t is LokalQuery => t !== undefined);
    if (targets.length === 0) {
      return undefined;
    }
    return { ...request, targets, hideFromInspector: true };
  }

  // ---- Explore: logs context ----

  async getLogRowContextQuery(
    row: LogRowModel,
    options?: LogRowContextOptions,
    origQuery?: LokalQuery
  ): Promise<LokalQuery> {
    const direction =
      options?.direction === LogRowContextQueryDirection.Forward
        ? LokalQueryDirection.Forward
        : LokalQueryDirection.Backward;
    return {
      refId: `log-context-${direction}${origQuery ? `-${origQuery.refId}` : ''}`,
      expr: contextSelector(row.labels ?? {}),
      queryType: LokalQueryType.Range,
      maxLines: options?.limit ?? DEFAULT_CONTEXT_LIMIT,
      direction,
    };
  }

  async getLogRowContext(
    row: LogRowModel,
    options?: LogRowContextOptions,
    origQuery?: LokalQuery
  ): Promise<DataQueryResponse> {
    const query = await this.getLogRowContextQuery(row, options, origQuery);
    const windowMs = options?.timeWindowMs ?? DEFAULT_CONTEXT_WINDOW_MS;
    const t = row.timeEpochMs;
    // Both windows include the row's own millisecond, so neighbours with the
    // same timestamp are not lost; the row itself is removed below.
    const [from, to] = query.direction === LokalQueryDirection.Forward ? [t, t + windowMs] : [t - windowMs, t + 1];
    const range = { from: dateTime(from), to: dateTime(to), raw: { from: dateTime(from), to: dateTime(to) } };
    const request: DataQueryRequest<LokalQuery> = {
      requestId: `lokal-context-${row.uid}-${query.direction}`,
      app: CoreApp.Explore,
      targets: [query],
      range,
      interval: '1s',
      intervalMs: 1000,
      scopedVars: options?.scopedVars ?? {},
      timezone: 'UTC',
      startTime: Date.now(),
      hideFromInspector: true,
    };
    const rsp = await lastValueFrom(super.query(request));
    const rowId = row.rowId;
    return { ...rsp, data: rowId ? rsp.data.map((f: DataFrame) => withoutRow(f, rowId)) : rsp.data };
  }

  // ---- Explore: filter for / filter out value ----

  toggleQueryFilter(query: LokalQuery, filter: ToggleFilterAction): LokalQuery {
    const { key, value } = filter.options;
    if (!key || value === undefined) {
      return query;
    }
    const op = filter.type === 'FILTER_OUT' ? '!=' : '=';
    return { ...query, expr: toggleLabelFilter(query.expr ?? '', key, value, op) };
  }

  queryHasFilter(query: LokalQuery, filter: QueryFilterOptions): boolean {
    const { key, value } = filter;
    return !!key && value !== undefined && exprHasFilter(query.expr ?? '', key, value, '=');
  }

  getSupportedQueryModifications(): string[] {
    return QUERY_MODIFICATIONS;
  }

  modifyQuery(query: LokalQuery, action: QueryFixAction): LokalQuery {
    const expr = query.expr ?? '';
    const { key, value } = action.options ?? {};
    switch (action.type) {
      case 'ADD_FILTER':
        return key && value !== undefined
          ? { ...query, expr: addLabelFilter(removeLabelFilter(expr, key, value, '!='), key, value, '=') }
          : query;
      case 'ADD_FILTER_OUT':
        return key && value !== undefined
          ? { ...query, expr: addLabelFilter(removeLabelFilter(expr, key, value, '='), key, value, '!=') }
          : query;
      case 'ADD_STRING_FILTER':
        return value ? { ...query, expr: addLineFilter(expr, value, '|=') } : query;
      case 'ADD_STRING_FILTER_OUT':
        return value ? { ...query, expr: addLineFilter(expr, value, '!=') } : query;
      case 'ADD_LOGFMT_PARSER':
        return { ...query, expr: addParser(expr, 'logfmt') };
      case 'ADD_JSON_PARSER':
        return { ...query, expr: addParser(expr, 'json') };
      default:
        return query;
    }
  }

  // ---- query hints ----

  getQueryHints(query: LokalQuery, results: DataFrame[]): QueryHint[] {
    const expr = query.expr ?? '';
    if (!isLogsQuery(expr) || hasParser(expr)) {
      return [];
    }
    const lines = results.flatMap((f) => logLines(f)).slice(0, HINT_SAMPLE_LINES);
    if (lines.length === 0) {
      return [];
    }
    const hints: QueryHint[] = [];
    const half = lines.length / 2;
    if (lines.filter(isJSONLine).length > half) {
      hints.push({
        type: 'ADD_JSON_PARSER',
        label: 'The log lines are JSON: a json parser turns their fields into labels you can filter and aggregate by.',
        fix: { label: 'Add json parser', action: { type: 'ADD_JSON_PARSER', query: expr } },
      });
    } else if (lines.filter(isLogfmtLine).length > half) {
      hints.push({
        type: 'ADD_LOGFMT_PARSER',
        label: 'The log lines are logfmt: a logfmt parser turns their key=value pairs into labels.',
        fix: { label: 'Add logfmt parser', action: { type: 'ADD_LOGFMT_PARSER', query: expr } },
      });
    }
    return hints;
  }
}

/** Multi-value and All selections become an alternation of regex-escaped values. */
export function interpolateValue(value: unknown, variable?: { multi?: boolean; includeAll?: boolean }): string {
  if (Array.isArray(value)) {
    return value.length === 1
      ? escapeRegexInString(String(value[0]))
      : `(${value.map((v) => escapeRegexInString(String(v))).join('|')})`;
  }
  const s = String(value ?? '');
  return variable?.multi || variable?.includeAll ? escapeRegexInString(s) : s;
}

/** The stream selector of a row's source: its file, not its level. */
export function contextSelector(rowLabels: Record<string, string>): string {
  let names = CONTEXT_LABELS.filter((n) => rowLabels[n] !== undefined && rowLabels[n] !== '');
  if (!names.includes('filename')) {
    // no file label: every label but the level, which would split the file
    names = Object.keys(rowLabels)
      .filter((n) => n !== 'level' && !n.startsWith('__'))
      .sort();
  }
  if (names.length === 0) {
    throw new Error('This log line has no labels to find its neighbours by.');
  }
  return `{${names.map((n) => `${n}=${quoteString(rowLabels[n])}`).join(', ')}}`;
}

function withoutRow(frame: DataFrame, rowId: string): DataFrame {
  const ids = frame.fields.find((f) => f.name === 'id');
  if (!ids) {
    return frame;
  }
  const keep: number[] = [];
  for (let i = 0; i < frame.length; i++) {
    if (ids.values[i] !== rowId) {
      keep.push(i);
    }
  }
  if (keep.length === frame.length) {
    return frame;
  }
  return {
    ...frame,
    length: keep.length,
    fields: frame.fields.map((f) => ({ ...f, values: keep.map((i) => f.values[i]) })),
  };
}

/** The lines of a logs frame (data plane: body; older frames: Line). */
function logLines(frame: DataFrame): string[] {
  const body =
    frame.fields.find((f) => f.name === 'body' || f.name === 'Line') ??
    frame.fields.find((f) => f.type === FieldType.string && f.name !== 'id' && f.name !== 'labels');
  if (!body) {
    return [];
  }
  return body.values.slice(0, HINT_SAMPLE_LINES).filter((v): v is string => typeof v === 'string');
}

export function isJSONLine(line: string): boolean {
  const t = line.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) {
    return false;
  }
  try {
    const v = JSON.parse(t);
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  } catch {
    return false;
  }
}

const LOGFMT_PAIR = /(?:^|\s)[A-Za-z_][\w.-]*=(?:"(?:[^"\\]|\\.)*"|[^\s"]*)(?=\s|$)/g;

/** A line with at least two key=value pairs reads as logfmt. */
export function isLogfmtLine(line: string): boolean {
  return (line.match(LOGFMT_PAIR)?.length ?? 0) >= 2;
}

function hashString(s: string): string {
  let h = 0;
  for (let i = 0; i < s.length; i++) {
    h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  }
  return (h >>> 0).toString(16);
}
