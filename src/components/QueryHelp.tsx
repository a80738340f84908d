import { css } from '@emotion/css';
import { GrafanaTheme2 } from '@grafana/data';
import { Button, useStyles2 } from '@grafana/ui';
import React from 'react';

/** The examples of the project's seed: what a CosyVoice3 operator asks first. */
export const QUERY_EXAMPLES: Array<{ title: string; expr: string }> = [
  { title: 'Lines containing "error"', expr: '{job="cosyvoice3"} |= "error"' },
  { title: 'Timeouts or failures (regular expression)', expr: '{job="cosyvoice3"} |~ "timeout|fail"' },
  { title: 'Lines per second over 5 minutes', expr: 'rate({job="cosyvoice3"}[5m])' },
  {
    title: 'CUDA out-of-memory errors per 5 minutes',
    expr: 'count_over_time({job="cosyvoice3"} |= "CUDA out of memory"[5m])',
  },
  { title: 'Log rate by level', expr: 'sum by (level) (rate({job="cosyvoice3"}[5m]))' },
];

interface Props {
  onClickExample: (expr: string) => void;
}

export function QueryHelp({ onClickExample }: Props) {
  const styles = useStyles2(getStyles);
  return (
    <div className={styles.wrapper} aria-label="LogQL help">
      <h5>LogQL examples</h5>
      <p className={styles.muted}>
        A query starts with a stream selector in braces, then line filters (<code>|=</code>, <code>!=</code>,{' '}
        <code>|~</code>, <code>!~</code>) and parsers (<code>| logfmt</code>, <code>| json</code>). Wrap it in a range
        function such as <code>rate(…[5m])</code> for a metric. Shift+Enter runs the query.
      </p>
      {QUERY_EXAMPLES.map((ex) => (
        <div key={ex.expr} className={styles.example}>
          <div className={styles.muted}>{ex.title}</div>
          <code className={styles.code}>{ex.expr}</code>
          <Button
            size="sm"
            variant="secondary"
            fill="text"
            onClick={() => onClickExample(ex.expr)}
            aria-label={`Use example: ${ex.expr}`}
          >
            Use
          </Button>
        </div>
      ))}
      <p className={styles.muted}>
        Alerting: a count over no lines is no series, not 0. For a rule on missing logs use{' '}
        <code>{'count_over_time({job="cosyvoice3"}[10m]) or vector(0)'}</code>.
      </p>
    </div>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  wrapper: css({
    border: `1px solid ${theme.colors.border.weak}`,
    borderRadius: theme.shape.radius.default,
    padding: theme.spacing(1),
    marginTop: theme.spacing(1),
  }),
  example: css({
    display: 'flex',
    alignItems: 'center',
    gap: theme.spacing(1),
    flexWrap: 'wrap',
    marginBottom: theme.spacing(0.5),
  }),
  code: css({ fontFamily: theme.typography.fontFamilyMonospace }),
  muted: css({ color: theme.colors.text.secondary }),
});
