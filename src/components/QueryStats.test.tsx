import { render, screen } from '@testing-library/react';
import React from 'react';

import { LanguageProvider } from '../languageProvider';
import { formatBytes, QueryStats } from './QueryStats';

describe('QueryStats', () => {
  it('shows what the index says a valid query scans', async () => {
    const fetch = jest.fn().mockResolvedValue({ streams: 3, chunks: 7, bytes: 5 * 1024 * 1024, entries: 12345 });
    render(<QueryStats expr={'{job="a"} |= "x"'} languageProvider={new LanguageProvider(fetch)} />);
    expect(await screen.findByLabelText('Query stats')).toHaveTextContent(
      'This query will scan 3 streams, 5.0 MiB (12,345 lines) in the selected range.'
    );
    expect(fetch).toHaveBeenCalledWith('index/stats', { query: '{job="a"} |= "x"' });
  });

  it('asks nothing for an invalid query and shows nothing when the backend cannot answer', async () => {
    const fetch = jest.fn().mockRejectedValue(new Error('404'));
    const { rerender } = render(<QueryStats expr={'{job='} languageProvider={new LanguageProvider(fetch)} />);
    await new Promise((r) => setTimeout(r, 800));
    expect(fetch).not.toHaveBeenCalled();
    rerender(<QueryStats expr={'{job="a"}'} languageProvider={new LanguageProvider(fetch)} />);
    await new Promise((r) => setTimeout(r, 800));
    expect(fetch).toHaveBeenCalled();
    expect(screen.queryByLabelText('Query stats')).not.toBeInTheDocument();
  });

  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.5 KiB'],
    [11 * 1024 * 1024 * 1024, '11 GiB'],
  ])('formats %d bytes as %s', (n, want) => {
    expect(formatBytes(n)).toBe(want);
  });
});
