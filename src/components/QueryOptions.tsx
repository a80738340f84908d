import { CoreApp, SelectableValue } from '@grafana/data';
import { Combobox, ComboboxOption, InlineField, InlineFieldRow, Input, RadioButtonGroup } from '@grafana/ui';
import React, { useState } from 'react';

import { isLogsQuery } from '../logql/parse';
import { LokalQuery, LokalQueryDirection, LokalQueryType, RESOLUTION_OPTIONS } from '../types';

interface Props {
  query: LokalQuery;
  onChange: (query: LokalQuery) => void;
  onRunQuery: () => void;
  app?: CoreApp;
}

const TYPE_OPTIONS: Array<SelectableValue<LokalQueryType>> = [
  { label: 'Range', value: LokalQueryType.Range, description: 'Lines or a series over the time range' },
  { label: 'Instant', value: LokalQueryType.Instant, description: 'One value per series at the end of the range' },
  { label: 'Live', value: LokalQueryType.Stream, description: 'Follow new lines as they are ingested' },
];

const DIRECTION_OPTIONS: Array<SelectableValue<LokalQueryDirection>> = [
  { label: 'Backward', value: LokalQueryDirection.Backward, description: 'Newest lines first' },
  { label: 'Forward', value: LokalQueryDirection.Forward, description: 'Oldest lines first' },
];

const RESOLUTIONS: Array<ComboboxOption<number>> = RESOLUTION_OPTIONS.map((r) => ({ label: `1/${r}`, value: r }));

/** A duration like 30s, 5m, 1h30m, or a template variable. */
export function isValidStep(step: string): boolean {
  return step === '' || /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w|y))+$/.test(step) || /^\$\w+$|^\$\{[^}]+\}$/.test(step);
}

/** Query options as in Grafana's Loki editor: type, line limit, legend, step/resolution, direction. */
export function QueryOptions({ query, onChange, onRunQuery, app }: Props) {
  const logs = isLogsQuery(query.expr ?? '');
  const alerting = app === CoreApp.UnifiedAlerting || app === CoreApp.CloudAlerting;
  const [maxLines, setMaxLines] = useState(query.maxLines?.toString() ?? '');
  const [step, setStep] = useState(query.step ?? '');
  // When the query changes from outside (a Loki panel pasted, undo), show its values.
  const [seen, setSeen] = useState({ maxLines: query.maxLines, step: query.step });
  if (seen.maxLines !== query.maxLines || seen.step !== query.step) {
    setSeen({ maxLines: query.maxLines, step: query.step });
    setMaxLines(query.maxLines?.toString() ?? '');
    setStep(query.step ?? '');
  }

  const update = (patch: Partial<LokalQuery>) => {
    onChange({ ...query, ...patch });
    onRunQuery();
  };

  const maxLinesInvalid = maxLines !== '' && !/^\d+$/.test(maxLines);
  return (
    <InlineFieldRow>
      <InlineField label="Type" labelWidth={8}>
        <RadioButtonGroup
          size="sm"
          options={alerting ? TYPE_OPTIONS.filter((o) => o.value !== LokalQueryType.Stream) : TYPE_OPTIONS}
          value={query.queryType ?? LokalQueryType.Range}
          onChange={(v) => update({ queryType: v })}
        />
      </InlineField>
      {logs && (
        <>
          <InlineField
            label="Line limit"
            labelWidth={11}
            invalid={maxLinesInvalid}
            error="A whole number of lines"
            tooltip="Most lines a log query returns; the backend default is 1000."
          >
            <Input
              width={10}
              value={maxLines}
              placeholder="1000"
              aria-label="Line limit"
              onChange={(e) => setMaxLines(e.currentTarget.value)}
              onBlur={() => {
                if (!maxLinesInvalid) {
                  update({ maxLines: maxLines === '' ? undefined : parseInt(maxLines, 10) });
                }
              }}
            />
          </InlineField>
          <InlineField label="Direction" labelWidth={11}>
            <RadioButtonGroup
              size="sm"
              options={DIRECTION_OPTIONS}
              value={query.direction ?? LokalQueryDirection.Backward}
              onChange={(v) => update({ direction: v })}
            />
          </InlineField>
        </>
      )}
      {!logs && (
        <>
          <InlineField label="Legend" labelWidth={8} tooltip="Series name, e.g. {{level}} on {{instance}}">
            <Input
              width={24}
              defaultValue={query.legendFormat ?? ''}
              placeholder="{{level}}"
              aria-label="Legend"
              onBlur={(e) => update({ legendFormat: e.currentTarget.value || undefined })}
            />
          </InlineField>
          <InlineField
            label="Step"
            labelWidth={7}
            invalid={!isValidStep(step)}
            error="A duration such as 30s or 5m"
            tooltip="Interval between points; empty lets the range and resolution decide."
          >
            <Input
              width={10}
              value={step}
              placeholder="auto"
              aria-label="Step"
              onChange={(e) => setStep(e.currentTarget.value)}
              onBlur={() => {
                if (isValidStep(step)) {
                  update({ step: step || undefined });
                }
              }}
            />
          </InlineField>
          <InlineField
            label="Resolution"
            labelWidth={11}
            htmlFor="lokal-resolution"
            tooltip="1/N of the interval the panel width implies."
          >
            <Combobox
              id="lokal-resolution"
              width={10}
              options={RESOLUTIONS}
              value={query.resolution ?? 1}
              onChange={(v) => update({ resolution: v.value })}
            />
          </InlineField>
        </>
      )}
    </InlineFieldRow>
  );
}
