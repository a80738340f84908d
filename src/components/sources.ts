// Sources as the config editor shows them, and the Promtail scrape_configs
// they are stored as. Format presets write real Promtail pipeline_stages, so
// what the editor saves is what a promtail.yaml would say.
import { parse as parseYAML, stringify as stringifyYAML } from 'yaml';

import { PipelineStage, ScrapeConfig } from '../types';

export type PresetId = 'auto' | 'bracket-level' | 'logfmt' | 'json' | 'python-multiline';

export interface FormatPreset {
  id: PresetId;
  label: string;
  description: string;
  stages: PipelineStage[];
}

// A new entry starts at a line beginning with a [LEVEL], a date, or an
// uvicorn-style "LEVEL:"; anything else (a traceback) joins the entry above.
const ENTRY_START = '^(\\[[A-Za-z]+\\]|\\d{4}-\\d{2}-\\d{2}[ T]\\d{2}:\\d{2}:\\d{2}|[A-Z]+:\\s)';

export const FORMAT_PRESETS: FormatPreset[] = [
  {
    id: 'auto',
    label: 'Automatic',
    description: 'No stages: level and leading timestamp are detected from each line.',
    stages: [],
  },
  {
    id: 'bracket-level',
    label: '[LEVEL] timestamp message',
    description: 'CosyVoice style: "[INFO] 2024-12-17T14:30:52Z Inference finished"; timestamp from the line.',
    stages: [
      { regex: { expression: '^\\[(?P<level>[A-Za-z]+)\\]\\s+(?P<time>\\S+)' } },
      { timestamp: { source: 'time', format: 'RFC3339Nano' } },
    ],
  },
  {
    id: 'logfmt',
    label: 'logfmt',
    description: 'key=value lines; the timestamp from ts=.',
    stages: [{ logfmt: { mapping: { ts: 'ts' } } }, { timestamp: { source: 'ts', format: 'RFC3339Nano' } }],
  },
  {
    id: 'json',
    label: 'JSON',
    description: 'One JSON object per line; the timestamp from "ts".',
    stages: [{ json: { expressions: { ts: 'ts' } } }, { timestamp: { source: 'ts', format: 'RFC3339Nano' } }],
  },
  {
    id: 'python-multiline',
    label: 'Python traceback (multiline)',
    description: 'Tracebacks and other continuation lines join the log line above them.',
    stages: [{ multiline: { firstline: ENTRY_START, max_wait_time: '3s' } }],
  },
];

/** The preset whose stages these are, or 'custom' for hand-written stages. */
export function detectPreset(stages: PipelineStage[] | undefined): PresetId | 'custom' {
  const json = JSON.stringify(stages ?? []);
  return FORMAT_PRESETS.find((p) => JSON.stringify(p.stages) === json)?.id ?? 'custom';
}

export function presetStages(id: PresetId): PipelineStage[] {
  const p = FORMAT_PRESETS.find((x) => x.id === id);
  if (!p) {
    throw new Error(`unknown format preset ${id}`);
  }
  // a copy: saved settings must not alias the preset table
  return JSON.parse(JSON.stringify(p.stages));
}

export const PATH_LABEL = '__path__';
export const PATH_EXCLUDE_LABEL = '__path_exclude__';

/** A source's extra labels (everything but the path globs), as "k=v, k2=v2". */
export function formatLabels(labels: Record<string, string> | undefined): string {
  return Object.entries(labels ?? {})
    .filter(([k]) => k !== PATH_LABEL && k !== PATH_EXCLUDE_LABEL)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses "k=v, k2=v2" into labels, or says which part is wrong. */
export function parseLabels(text: string): { labels: Record<string, string>; error?: string } {
  const labels: Record<string, string> = {};
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) {
      return { labels, error: `"${part}" is not name=value` };
    }
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!LABEL_NAME.test(name)) {
      return { labels, error: `"${name}" is not a valid label name (letters, digits, _; not starting with a digit)` };
    }
    if (name.startsWith('__')) {
      return { labels, error: `"${name}": names starting with __ are reserved` };
    }
    if (value === '') {
      return { labels, error: `"${name}" has no value` };
    }
    labels[name] = value;
  }
  return { labels };
}

export function newSource(index: number): ScrapeConfig {
  return {
    job_name: index === 0 ? 'cosyvoice3' : `job${index + 1}`,
    static_configs: [{ labels: { job: index === 0 ? 'cosyvoice3' : `job${index + 1}`, [PATH_LABEL]: '' } }],
    pipeline_stages: [],
  };
}

/** Applies an edit to the first static config (the one the editor shows), keeping any others. */
export function withFirstLabels(
  sc: ScrapeConfig,
  update: (labels: Record<string, string>) => Record<string, string>
): ScrapeConfig {
  const [first, ...rest] = sc.static_configs.length ? sc.static_configs : [{ labels: {} }];
  return { ...sc, static_configs: [{ ...first, labels: update({ ...first.labels }) }, ...rest] };
}

export function setPath(
  sc: ScrapeConfig,
  label: typeof PATH_LABEL | typeof PATH_EXCLUDE_LABEL,
  glob: string
): ScrapeConfig {
  return withFirstLabels(sc, (l) => {
    if (glob === '' && label === PATH_EXCLUDE_LABEL) {
      delete l[label];
    } else {
      l[label] = glob;
    }
    return l;
  });
}

export function setExtraLabels(sc: ScrapeConfig, extra: Record<string, string>): ScrapeConfig {
  return withFirstLabels(sc, (l) => {
    const kept = Object.fromEntries(Object.entries(l).filter(([k]) => k === PATH_LABEL || k === PATH_EXCLUDE_LABEL));
    return { ...extra, ...kept };
  });
}

/** Checks one source, returning problems a user must fix before it can work. */
export function validateSource(sc: ScrapeConfig): string[] {
  const problems: string[] = [];
  if (!sc.job_name.trim()) {
    problems.push('a job name is required');
  }
  const path = sc.static_configs[0]?.labels?.[PATH_LABEL] ?? '';
  if (!path.trim()) {
    problems.push('a path glob is required, e.g. /root/CosyVoice/logs/*.log');
  } else if (!path.startsWith('/')) {
    problems.push('the path glob must be absolute (start with /)');
  }
  return problems;
}

/** Durations as Lokal's settings accept them: 168h, 7d, 30m, 1h30m; 0s keeps everything. */
export function isValidDuration(s: string): boolean {
  return s === '' || s === '0' || /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$/.test(s);
}

/** Sizes such as 10GiB, 500MB, 1TiB. */
export function isValidByteSize(s: string): boolean {
  return s === '' || /^\d+(\.\d+)?\s*(KiB|MiB|GiB|TiB|KB|MB|GB|TB|Ki|Mi|Gi|Ti|K|M|G|T|B)?$/.test(s);
}

/** The sources as Promtail scrape_configs YAML, for switching the editor to YAML. */
export function scrapeConfigsToYAML(configs: ScrapeConfig[]): string {
  return configs.length === 0 ? '' : stringifyYAML(configs);
}

/**
 * Reads pasted scrape_configs YAML (the list, or a document with a
 * scrape_configs key) far enough to show the sources in the form. The
 * backend checks every key strictly; this only catches what the form needs.
 */
export function parseScrapeConfigsYAML(text: string): { configs?: ScrapeConfig[]; error?: string } {
  if (text.trim() === '') {
    return { configs: [] };
  }
  let doc: unknown;
  try {
    doc = parseYAML(text);
  } catch (e) {
    return { error: `YAML: ${(e as Error).message}` };
  }
  if (doc && typeof doc === 'object' && !Array.isArray(doc) && 'scrape_configs' in doc) {
    doc = (doc as { scrape_configs: unknown }).scrape_configs;
  }
  if (!Array.isArray(doc)) {
    return { error: 'expected a list of scrape configs (- job_name: ...)' };
  }
  for (const [i, sc] of doc.entries()) {
    if (!sc || typeof sc !== 'object' || Array.isArray(sc)) {
      return { error: `scrape config ${i + 1}: expected a mapping with job_name and static_configs` };
    }
    const c = sc as Partial<ScrapeConfig>;
    if (typeof c.job_name !== 'string' || c.job_name === '') {
      return { error: `scrape config ${i + 1}: job_name is missing` };
    }
    if (!Array.isArray(c.static_configs) || c.static_configs.length === 0) {
      return { error: `scrape config ${c.job_name}: static_configs is missing` };
    }
    for (const st of c.static_configs) {
      if (!st || typeof st !== 'object' || !st.labels || typeof st.labels !== 'object') {
        return { error: `scrape config ${c.job_name}: every static config needs labels with __path__` };
      }
    }
  }
  return { configs: doc as ScrapeConfig[] };
}
