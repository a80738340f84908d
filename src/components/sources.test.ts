import { ScrapeConfig } from '../types';
import {
  detectPreset,
  FORMAT_PRESETS,
  formatLabels,
  isValidByteSize,
  isValidDuration,
  newSource,
  parseLabels,
  parseScrapeConfigsYAML,
  presetStages,
  scrapeConfigsToYAML,
  setExtraLabels,
  setPath,
  validateSource,
} from './sources';

const source: ScrapeConfig = {
  job_name: 'cosyvoice3',
  static_configs: [
    { labels: { job: 'cosyvoice3', __path__: '/logs/*.log' } },
    { labels: { __path__: '/other/*.log' } },
  ],
  pipeline_stages: [],
};

describe('format presets', () => {
  it.each(FORMAT_PRESETS.map((p) => [p.id]))('%s is recognised from its own stages', (id) => {
    expect(detectPreset(presetStages(id as never))).toBe(id);
  });

  it('treats hand-written stages as custom', () => {
    expect(detectPreset([{ drop: { expression: 'healthz' } }])).toBe('custom');
    expect(detectPreset(undefined)).toBe('auto');
  });

  it('writes Promtail stages: regex and timestamp for [LEVEL] timestamp message', () => {
    const stages = presetStages('bracket-level');
    expect(stages).toEqual([
      { regex: { expression: '^\\[(?P<level>[A-Za-z]+)\\]\\s+(?P<time>\\S+)' } },
      { timestamp: { source: 'time', format: 'RFC3339Nano' } },
    ]);
    // the named groups are real: the level and time of a CosyVoice line
    const re = new RegExp((stages[0].regex as { expression: string }).expression.replace(/\?P</g, '?<'));
    expect(re.exec('[ERROR] 2026-11-23T22:51:36Z Inference failed')?.groups).toEqual({
      level: 'ERROR',
      time: '2026-11-23T22:51:36Z',
    });
  });

  it('starts a multiline entry at a level, a date or an uvicorn level, not at a traceback line', () => {
    const firstline = (presetStages('python-multiline')[0].multiline as { firstline: string }).firstline;
    const re = new RegExp(firstline);
    expect(re.test('[ERROR] 2026-11-23T22:51:36Z Inference failed: CUDA out of memory.')).toBe(true);
    expect(re.test('2024-12-17 14:30:52,123 - cosyvoice - INFO - ready')).toBe(true);
    expect(re.test('INFO:     127.0.0.1:36348 - "POST /inference_sft HTTP/1.1" 200 OK')).toBe(true);
    expect(re.test('Traceback (most recent call last):')).toBe(false);
    expect(re.test('  File "/root/CosyVoice/cosyvoice/cli/model.py", line 210, in tts')).toBe(false);
    expect(re.test('torch.OutOfMemoryError: CUDA out of memory.')).toBe(false);
  });

  it('returns copies, not the preset table', () => {
    const a = presetStages('json');
    (a[0].json as { expressions: Record<string, string> }).expressions.x = 'y';
    expect(detectPreset(presetStages('json'))).toBe('json');
  });
});

describe('labels', () => {
  it('formats extra labels without the path globs', () => {
    expect(formatLabels({ job: 'a', __path__: '/x', __path_exclude__: '/y', env: 'prod' })).toBe('job=a, env=prod');
  });

  it.each([
    ['job=a, env=prod', { job: 'a', env: 'prod' }, undefined],
    ['', {}, undefined],
    ['job', {}, '"job" is not name=value'],
    ['1x=a', {}, 'not a valid label name'],
    ['__path__=/x', {}, 'reserved'],
    ['job=', {}, 'has no value'],
  ])('parses %j', (text, labels, error) => {
    const got = parseLabels(text);
    if (error) {
      expect(got.error).toContain(error);
    } else {
      expect(got).toEqual({ labels });
    }
  });

  it('edits the first static config and keeps the others', () => {
    let sc = setPath(source, '__path__', '/var/log/*.log');
    sc = setPath(sc, '__path_exclude__', '/var/log/*.gz');
    sc = setExtraLabels(sc, { job: 'x', instance: 'h1' });
    expect(sc.static_configs[0].labels).toEqual({
      job: 'x',
      instance: 'h1',
      __path__: '/var/log/*.log',
      __path_exclude__: '/var/log/*.gz',
    });
    expect(sc.static_configs[1]).toBe(source.static_configs[1]);
    expect(setPath(sc, '__path_exclude__', '').static_configs[0].labels).not.toHaveProperty('__path_exclude__');
  });
});

describe('validation', () => {
  it('requires a job and an absolute path', () => {
    expect(validateSource(source)).toEqual([]);
    expect(validateSource(newSource(0))).toEqual([expect.stringContaining('path glob is required')]);
    expect(validateSource(setPath(source, '__path__', 'logs/*.log'))).toEqual([expect.stringContaining('absolute')]);
    expect(validateSource({ ...source, job_name: ' ' })).toEqual([expect.stringContaining('job name')]);
  });

  it.each([
    ['168h', true],
    ['7d', true],
    ['1h30m', true],
    ['0s', true],
    ['0', true],
    ['', true],
    ['1y', false],
    ['week', false],
  ])('duration %j: %s', (s, want) => expect(isValidDuration(s)).toBe(want));

  it.each([
    ['10GiB', true],
    ['500MB', true],
    ['4096', true],
    ['10gib', false],
    ['lots', false],
  ])('size %j: %s', (s, want) => expect(isValidByteSize(s)).toBe(want));
});

describe('scrape_configs YAML', () => {
  it('round-trips the sources', () => {
    const yaml = scrapeConfigsToYAML([source]);
    expect(yaml).toContain('job_name: cosyvoice3');
    expect(parseScrapeConfigsYAML(yaml)).toEqual({ configs: [source] });
  });

  it('accepts a pasted promtail.yaml scrape_configs section', () => {
    const text = `scrape_configs:
  - job_name: cosyvoice3
    static_configs:
      - targets: [localhost]
        labels:
          job: cosyvoice3
          __path__: /root/CosyVoice/logs/*.log
    pipeline_stages:
      - multiline:
          firstline: '^\\[[A-Z]+\\]'
`;
    const got = parseScrapeConfigsYAML(text);
    expect(got.error).toBeUndefined();
    expect(got.configs?.[0].static_configs[0].labels.__path__).toBe('/root/CosyVoice/logs/*.log');
  });

  it.each([
    ['- job_name: [', 'YAML'],
    ['job_name: x', 'expected a list'],
    ['- static_configs: []', 'job_name is missing'],
    ['- job_name: x', 'static_configs is missing'],
    ['- job_name: x\n  static_configs: [{}]', 'needs labels'],
  ])('explains what is wrong with %j', (text, error) => {
    expect(parseScrapeConfigsYAML(text).error).toContain(error);
  });

  it('reads empty text as no sources', () => {
    expect(parseScrapeConfigsYAML('  ')).toEqual({ configs: [] });
    expect(scrapeConfigsToYAML([])).toBe('');
  });
});
