import { DataSourceJsonData } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

/**
 * Query types, named as in Grafana's Loki datasource so a Loki panel or alert
 * rule works here after only its datasource UID changes.
 */
export enum LokalQueryType {
  Range = 'range',
  Instant = 'instant',
  Stream = 'stream',
}

export enum LokalQueryDirection {
  Backward = 'backward',
  Forward = 'forward',
}

/** The query model: Loki's field names, so panels and alert rules are portable. */
export interface LokalQuery extends DataQuery {
  expr: string;
  queryType?: LokalQueryType;
  /** Line limit for log queries; the backend applies its default when unset. */
  maxLines?: number;
  legendFormat?: string;
  /** Step of metric queries, as a Prometheus-style duration or a template variable. */
  step?: string;
  /** Resolution as 1/N of the interval Grafana computes from the panel width. */
  resolution?: number;
  direction?: LokalQueryDirection;
  /** Set by supplementary queries (log volume), so their frames are recognisable. */
  supportingQueryType?: string;
}

export const DEFAULT_QUERY: Partial<LokalQuery> = {
  expr: '',
  queryType: LokalQueryType.Range,
};

/** Resolutions Grafana's Loki editor offers: 1/N of the computed interval. */
export const RESOLUTION_OPTIONS = [1, 2, 3, 4, 5, 10];

/** A Promtail static_config: labels, with the path glob in __path__. */
export interface StaticConfig {
  targets?: string[];
  labels: Record<string, string>;
}

/** One Promtail pipeline stage: a single key naming the stage, as in promtail.yaml. */
export type PipelineStage = Record<string, unknown>;

/** A Promtail scrape_config, the shape users paste from an existing promtail.yaml. */
export interface ScrapeConfig {
  job_name: string;
  static_configs: StaticConfig[];
  pipeline_stages?: PipelineStage[];
}

export interface StorageSettings {
  /** Store directory; empty means the default below the operator's data_path. */
  path?: string;
  /** Age after which whole partitions are dropped, e.g. 168h; 0s keeps everything. */
  retention?: string | number;
  /** Total size cap, e.g. 10GiB. */
  max_bytes?: string | number;
}

/**
 * The datasource's jsonData: the same schema as provisioning YAML and the CLI's
 * config file, so a user learns it once.
 */
export interface LokalJsonData extends DataSourceJsonData {
  storage?: StorageSettings;
  scrape_configs?: ScrapeConfig[];
  /** Advanced: Promtail scrape_configs YAML, used in addition to scrape_configs. */
  scrape_configs_yaml?: string;
  /** Polling fallback for filesystems without change events, e.g. 1s. */
  poll_interval?: string;
  /** Longer lines are truncated and marked, e.g. 256KiB. */
  max_line_bytes?: string | number;
}

/** Loki-shaped resource responses served by the backend's CallResource. */
export interface LokiResourceResponse<T> {
  status: string;
  data: T;
}
