import { DataSourceSettings } from '@grafana/data';
import { fireEvent, render, screen } from '@testing-library/react';
import React, { useState } from 'react';

import { LokalJsonData } from '../types';
import { ConfigEditor } from './ConfigEditor';

function settings(jsonData: LokalJsonData): DataSourceSettings<LokalJsonData> {
  return {
    id: 1,
    uid: 'lokal',
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
    isDefault: false,
    withCredentials: false,
    readOnly: false,
    secureJsonFields: {},
    jsonData,
  } as DataSourceSettings<LokalJsonData>;
}

/** Renders the editor with its options held in state, as Grafana does, and records every change. */
function setup(jsonData: LokalJsonData = {}) {
  const changes: LokalJsonData[] = [];
  function Harness() {
    const [options, setOptions] = useState(settings(jsonData));
    return (
      <ConfigEditor
        options={options}
        onOptionsChange={(o) => {
          changes.push(o.jsonData);
          setOptions(o);
        }}
      />
    );
  }
  render(<Harness />);
  return { changes, last: () => changes[changes.length - 1] };
}

const cosy: LokalJsonData = {
  scrape_configs: [
    {
      job_name: 'cosyvoice3',
      static_configs: [{ labels: { job: 'cosyvoice3', instance: 'box', __path__: '/root/CosyVoice/logs/*.log' } }],
      pipeline_stages: [],
    },
  ],
  storage: { retention: '168h', max_bytes: '10GiB' },
};

describe('ConfigEditor', () => {
  it('explains the operator allowlist', () => {
    setup();
    expect(screen.getByText(/allowed_paths/)).toBeInTheDocument();
    expect(screen.getByText(/GF_PLUGIN_ALLOWED_PATHS/)).toBeInTheDocument();
  });

  it('adds a source as a Promtail scrape config', () => {
    const { last } = setup();
    fireEvent.click(screen.getByRole('button', { name: /add source/i }));
    fireEvent.change(screen.getByLabelText('Path glob'), { target: { value: '/root/CosyVoice/logs/*.log' } });
    expect(last().scrape_configs).toEqual([
      {
        job_name: 'cosyvoice3',
        static_configs: [{ labels: { job: 'cosyvoice3', __path__: '/root/CosyVoice/logs/*.log' } }],
        pipeline_stages: [],
      },
    ]);
  });

  it('shows what a source still needs', () => {
    setup();
    fireEvent.click(screen.getByRole('button', { name: /add source/i }));
    expect(screen.getByRole('alert')).toHaveTextContent('a path glob is required');
  });

  it('edits labels and keeps the path', () => {
    const { last } = setup(cosy);
    const labels = screen.getByLabelText('Labels');
    expect(labels).toHaveValue('job=cosyvoice3, instance=box');
    fireEvent.change(labels, { target: { value: 'job=cosyvoice3, env=prod' } });
    fireEvent.blur(labels);
    expect(last().scrape_configs?.[0].static_configs[0].labels).toEqual({
      job: 'cosyvoice3',
      env: 'prod',
      __path__: '/root/CosyVoice/logs/*.log',
    });
  });

  it('rejects a bad label and saves nothing', () => {
    const { changes } = setup(cosy);
    const labels = screen.getByLabelText('Labels');
    fireEvent.change(labels, { target: { value: 'job cosyvoice3' } });
    fireEvent.blur(labels);
    expect(changes).toHaveLength(0);
    expect(screen.getByText(/is not name=value/)).toBeInTheDocument();
  });

  it('removes a source', () => {
    const { last } = setup(cosy);
    fireEvent.click(screen.getByRole('button', { name: /remove this source/i }));
    expect(last().scrape_configs).toEqual([]);
  });

  it('edits retention and size, refusing invalid values', () => {
    const { last, changes } = setup(cosy);
    const retention = screen.getByLabelText('Retention');
    expect(retention).toHaveValue('168h');
    fireEvent.change(retention, { target: { value: 'a week' } });
    fireEvent.blur(retention);
    expect(changes).toHaveLength(0);
    expect(screen.getByText('A duration such as 168h, 7d or 0s')).toBeInTheDocument();
    fireEvent.change(retention, { target: { value: '72h' } });
    fireEvent.blur(retention);
    expect(last().storage).toEqual({ retention: '72h', max_bytes: '10GiB' });
    const size = screen.getByLabelText('Maximum size');
    fireEvent.change(size, { target: { value: '' } });
    fireEvent.blur(size);
    expect(last().storage).toEqual({ retention: '72h' });
    const path = screen.getByLabelText('Store path');
    fireEvent.change(path, { target: { value: '/var/lib/grafana/lokal/x' } });
    fireEvent.blur(path);
    expect(last().storage?.path).toBe('/var/lib/grafana/lokal/x');
  });

  it('switches to Promtail YAML and back, never saving both', () => {
    const { last } = setup(cosy);
    fireEvent.click(screen.getByLabelText('Promtail YAML'));
    expect(last().scrape_configs).toBeUndefined();
    expect(last().scrape_configs_yaml).toContain('__path__: /root/CosyVoice/logs/*.log');
    const box = screen.getByLabelText('scrape_configs YAML');
    fireEvent.change(box, {
      target: {
        value:
          'scrape_configs:\n  - job_name: api\n    static_configs:\n      - labels: {job: api, __path__: /var/log/api/*.log}\n',
      },
    });
    fireEvent.click(screen.getByLabelText('Form'));
    expect(last().scrape_configs_yaml).toBeUndefined();
    expect(last().scrape_configs?.[0].job_name).toBe('api');
    expect(screen.getByLabelText('Path glob')).toHaveValue('/var/log/api/*.log');
  });

  it('keeps broken YAML and says what is wrong instead of switching', () => {
    setup({ scrape_configs_yaml: '- job_name: [' });
    expect(screen.getByLabelText('scrape_configs YAML')).toHaveValue('- job_name: [');
    expect(screen.getByText(/^YAML:/)).toBeInTheDocument();
    fireEvent.click(screen.getByLabelText('Form'));
    expect(screen.getByText(/Fix the YAML before switching/)).toBeInTheDocument();
    expect(screen.getByLabelText('scrape_configs YAML')).toBeInTheDocument();
  });

  it('shows custom stages as custom and keeps them', () => {
    setup({
      scrape_configs: [
        {
          job_name: 'x',
          static_configs: [{ labels: { __path__: '/x/*.log' } }],
          pipeline_stages: [{ drop: { expression: 'healthz' } }],
        },
      ],
    });
    expect(screen.getByText(/Hand-written pipeline_stages/)).toBeInTheDocument();
  });
});
