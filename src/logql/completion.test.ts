import { LanguageProvider } from '../languageProvider';
import { getCompletionContext, getCompletions } from './completion';

/** Splits "text|cursor" at the caret marker ¦. */
function at(input: string): [string, number] {
  const i = input.indexOf('¦');
  return [input.replace('¦', ''), i];
}

describe('getCompletionContext', () => {
  it.each([
    ['{¦', { type: 'LABEL_NAME', selector: '', otherLabels: [] }],
    ['{jo¦', { type: 'LABEL_NAME', selector: '', otherLabels: [] }],
    ['{job="a", ¦}', { type: 'LABEL_NAME', selector: '{job="a"}', otherLabels: ['job'] }],
    ['{job=¦', { type: 'LABEL_VALUE', label: 'job', selector: '', prefix: '', quoted: false }],
    ['{job="co¦', { type: 'LABEL_VALUE', label: 'job', selector: '', prefix: 'co', quoted: true }],
    ['{job="a", level=~"¦"}', { type: 'LABEL_VALUE', label: 'level', selector: '{job="a"}', prefix: '', quoted: true }],
    ['{job="a"} | ¦', { type: 'PIPE_OPERATION' }],
    ['{job="a"} |= "x" | lo¦', { type: 'PIPE_OPERATION' }],
    ['rate({job="a"}[¦', { type: 'DURATION' }],
    ['sum by (¦', { type: 'GROUPING_LABEL' }],
    ['sum by (level, ¦', { type: 'GROUPING_LABEL' }],
    ['¦', { type: 'EXPRESSION_START' }],
    ['sum(¦', { type: 'EXPRESSION_START' }],
    ['{job="a"} |= "{¦', { type: 'NONE' }],
  ])('%s', (input, want) => {
    const [text, offset] = at(input);
    expect(getCompletionContext(text, offset)).toEqual(want);
  });
});

describe('getCompletions', () => {
  const fetch = jest.fn(async (path: string, params?: Record<string, string>) => {
    if (path === 'labels') {
      return { status: 'success', data: ['job', 'level', 'filename'] };
    }
    if (path === 'label/job/values') {
      return { status: 'success', data: ['cosyvoice3', 'say "hi"'] };
    }
    throw new Error(`unexpected ${path} ${JSON.stringify(params)}`);
  });
  const provider = new LanguageProvider(fetch);

  it('completes label names, skipping those already used', async () => {
    const [text, offset] = at('{job="a", ¦');
    const items = await getCompletions(text, offset, provider);
    expect(items.map((i) => i.label)).toEqual(['filename', 'level']);
    expect(items[0].insertText).toBe('filename=');
  });

  it('completes values with quoting, inside or outside an open quote', async () => {
    let [text, offset] = at('{job=¦');
    let items = await getCompletions(text, offset, provider);
    expect(items.map((i) => i.insertText)).toEqual(['"cosyvoice3"', '"say \\"hi\\""']);
    [text, offset] = at('{job="co¦');
    items = await getCompletions(text, offset, provider);
    expect(items[0]).toMatchObject({ insertText: 'cosyvoice3"', replaceBefore: 2 });
  });

  it('offers parsers after a pipe and durations in a range', async () => {
    let [text, offset] = at('{job="a"} | js¦');
    let items = await getCompletions(text, offset, provider);
    expect(items.map((i) => i.label)).toContain('json');
    expect(items[0].replaceBefore).toBe(2);
    [text, offset] = at('rate({job="a"}[¦');
    items = await getCompletions(text, offset, provider);
    expect(items.map((i) => i.label)).toContain('$__auto');
  });
});
