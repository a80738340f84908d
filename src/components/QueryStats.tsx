import { css } from '@emotion/css';
import { GrafanaTheme2, TimeRange } from '@grafana/data';
import { useStyles2 } from '@grafana/ui';
import React, { useEffect, useState } from 'react';

import type { IndexStats, LanguageProvider } from '../languageProvider';
import { findSyntaxErrors } from '../logql/parse';

// Wait for typing to pause before asking the index what a query would touch.
const STATS_DEBOUNCE_MS = 600;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

interface Props {
  expr: string;
  languageProvider: LanguageProvider;
  range?: TimeRange;
}

/**
 * "This query will scan …": what the index says a query touches in the
 * current range, so a user sees a costly query before running it. The
 * backend's index/stats answers from the index alone; when it cannot, the
 * hint is simply absent (it is advice, not a result).
 */
export function QueryStats({ expr, languageProvider, range }: Props) {
  const styles = useStyles2(getStyles);
  const [answer, setAnswer] = useState<{ expr: string; stats: IndexStats }>();

  useEffect(() => {
    if (expr.trim() === '' || findSyntaxErrors(expr).length > 0) {
      return;
    }
    let cancelled = false;
    const timer = setTimeout(() => {
      languageProvider
        .fetchIndexStats(expr, range)
        .then((stats) => !cancelled && setAnswer({ expr, stats }))
        .catch(() => undefined);
    }, STATS_DEBOUNCE_MS);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [expr, languageProvider, range]);

  if (!answer || answer.expr !== expr) {
    return null;
  }
  const { streams, bytes, entries } = answer.stats;
  return (
    <div className={styles.stats} aria-label="Query stats">
      This query will scan {streams} stream{streams === 1 ? '' : 's'}, {formatBytes(bytes)} (
      {entries.toLocaleString('en-US')} lines) in the selected range.
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  stats: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize }),
});
