import { css } from '@emotion/css';
import { GrafanaTheme2, TimeRange } from '@grafana/data';
import { Alert, Button, Input, Stack, Tag, useStyles2 } from '@grafana/ui';
import React, { useEffect, useMemo, useState } from 'react';

import type { LanguageProvider } from '../languageProvider';
import { escapeRegexInString, quoteString } from '../logql/parse';

interface Props {
  languageProvider: LanguageProvider;
  range?: TimeRange;
  /** Called with the built selector when the user picks "Use query". */
  onUse: (selector: string) => void;
  onClose: () => void;
  /** The current query's selector matchers: equality ones start out chosen. */
  initial?: Array<{ name: string; op: string; value: string }>;
}

/** Builds a stream selector from the chosen values: one value is =, several are =~ "a|b". */
export function buildSelector(selected: Record<string, string[]>): string {
  const matchers = Object.entries(selected)
    .filter(([, values]) => values.length > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, values]) =>
      values.length === 1
        ? `${name}=${quoteString(values[0])}`
        : `${name}=~"${values.map(escapeRegexInString).join('|')}"`
    );
  return `{${matchers.join(', ')}}`;
}

/**
 * Label browser: pick label names, then their values (each list narrowed by
 * what is already chosen), and get a stream selector.
 */
export function LabelBrowser({ languageProvider, range, onUse, onClose, initial = [] }: Props) {
  const styles = useStyles2(getStyles);
  const [names, setNames] = useState<string[]>([]);
  const [selected, setSelected] = useState<Record<string, string[]>>(() => {
    const out: Record<string, string[]> = {};
    for (const m of initial) {
      if (m.op === '=') {
        out[m.name] = [...(out[m.name] ?? []), m.value];
      }
    }
    return out;
  });
  const [active, setActive] = useState<string[]>(() => Object.keys(selected));
  const [values, setValues] = useState<Record<string, string[]>>({});
  const [search, setSearch] = useState('');
  const [error, setError] = useState<string>();

  useEffect(() => {
    let cancelled = false;
    languageProvider
      .fetchLabels(range)
      .then((n) => !cancelled && setNames(n.filter((x) => !x.startsWith('__'))))
      .catch((e: Error) => !cancelled && setError(`Could not load label names: ${e.message}`));
    return () => {
      cancelled = true;
    };
  }, [languageProvider, range]);

  const selector = useMemo(() => buildSelector(selected), [selected]);

  useEffect(() => {
    let cancelled = false;
    for (const name of active) {
      // values of one label, narrowed by the other labels' choices
      const others = Object.fromEntries(Object.entries(selected).filter(([n]) => n !== name));
      const narrow = buildSelector(others);
      languageProvider
        .fetchLabelValues(name, range, narrow === '{}' ? undefined : narrow)
        .then((v) => !cancelled && setValues((prev) => ({ ...prev, [name]: v })))
        .catch((e: Error) => !cancelled && setError(`Could not load values of ${name}: ${e.message}`));
    }
    return () => {
      cancelled = true;
    };
  }, [active, selected, languageProvider, range]);

  const toggleName = (name: string) => {
    if (active.includes(name)) {
      setActive(active.filter((n) => n !== name));
      const { [name]: _, ...rest } = selected;
      setSelected(rest);
    } else {
      setActive([...active, name]);
    }
  };

  const toggleValue = (name: string, value: string) => {
    const cur = selected[name] ?? [];
    const next = cur.includes(value) ? cur.filter((v) => v !== value) : [...cur, value];
    setSelected({ ...selected, [name]: next });
  };

  const empty = selector === '{}';
  return (
    <div className={styles.wrapper} aria-label="Label browser">
      {error && (
        <Alert severity="warning" title="Label browser" onRemove={() => setError(undefined)}>
          {error}
        </Alert>
      )}
      <div className={styles.heading}>1. Select labels to search in</div>
      <div className={styles.list}>
        {names.length === 0 && !error && (
          <span className={styles.muted}>No labels yet: has anything been ingested?</span>
        )}
        {names.map((n) => (
          <Tag
            key={n}
            name={n}
            className={active.includes(n) ? styles.activeTag : styles.tag}
            onClick={() => toggleName(n)}
            aria-pressed={active.includes(n)}
          />
        ))}
      </div>
      {active.length > 0 && (
        <>
          <div className={styles.heading}>2. Find values for the selected labels</div>
          <Input
            value={search}
            placeholder="Filter values"
            onChange={(e) => setSearch(e.currentTarget.value)}
            aria-label="Filter label values"
            width={40}
          />
          {active.map((name) => (
            <div key={name} className={styles.values}>
              <div className={styles.valueLabel}>{name}</div>
              <div className={styles.list}>
                {(values[name] ?? [])
                  .filter((v) => v.toLowerCase().includes(search.toLowerCase()))
                  .slice(0, 200)
                  .map((v) => (
                    <Tag
                      key={v}
                      name={v}
                      className={(selected[name] ?? []).includes(v) ? styles.activeTag : styles.tag}
                      onClick={() => toggleValue(name, v)}
                      aria-pressed={(selected[name] ?? []).includes(v)}
                    />
                  ))}
              </div>
            </div>
          ))}
        </>
      )}
      <div className={styles.heading}>3. Resulting selector</div>
      <pre className={styles.selector} aria-label="Resulting selector">
        {selector}
      </pre>
      <Stack gap={1}>
        <Button size="sm" disabled={empty} onClick={() => onUse(selector)}>
          Use query
        </Button>
        <Button
          size="sm"
          variant="secondary"
          onClick={() => {
            setSelected({});
            setActive([]);
          }}
        >
          Clear
        </Button>
        <Button size="sm" variant="secondary" fill="text" onClick={onClose}>
          Close
        </Button>
      </Stack>
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  wrapper: css({
    border: `1px solid ${theme.colors.border.weak}`,
    borderRadius: theme.shape.radius.default,
    padding: theme.spacing(1),
    marginBottom: theme.spacing(1),
  }),
  heading: css({ fontWeight: theme.typography.fontWeightMedium, margin: theme.spacing(1, 0, 0.5) }),
  list: css({ display: 'flex', flexWrap: 'wrap', gap: theme.spacing(0.5), maxHeight: 160, overflowY: 'auto' }),
  values: css({ marginTop: theme.spacing(1) }),
  valueLabel: css({ color: theme.colors.text.secondary, marginBottom: theme.spacing(0.5) }),
  tag: css({ cursor: 'pointer', background: theme.colors.background.secondary, color: theme.colors.text.primary }),
  activeTag: css({
    cursor: 'pointer',
    background: theme.colors.primary.main,
    color: theme.colors.primary.contrastText,
  }),
  muted: css({ color: theme.colors.text.secondary }),
  selector: css({ margin: theme.spacing(0.5, 0, 1), whiteSpace: 'pre-wrap' }),
});
