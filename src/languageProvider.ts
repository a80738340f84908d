// Label metadata for the label browser, autocompletion and template variables,
// fetched from the backend's Loki-shaped resource endpoints:
//   labels, label/<name>/values, series, index/stats
// each answering {"status":"success","data":...}.
import { TimeRange } from '@grafana/data';

import { LokiResourceResponse } from './types';

export type ResourceFetcher = (path: string, params?: Record<string, string>) => Promise<unknown>;

/** Streams, chunks/blocks, bytes and entries a selector would touch, as Loki's index/stats. */
export interface IndexStats {
  streams: number;
  chunks: number;
  bytes: number;
  entries: number;
}

// Label metadata changes as files are ingested, but not from one keystroke to
// the next: a short cache keeps the editor from calling the backend per key.
const CACHE_TTL_MS = 30_000;
const CACHE_MAX_ENTRIES = 200;

/** Nanoseconds as a decimal string: milliseconds times 1e6 overflow a double's exact range. */
export function toNanoString(ms: number): string {
  return `${Math.round(ms)}000000`;
}

function rangeParams(range?: TimeRange): Record<string, string> {
  if (!range) {
    return {};
  }
  return { start: toNanoString(range.from.valueOf()), end: toNanoString(range.to.valueOf()) };
}

function unwrap<T>(path: string, rsp: unknown, check: (data: unknown) => data is T): T {
  const r = rsp as Partial<LokiResourceResponse<unknown>> | undefined;
  if (!r || typeof r !== 'object') {
    throw new Error(`${path}: empty response from the Lokal backend`);
  }
  if (r.status !== undefined && r.status !== 'success') {
    const msg = (rsp as { error?: string }).error ?? r.status;
    throw new Error(`${path}: ${msg}`);
  }
  if (!check(r.data)) {
    throw new Error(`${path}: unexpected response shape from the Lokal backend`);
  }
  return r.data;
}

const isStringArray = (d: unknown): d is string[] => Array.isArray(d) && d.every((x) => typeof x === 'string');
const isNullOrStringArray = (d: unknown): d is string[] | null => d === null || isStringArray(d);
const isSeriesArray = (d: unknown): d is Array<Record<string, string>> =>
  Array.isArray(d) && d.every((x) => x !== null && typeof x === 'object');

export class LanguageProvider {
  private cache = new Map<string, { at: number; value: Promise<unknown> }>();

  constructor(
    private readonly fetch: ResourceFetcher,
    private readonly now: () => number = Date.now
  ) {}

  private cached<T>(path: string, params: Record<string, string>, load: () => Promise<T>): Promise<T> {
    const key = path + '?' + new URLSearchParams(params).toString();
    const hit = this.cache.get(key);
    const now = this.now();
    if (hit && now - hit.at < CACHE_TTL_MS) {
      return hit.value as Promise<T>;
    }
    const value = load();
    // a failed call is not cached: the next keystroke retries
    value.catch(() => this.cache.delete(key));
    this.cache.set(key, { at: now, value });
    if (this.cache.size > CACHE_MAX_ENTRIES) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) {
        this.cache.delete(oldest);
      }
    }
    return value;
  }

  /** Label names, optionally only those of streams matching selector. */
  fetchLabels(range?: TimeRange, selector?: string): Promise<string[]> {
    const params = { ...rangeParams(range), ...(selector ? { query: selector } : {}) };
    return this.cached('labels', params, async () => {
      const data = unwrap('labels', await this.fetch('labels', params), isNullOrStringArray);
      return [...(data ?? [])].sort();
    });
  }

  /** Values of one label, optionally only in streams matching selector. */
  fetchLabelValues(label: string, range?: TimeRange, selector?: string): Promise<string[]> {
    const path = `label/${encodeURIComponent(label)}/values`;
    const params = { ...rangeParams(range), ...(selector ? { query: selector } : {}) };
    return this.cached(path, params, async () => {
      const data = unwrap(path, await this.fetch(path, params), isNullOrStringArray);
      return [...(data ?? [])].sort();
    });
  }

  /** Label sets of the streams matching selector. */
  fetchSeries(selector: string, range?: TimeRange): Promise<Array<Record<string, string>>> {
    const params = { ...rangeParams(range), 'match[]': selector };
    return this.cached('series', params, async () =>
      unwrap('series', await this.fetch('series', params), isSeriesArray)
    );
  }

  /** What a query would scan, for the editor's "this query will scan" hint. */
  async fetchIndexStats(query: string, range?: TimeRange): Promise<IndexStats> {
    const params = { ...rangeParams(range), query };
    const rsp = (await this.fetch('index/stats', params)) as Partial<IndexStats> & { data?: Partial<IndexStats> };
    // Loki answers index/stats unwrapped; accept the wrapped shape too.
    const s = rsp && typeof rsp === 'object' && rsp.data && typeof rsp.data === 'object' ? rsp.data : rsp;
    if (!s || typeof s !== 'object') {
      throw new Error('index/stats: unexpected response shape from the Lokal backend');
    }
    return { streams: s.streams ?? 0, chunks: s.chunks ?? 0, bytes: s.bytes ?? 0, entries: s.entries ?? 0 };
  }
}
