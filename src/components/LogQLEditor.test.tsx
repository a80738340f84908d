import { dateTime } from '@grafana/data';
import { render, screen, waitFor } from '@testing-library/react';
import React from 'react';

import type { LanguageProvider } from '../languageProvider';
import { FakeMonacoRecord, newRecord } from '../test/mockCodeEditor';
import { LogQLEditor } from './LogQLEditor';

const mockRecord: { current: FakeMonacoRecord } = { current: newRecord() };
jest.mock('@grafana/ui', () => {
  const actual = jest.requireActual('@grafana/ui');
  const { makeMockCodeEditor: make } = jest.requireActual('../test/mockCodeEditor');
  return { ...actual, CodeEditor: (props: object) => make(mockRecord.current)(props) };
});

const range = { from: dateTime(0), to: dateTime(3600_000), raw: { from: 'now-1h', to: 'now' } };

function setup(expr: string, fetchLabels: jest.Mock) {
  mockRecord.current = newRecord();
  const languageProvider = { fetchLabels } as unknown as LanguageProvider;
  render(
    <LogQLEditor
      value={expr}
      onChange={jest.fn()}
      onRunQuery={jest.fn()}
      languageProvider={languageProvider}
      range={range}
    />
  );
}

const guideQuery = '{job="cosyvoice3"} |= "Generating audio" | line_format "{{.text_len}} chars, seed={{.seed}}"';
const WARNING = 4;

describe('LogQLEditor hints', () => {
  it("shows the guide's line_format hint under the editor and as a warning marker", async () => {
    const fetchLabels = jest.fn().mockResolvedValue(['filename', 'instance', 'job', 'level']);
    setup(guideQuery, fetchLabels);
    const hints = await screen.findByRole('status', { name: 'LogQL hints' });
    expect(hints).toHaveTextContent(
      'Hint: `text_len` and `seed` are not labels here (no stream has them and no stage before line_format extracts them, so they read as empty); add `| logfmt` or `| regexp` before line_format, e.g. {job="cosyvoice3"} |= "Generating audio" | regexp "text_len=(?P<text_len>[^, ]+)" | regexp "seed=(?P<seed>[^, ]+)" | line_format'
    );
    expect(fetchLabels).toHaveBeenCalledWith(range);
    await waitFor(() => expect(mockRecord.current.markers).toHaveLength(1));
    const marker = mockRecord.current.markers[0];
    expect(marker.severity).toBe(WARNING);
    expect(marker.message).toMatch(/^`text_len` and `seed` are not labels here/);
    expect(marker.startColumn).toBe(guideQuery.indexOf('| line_format') + 1);
    expect(marker.endColumn).toBe(guideQuery.length + 1);
  });

  it('gives no hint for a field that is a stream label', async () => {
    const fetchLabels = jest.fn().mockResolvedValue(['job', 'seed', 'text_len']);
    setup(guideQuery, fetchLabels);
    await waitFor(() => expect(fetchLabels).toHaveBeenCalled());
    expect(screen.queryByRole('status', { name: 'LogQL hints' })).not.toBeInTheDocument();
    expect(mockRecord.current.markers).toEqual([]);
  });

  it('asks for no labels when a parser extracts the fields', () => {
    const fetchLabels = jest.fn().mockResolvedValue(['job']);
    setup(
      '{job="cosyvoice3"} |= "Generating audio" | regexp "text_len=(?P<text_len>\\\\d+), seed=(?P<seed>\\\\d+)" | line_format "{{.text_len}} chars, seed={{.seed}}"',
      fetchLabels
    );
    expect(fetchLabels).not.toHaveBeenCalled();
    expect(screen.queryByRole('status', { name: 'LogQL hints' })).not.toBeInTheDocument();
  });

  it('gives no hint when the labels cannot be fetched', async () => {
    const fetchLabels = jest.fn().mockRejectedValue(new Error('backend down'));
    setup(guideQuery, fetchLabels);
    await waitFor(() => expect(fetchLabels).toHaveBeenCalled());
    expect(screen.queryByRole('status', { name: 'LogQL hints' })).not.toBeInTheDocument();
    expect(mockRecord.current.markers).toEqual([]);
  });
});
