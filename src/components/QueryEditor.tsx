import { css } from '@emotion/css';
import { CoreApp, GrafanaTheme2, QueryEditorProps } from '@grafana/data';
import { Alert, Button, Stack, useStyles2 } from '@grafana/ui';
import React, { useMemo, useState } from 'react';

import { DataSource } from '../datasource';
import { backendErrors } from '../logql/backendErrors';
import { selectorMatchers } from '../logql/modify';
import { isLogsQuery } from '../logql/parse';
import { LokalJsonData, LokalQuery } from '../types';
import { LabelBrowser } from './LabelBrowser';
import { LogQLEditor } from './LogQLEditor';
import { QueryHelp } from './QueryHelp';
import { QueryOptions } from './QueryOptions';
import { QueryStats } from './QueryStats';

type Props = QueryEditorProps<DataSource, LokalQuery, LokalJsonData>;

export function QueryEditor({ query, onChange, onRunQuery, datasource, range, data, app }: Props) {
  const styles = useStyles2(getStyles);
  const [browserOpen, setBrowserOpen] = useState(false);
  const [helpOpen, setHelpOpen] = useState(false);
  const expr = query.expr ?? '';

  const alerting = app === CoreApp.UnifiedAlerting || app === CoreApp.CloudAlerting;
  const hints = useMemo(() => datasource.getQueryHints(query, data?.series ?? []), [datasource, query, data]);
  const serverErrors = useMemo(() => backendErrors(expr, data?.series, query.refId), [expr, data, query.refId]);

  const setExpr = (next: string, run = false) => {
    onChange({ ...query, expr: next });
    if (run) {
      onRunQuery();
    }
  };

  return (
    <div className={styles.wrapper}>
      <Stack gap={1} alignItems="flex-start">
        <Button
          size="sm"
          variant="secondary"
          icon={browserOpen ? 'angle-down' : 'angle-right'}
          onClick={() => setBrowserOpen(!browserOpen)}
          aria-expanded={browserOpen}
        >
          Label browser
        </Button>
        <div className={styles.editor}>
          <LogQLEditor
            value={expr}
            onChange={(v) => setExpr(v)}
            onRunQuery={onRunQuery}
            languageProvider={datasource.languageProvider}
            range={range}
            backendErrors={serverErrors}
          />
        </div>
        <Button
          size="sm"
          variant="secondary"
          fill="text"
          icon="question-circle"
          onClick={() => setHelpOpen(!helpOpen)}
          aria-expanded={helpOpen}
          tooltip="LogQL examples"
        >
          Help
        </Button>
      </Stack>
      {browserOpen && (
        <LabelBrowser
          languageProvider={datasource.languageProvider}
          range={range}
          initial={selectorMatchers(expr)}
          onUse={(selector) => {
            setBrowserOpen(false);
            setExpr(selector, true);
          }}
          onClose={() => setBrowserOpen(false)}
        />
      )}
      {alerting && isLogsQuery(expr) && (
        <Alert severity="warning" title="Alert rules need a metric query">
          A log query returns lines, not a value to compare. Count them instead, e.g.{' '}
          <code>{'count_over_time({job="cosyvoice3"} |= "CUDA out of memory"[5m])'}</code>.
        </Alert>
      )}
      {hints.map((hint) => (
        <div key={hint.type} className={styles.hint} role="note">
          {hint.label}{' '}
          {hint.fix?.action && (
            <Button
              size="sm"
              variant="secondary"
              fill="text"
              onClick={() => {
                onChange(datasource.modifyQuery(query, hint.fix!.action!));
                onRunQuery();
              }}
            >
              {hint.fix.label}
            </Button>
          )}
        </div>
      ))}
      <QueryStats expr={expr} languageProvider={datasource.languageProvider} range={range} />
      <QueryOptions query={query} onChange={onChange} onRunQuery={onRunQuery} app={app} />
      {helpOpen && <QueryHelp onClickExample={(ex) => setExpr(ex, true)} />}
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  wrapper: css({ display: 'flex', flexDirection: 'column', gap: theme.spacing(0.5), width: '100%' }),
  editor: css({ flexGrow: 1, minWidth: 0 }),
  hint: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize }),
});
