import {
  CoreApp,
  DataSourceInstanceSettings,
  dateTime,
  FieldType,
  LoadingState,
  PanelData,
  toDataFrame,
} from '@grafana/data';
import { TemplateSrv, toDataQueryResponse } from '@grafana/runtime';
import { act, fireEvent, render, screen } from '@testing-library/react';
import React, { useState } from 'react';

import { DataSource } from '../datasource';
import { FakeMonacoRecord, newRecord } from '../test/mockCodeEditor';
import { LokalJsonData, LokalQuery } from '../types';
import { QueryEditor } from './QueryEditor';

const mockRecord: { current: FakeMonacoRecord } = { current: newRecord() };
jest.mock('@grafana/ui', () => {
  const actual = jest.requireActual('@grafana/ui');
  const { makeMockCodeEditor: make } = jest.requireActual('../test/mockCodeEditor');
  return { ...actual, CodeEditor: (props: object) => make(mockRecord.current)(props) };
});

const settings = {
  id: 1,
  uid: 'lokal',
  type: 'lokal-logql-datasource',
  name: 'Lokal',
  meta: { id: 'lokal-logql-datasource' },
  jsonData: {},
} as unknown as DataSourceInstanceSettings<LokalJsonData>;

const templateSrv = { replace: (s?: string) => s ?? '' } as unknown as TemplateSrv;

function setup(query: Partial<LokalQuery> = {}, data?: PanelData, app = CoreApp.Explore) {
  mockRecord.current = newRecord();
  const ds = new DataSource(settings, templateSrv);
  jest.spyOn(ds, 'getResource').mockImplementation(async (path: string) => {
    if (path === 'labels') {
      return { status: 'success', data: ['job', 'level'] };
    }
    if (path === 'label/job/values') {
      return { status: 'success', data: ['cosyvoice3', 'api'] };
    }
    if (path === 'label/level/values') {
      return { status: 'success', data: ['error', 'info'] };
    }
    throw new Error(path);
  });
  const onChange = jest.fn();
  const onRunQuery = jest.fn();
  const q: LokalQuery = { refId: 'A', expr: '', ...query };
  const range = { from: dateTime(0), to: dateTime(3600_000), raw: { from: 'now-1h', to: 'now' } };
  const utils = render(
    <QueryEditor
      datasource={ds}
      query={q}
      onChange={onChange}
      onRunQuery={onRunQuery}
      range={range}
      data={data}
      app={app}
    />
  );
  return { ds, onChange, onRunQuery, ...utils, q };
}

describe('QueryEditor', () => {
  it('renders the LogQL editor with the query', () => {
    setup({ expr: '{job="cosyvoice3"}' });
    const editor = screen.getByLabelText('LogQL query');
    expect(editor).toHaveValue('{job="cosyvoice3"}');
    expect(editor).toHaveAttribute('data-language', 'lokal-logql');
  });

  it('reports edits', () => {
    const { onChange } = setup({ expr: '' });
    fireEvent.change(screen.getByLabelText('LogQL query'), { target: { value: '{job="a"}' } });
    expect(onChange).toHaveBeenCalledWith(expect.objectContaining({ expr: '{job="a"}' }));
  });

  it('runs the query on Shift+Enter', () => {
    const { onRunQuery } = setup({ expr: '{job="a"}' });
    fireEvent.keyDown(screen.getByLabelText('LogQL query'), { key: 'Enter', shiftKey: true });
    expect(onRunQuery).toHaveBeenCalledTimes(1);
    fireEvent.keyDown(screen.getByLabelText('LogQL query'), { key: 'Enter' });
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('runs a changed query when the editor loses focus, once', () => {
    const { ds, onRunQuery, unmount } = setup({ expr: '{job="a"}' });
    unmount();
    // the query held in state, as Grafana does, so edits stick
    function Stateful() {
      const [query, setQuery] = useState<LokalQuery>({ refId: 'A', expr: '{job="a"}' });
      return <QueryEditor datasource={ds} query={query} onChange={setQuery} onRunQuery={onRunQuery} />;
    }
    render(<Stateful />);
    const editor = screen.getByLabelText('LogQL query');
    fireEvent.blur(editor);
    expect(onRunQuery).not.toHaveBeenCalled();
    fireEvent.change(editor, { target: { value: '{job="b"}' } });
    fireEvent.blur(editor);
    fireEvent.blur(editor);
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('shows syntax errors with their position under the editor and as Monaco markers', () => {
    setup({ expr: '{job=cosyvoice3}' });
    expect(screen.getByRole('alert')).toHaveTextContent(/Syntax error at line 1, column 6/);
    expect(mockRecord.current.markers).toHaveLength(1);
    expect(mockRecord.current.markers[0]).toMatchObject({ startLineNumber: 1, startColumn: 6 });
  });

  it('shows no error for a valid query and highlights its tokens', () => {
    setup({ expr: '{job="a"} |= "error"' });
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    expect(mockRecord.current.markers).toHaveLength(0);
    expect(mockRecord.current.languages).toEqual(['lokal-logql']);
    // job, =, "a", |=, "error"
    expect(mockRecord.current.decorations.length).toBeGreaterThanOrEqual(5);
  });

  it('completes label values from the backend through Monaco', async () => {
    setup({ expr: '{job=' });
    const completion = mockRecord.current.completion!;
    const own = await completion.provideCompletionItems(mockRecord.current.model, { lineNumber: 1, column: 6 });
    expect(own.suggestions.map((s) => s.insertText)).toEqual(['"api"', '"cosyvoice3"']);
    // the provider answers only for its own editor's model
    const foreign = await completion.provideCompletionItems({}, { lineNumber: 1, column: 6 });
    expect(foreign.suggestions).toEqual([]);
  });

  it('builds a selector in the label browser', async () => {
    const { onChange, onRunQuery } = setup();
    fireEvent.click(screen.getByRole('button', { name: /label browser/i }));
    const job = await screen.findByText('job');
    fireEvent.click(job);
    fireEvent.click(await screen.findByText('cosyvoice3'));
    expect(screen.getByLabelText('Resulting selector')).toHaveTextContent('{job="cosyvoice3"}');
    fireEvent.click(screen.getByText('api'));
    expect(screen.getByLabelText('Resulting selector')).toHaveTextContent('{job=~"cosyvoice3|api"}');
    fireEvent.click(screen.getByRole('button', { name: 'Use query' }));
    expect(onChange).toHaveBeenCalledWith(expect.objectContaining({ expr: '{job=~"cosyvoice3|api"}' }));
    expect(onRunQuery).toHaveBeenCalled();
  });

  it('starts the label browser from the current selector', async () => {
    setup({ expr: '{job="api"} |= "x"' });
    fireEvent.click(screen.getByRole('button', { name: /label browser/i }));
    expect(screen.getByLabelText('Resulting selector')).toHaveTextContent('{job="api"}');
    expect(await screen.findByText('cosyvoice3')).toBeInTheDocument();
  });

  it('offers the seed examples in the help panel', () => {
    const { onChange } = setup();
    fireEvent.click(screen.getByRole('button', { name: /help/i }));
    const use = screen.getByRole('button', { name: 'Use example: rate({job="cosyvoice3"}[5m])' });
    fireEvent.click(use);
    expect(onChange).toHaveBeenCalledWith(expect.objectContaining({ expr: 'rate({job="cosyvoice3"}[5m])' }));
    expect(screen.getByText('sum by (level) (rate({job="cosyvoice3"}[5m]))')).toBeInTheDocument();
  });

  it('shows a parser hint for unparsed logfmt lines and applies it', () => {
    const frame = toDataFrame({
      fields: [
        { name: 'timestamp', type: FieldType.time, values: [1, 2] },
        { name: 'body', type: FieldType.string, values: ['ts=1 level=info msg="tts done"', 'ts=2 level=warn msg=x'] },
      ],
    });
    const data = { series: [frame], state: LoadingState.Done, timeRange: {} } as unknown as PanelData;
    const { onChange } = setup({ expr: '{job="a"}' }, data);
    fireEvent.click(screen.getByRole('button', { name: 'Add logfmt parser' }));
    expect(onChange).toHaveBeenCalledWith(expect.objectContaining({ expr: '{job="a"} | logfmt' }));
  });

  it('shows log options for log queries and metric options for metric queries', () => {
    setup({ expr: '{job="a"}' });
    expect(screen.getByLabelText('Line limit')).toBeInTheDocument();
    expect(screen.queryByLabelText('Legend')).not.toBeInTheDocument();
  });

  it('disposes its completion provider on unmount', () => {
    const { unmount } = setup({ expr: '{job="a"}' });
    act(() => unmount());
    expect(mockRecord.current.disposed).toBeGreaterThanOrEqual(1);
  });

  it('says why the label browser is empty when the backend fails', async () => {
    const { ds } = setup();
    (ds.getResource as jest.Mock).mockRejectedValue(new Error('backend down'));
    fireEvent.click(screen.getByRole('button', { name: /label browser/i }));
    expect(await screen.findByText(/Could not load label names: backend down/)).toBeInTheDocument();
  });

  it('warns in an alert rule that a log query cannot alert', () => {
    setup({ expr: '{job="a"} |= "CUDA out of memory"' }, undefined, CoreApp.UnifiedAlerting);
    expect(screen.getByText('Alert rules need a metric query')).toBeInTheDocument();
  });

  it('does not warn for a metric query in an alert rule', () => {
    setup({ expr: 'count_over_time({job="a"}[5m])' }, undefined, CoreApp.UnifiedAlerting);
    expect(screen.queryByText('Alert rules need a metric query')).not.toBeInTheDocument();
  });
});

describe('QueryEditor backend errors', () => {
  const expr = 'sum(sum_over_time({job="x"}[5m]))';
  // The error response pkg/plugin sends for expr (errrange.go), as it comes over the wire.
  const wire = {
    data: {
      results: {
        A: {
          status: 400,
          error: 'parse error : invalid aggregation sum_over_time without unwrap',
          frames: [
            {
              schema: {
                meta: {
                  typeVersion: [0, 0],
                  custom: {
                    lokalErrorRange: {
                      expr,
                      message: 'parse error : invalid aggregation sum_over_time without unwrap',
                      start: { offset: 4, line: 1, col: 5 },
                      end: { offset: 32, line: 1, col: 33 },
                    },
                  },
                },
                fields: [],
              },
              data: { values: [] },
            },
          ],
        },
      },
    },
  };
  const panelData = () => {
    const rsp = toDataQueryResponse(wire as never);
    return { series: rsp.data, errors: rsp.errors, state: LoadingState.Error, timeRange: {} } as unknown as PanelData;
  };

  it('underlines the range of a validation error the backend reports', () => {
    setup({ expr }, panelData());
    expect(screen.getByRole('alert', { name: 'LogQL query errors' })).toHaveTextContent(
      'Query error at line 1, column 5: invalid aggregation sum_over_time without unwrap'
    );
    expect(mockRecord.current.markers).toEqual([
      expect.objectContaining({
        message: 'invalid aggregation sum_over_time without unwrap',
        severity: 8,
        startLineNumber: 1,
        startColumn: 5,
        endColumn: 33,
      }),
    ]);
  });

  it('drops the underline once the query is edited', () => {
    const data = panelData();
    const { rerender, ds, onChange, onRunQuery } = setup({ expr }, data);
    const edited = expr.replace('5m', '10m');
    rerender(
      <QueryEditor
        datasource={ds}
        query={{ refId: 'A', expr: edited }}
        onChange={onChange}
        onRunQuery={onRunQuery}
        data={data}
      />
    );
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    expect(mockRecord.current.markers).toHaveLength(0);
  });

  it("prefers the editor's own syntax errors", () => {
    const data = panelData();
    const { rerender, ds, onChange, onRunQuery } = setup({ expr }, data);
    rerender(
      <QueryEditor
        datasource={ds}
        query={{ refId: 'A', expr: '{job=x}' }}
        onChange={onChange}
        onRunQuery={onRunQuery}
        data={data}
      />
    );
    expect(screen.getByRole('alert', { name: 'LogQL syntax errors' })).toHaveTextContent(/Syntax error at line 1/);
  });
});
