// A page that mounts the query and config editors outside Grafana, with a
// fake backend, so a headless browser can prove they build and render (see
// src/harness/check.mjs). It is bundled by webpack.harness.config.ts only, never
// into the plugin.
import {
  CoreApp,
  createTheme,
  DataSourceInstanceSettings,
  DataSourceSettings,
  dateTime,
  LoadingState,
  PanelData,
} from '@grafana/data';
import { TemplateSrv } from '@grafana/runtime';
import { ThemeContext } from '@grafana/ui';
import React, { useState } from 'react';
import { createRoot } from 'react-dom/client';

import { ConfigEditor } from '../components/ConfigEditor';
import { LabelBrowser } from '../components/LabelBrowser';
import { QueryHelp } from '../components/QueryHelp';
import { QueryEditor } from '../components/QueryEditor';
import { DataSource } from '../datasource';
import { LokalJsonData, LokalQuery, LokalQueryType } from '../types';

const LABELS: Record<string, string[]> = {
  job: ['cosyvoice3'],
  instance: ['host-1', 'host-2'],
  level: ['debug', 'info', 'warn', 'error'],
  filename: ['/root/CosyVoice/logs/cosyvoice.log', '/root/CosyVoice/logs/run.log'],
};

function fakeBackend(path: string): Promise<unknown> {
  if (path === 'labels') {
    return Promise.resolve({ status: 'success', data: Object.keys(LABELS) });
  }
  const m = /^label\/([^/]+)\/values$/.exec(path);
  if (m) {
    return Promise.resolve({ status: 'success', data: LABELS[decodeURIComponent(m[1])] ?? [] });
  }
  return Promise.reject(new Error(`no resource ${path}`));
}

const instanceSettings = {
  id: 1,
  uid: 'harness',
  type: 'lokal-logql-datasource',
  name: 'Lokal',
  meta: { id: 'lokal-logql-datasource' },
  jsonData: {},
} as unknown as DataSourceInstanceSettings<LokalJsonData>;

const templateSrv = { replace: (s?: string) => s ?? '' } as unknown as TemplateSrv;

const configSettings = {
  id: 1,
  uid: 'harness',
  orgId: 1,
  name: 'Lokal',
  type: 'lokal-logql-datasource',
  typeName: 'Lokal',
  typeLogoUrl: '',
  access: 'proxy',
  url: '',
  user: '',
  basicAuth: false,
  basicAuthUser: '',
  isDefault: true,
  withCredentials: false,
  readOnly: false,
  secureJsonFields: {},
  jsonData: {
    scrape_configs: [
      {
        job_name: 'cosyvoice3',
        static_configs: [{ labels: { job: 'cosyvoice3', instance: 'host-1', __path__: '/root/CosyVoice/logs/*.log' } }],
        pipeline_stages: [
          {
            multiline: {
              firstline: '^(\\[[A-Za-z]+\\]|\\d{4}-\\d{2}-\\d{2}[ T]\\d{2}:\\d{2}:\\d{2}|[A-Z]+:\\s)',
              max_wait_time: '3s',
            },
          },
        ],
      },
    ],
    storage: { retention: '168h', max_bytes: '10GiB' },
  },
} as unknown as DataSourceSettings<LokalJsonData>;

const range = { from: dateTime().subtract(1, 'h'), to: dateTime(), raw: { from: 'now-1h', to: 'now' } };
const emptyData = { series: [], state: LoadingState.Done, timeRange: range } as PanelData;

function Harness() {
  const [ds] = useState(() => {
    const d = new DataSource(instanceSettings, templateSrv);
    d.getResource = (path: string) => fakeBackend(path) as never;
    return d;
  });
  const [queries, setQueries] = useState<LokalQuery[]>([
    { refId: 'A', expr: 'sum by (level) (rate({job="cosyvoice3"} |= "error"[5m]))', queryType: LokalQueryType.Range },
    { refId: 'B', expr: '{job="cosyvoice3", level=error} |= "CUDA', queryType: LokalQueryType.Range },
    {
      refId: 'C',
      expr: 'sum by (mode) (count_over_time({job="cosyvoice3", filename="/root/CosyVoice/logs/cosyvoice.log"} |= "Inference finished" | regexp "mode=(?P<mode>\\w+) text_len=(?P<text_len>\\d+)" | text_len > 200 [$__auto]))',
      queryType: LokalQueryType.Range,
    },
  ]);
  const [options, setOptions] = useState(configSettings);
  const [runs, setRuns] = useState(0);
  return (
    <div style={{ padding: 16, display: 'flex', flexDirection: 'column', gap: 24 }}>
      <h2>Lokal editors</h2>
      {queries.map((q, i) => (
        <section key={q.refId} aria-label={`Query ${q.refId}`}>
          <h4>Query {q.refId}</h4>
          <QueryEditor
            datasource={ds}
            query={q}
            onChange={(next) => setQueries(queries.map((x, j) => (j === i ? next : x)))}
            onRunQuery={() => setRuns(runs + 1)}
            range={range}
            data={emptyData}
            app={CoreApp.Explore}
          />
        </section>
      ))}
      <div data-testid="runs">Runs: {runs}</div>
      <section aria-label="Label browser section">
        <h4>Label browser</h4>
        <LabelBrowser
          languageProvider={ds.languageProvider}
          range={range}
          initial={[{ name: 'job', op: '=', value: 'cosyvoice3' }]}
          onUse={() => undefined}
          onClose={() => undefined}
        />
      </section>
      <section aria-label="Help section">
        <QueryHelp onClickExample={() => undefined} />
      </section>
      <section aria-label="Config editor">
        <h4>Config editor</h4>
        <ConfigEditor options={options} onOptionsChange={setOptions} />
      </section>
    </div>
  );
}

const errors: string[] = [];
window.addEventListener('error', (e) => errors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => errors.push(String(e.reason)));

const theme = createTheme({ colors: { mode: 'dark' } });
document.body.style.background = theme.colors.background.primary;
document.body.style.color = theme.colors.text.primary;
document.body.style.fontFamily = theme.typography.fontFamily;

const rootEl = document.getElementById('root')!;
createRoot(rootEl).render(
  <ThemeContext.Provider value={theme}>
    <Harness />
  </ThemeContext.Provider>
);

// The status the browser check reads: rendered once Monaco has mounted
// (or given up), with any page errors listed.
const started = Date.now();
const timer = window.setInterval(() => {
  const monacoReady = document.querySelectorAll('.monaco-editor').length >= 3;
  if (monacoReady || Date.now() - started > 20000) {
    window.clearInterval(timer);
    const status = document.getElementById('harness-status')!;
    status.setAttribute('data-status', errors.length ? 'error' : monacoReady ? 'rendered' : 'no-monaco');
    status.textContent = errors.join('\n');
  }
}, 100);
