import { dateTime } from '@grafana/data';

import { LanguageProvider, toNanoString } from './languageProvider';

const range = {
  from: dateTime(1_700_000_000_000),
  to: dateTime(1_700_003_600_000),
  raw: { from: 'now-1h', to: 'now' },
};

describe('LanguageProvider', () => {
  it('asks for labels with nanosecond times and sorts them', async () => {
    const fetch = jest.fn().mockResolvedValue({ status: 'success', data: ['level', 'job'] });
    const lp = new LanguageProvider(fetch);
    expect(await lp.fetchLabels(range)).toEqual(['job', 'level']);
    expect(fetch).toHaveBeenCalledWith('labels', { start: '1700000000000000000', end: '1700003600000000000' });
  });

  it('escapes label names in the values path and passes the selector', async () => {
    const fetch = jest.fn().mockResolvedValue({ status: 'success', data: ['b', 'a'] });
    const lp = new LanguageProvider(fetch);
    expect(await lp.fetchLabelValues('a/b', undefined, '{job="x"}')).toEqual(['a', 'b']);
    expect(fetch).toHaveBeenCalledWith('label/a%2Fb/values', { query: '{job="x"}' });
  });

  it('caches answers for a while, and not failures', async () => {
    let now = 0;
    const fetch = jest
      .fn()
      .mockRejectedValueOnce(new Error('down'))
      .mockResolvedValue({ status: 'success', data: ['job'] });
    const lp = new LanguageProvider(fetch, () => now);
    await expect(lp.fetchLabels()).rejects.toThrow('down');
    expect(await lp.fetchLabels()).toEqual(['job']);
    expect(await lp.fetchLabels()).toEqual(['job']);
    expect(fetch).toHaveBeenCalledTimes(2);
    now += 60_000;
    await lp.fetchLabels();
    expect(fetch).toHaveBeenCalledTimes(3);
  });

  it('reads null data as no values', async () => {
    const lp = new LanguageProvider(jest.fn().mockResolvedValue({ status: 'success', data: null }));
    expect(await lp.fetchLabels()).toEqual([]);
  });

  it.each([
    [undefined, 'empty response'],
    [{ status: 'error', error: 'bad selector' }, 'bad selector'],
    [{ status: 'success', data: [1, 2] }, 'unexpected response shape'],
    [{ status: 'success', data: 'job' }, 'unexpected response shape'],
  ])('explains a bad answer %j', async (rsp, msg) => {
    const lp = new LanguageProvider(jest.fn().mockResolvedValue(rsp));
    await expect(lp.fetchLabels()).rejects.toThrow(msg);
  });

  it('reads series and index stats, wrapped or not', async () => {
    const fetch = jest.fn(async (path: string) => {
      if (path === 'series') {
        return { status: 'success', data: [{ job: 'a' }] };
      }
      return { streams: 2, chunks: 5, bytes: 1024, entries: 10 };
    });
    const lp = new LanguageProvider(fetch);
    expect(await lp.fetchSeries('{job="a"}', range)).toEqual([{ job: 'a' }]);
    expect(await lp.fetchIndexStats('{job="a"}')).toEqual({ streams: 2, chunks: 5, bytes: 1024, entries: 10 });
    const wrapped = new LanguageProvider(jest.fn().mockResolvedValue({ status: 'success', data: { streams: 1 } }));
    expect(await wrapped.fetchIndexStats('{job="a"}')).toEqual({ streams: 1, chunks: 0, bytes: 0, entries: 0 });
  });

  it('formats nanoseconds exactly', () => {
    expect(toNanoString(1_700_000_000_123)).toBe('1700000000123000000');
  });
});
