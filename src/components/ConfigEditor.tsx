import { css } from '@emotion/css';
import { DataSourcePluginOptionsEditorProps, GrafanaTheme2 } from '@grafana/data';
import {
  Alert,
  Button,
  Combobox,
  ComboboxOption,
  Field,
  FieldSet,
  IconButton,
  Input,
  RadioButtonGroup,
  TextArea,
  useStyles2,
} from '@grafana/ui';
import React, { useState } from 'react';

import { LokalJsonData, ScrapeConfig, StorageSettings } from '../types';
import {
  detectPreset,
  FORMAT_PRESETS,
  formatLabels,
  isValidByteSize,
  isValidDuration,
  newSource,
  parseLabels,
  parseScrapeConfigsYAML,
  PATH_EXCLUDE_LABEL,
  PATH_LABEL,
  PresetId,
  presetStages,
  scrapeConfigsToYAML,
  setExtraLabels,
  setPath,
  validateSource,
} from './sources';

type Props = DataSourcePluginOptionsEditorProps<LokalJsonData>;

const PRESET_OPTIONS: Array<ComboboxOption<PresetId | 'custom'>> = FORMAT_PRESETS.map((p) => ({
  label: p.label,
  value: p.id,
  description: p.description,
}));

const CUSTOM_OPTION: ComboboxOption<PresetId | 'custom'> = {
  label: 'Custom stages',
  value: 'custom',
  description: 'Hand-written pipeline_stages, kept as they are.',
};

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const styles = useStyles2(getStyles);
  const jsonData = options.jsonData ?? {};
  const sources = jsonData.scrape_configs ?? [];
  const storage = jsonData.storage ?? {};
  // The backend takes either the list or the YAML, never both: the editor
  // shows one of them and converts when switching.
  const [mode, setMode] = useState<'form' | 'yaml'>(jsonData.scrape_configs_yaml ? 'yaml' : 'form');
  const [modeError, setModeError] = useState<string>();
  const yamlText = jsonData.scrape_configs_yaml ?? '';
  const yamlCheck = mode === 'yaml' ? parseScrapeConfigsYAML(yamlText) : {};

  const switchMode = (next: 'form' | 'yaml') => {
    setModeError(undefined);
    if (next === mode) {
      return;
    }
    if (next === 'yaml') {
      setJsonData({ scrape_configs: undefined, scrape_configs_yaml: scrapeConfigsToYAML(sources) });
      setMode('yaml');
      return;
    }
    const parsed = parseScrapeConfigsYAML(yamlText);
    if (parsed.error) {
      setModeError(`Fix the YAML before switching to the form: ${parsed.error}`);
      return;
    }
    setJsonData({ scrape_configs: parsed.configs, scrape_configs_yaml: undefined });
    setMode('form');
  };

  const setJsonData = (patch: Partial<LokalJsonData>) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, ...patch } });
  const setSources = (next: ScrapeConfig[]) => setJsonData({ scrape_configs: next });
  const setSource = (i: number, sc: ScrapeConfig) => setSources(sources.map((s, j) => (j === i ? sc : s)));
  const setStorage = (patch: Partial<StorageSettings>) => {
    const next: StorageSettings = { ...storage, ...patch };
    for (const k of Object.keys(next) as Array<keyof StorageSettings>) {
      if (next[k] === '' || next[k] === undefined) {
        delete next[k];
      }
    }
    setJsonData({ storage: next });
  };

  return (
    <div className={styles.wrapper}>
      <Alert severity="info" title="Which files Lokal may read">
        Lokal reads files only below directories the Grafana server&apos;s operator allows: the{' '}
        <code>allowed_paths</code> key (comma-separated directories) in grafana.ini&apos;s{' '}
        <code>[plugin.lokal-logql-datasource]</code> section, or the <code>GF_PLUGIN_ALLOWED_PATHS</code> environment
        variable. A path outside them is reported by Save &amp; test. Symbolic links are resolved before the check.
      </Alert>

      <FieldSet label="Sources">
        <p className={styles.muted}>
          Each source is a Promtail scrape config: files matched by a glob (<code>**</code> allowed), the labels their
          lines get, and a format preset that writes the matching pipeline stages. Lines also get a{' '}
          <code>filename</code> label and a detected <code>level</code>.
        </p>
        <Field label="Edit sources as">
          <RadioButtonGroup
            options={[
              { label: 'Form', value: 'form' },
              { label: 'Promtail YAML', value: 'yaml' },
            ]}
            value={mode}
            onChange={(v) => switchMode(v as 'form' | 'yaml')}
          />
        </Field>
        {modeError && (
          <Alert severity="error" title="Cannot switch to the form">
            {modeError}
          </Alert>
        )}
        {mode === 'form' && (
          <>
            {sources.map((sc, i) => (
              <SourceEditor
                key={i}
                index={i}
                source={sc}
                onChange={(next) => setSource(i, next)}
                onRemove={() => setSources(sources.filter((_, j) => j !== i))}
              />
            ))}
            <Button
              icon="plus"
              variant="secondary"
              size="sm"
              onClick={() => setSources([...sources, newSource(sources.length)])}
            >
              Add source
            </Button>
          </>
        )}
        {mode === 'yaml' && (
          <Field
            label="scrape_configs YAML"
            description="Paste the scrape_configs of an existing promtail.yaml (the list, or the whole scrape_configs: section). Save & test checks every key: unsupported ones are rejected, never ignored."
            invalid={!!yamlCheck.error}
            error={yamlCheck.error}
          >
            <TextArea
              className={styles.code}
              rows={14}
              aria-label="scrape_configs YAML"
              placeholder={YAML_PLACEHOLDER}
              value={yamlText}
              onChange={(e) => setJsonData({ scrape_configs_yaml: e.currentTarget.value || undefined })}
            />
          </Field>
        )}
      </FieldSet>

      <FieldSet label="Storage">
        <ValidatedInput
          label="Store path"
          description="Directory of this datasource's store, below the operator's data_path. Empty: a directory named after this datasource."
          placeholder="/var/lib/grafana/lokal/cosyvoice"
          value={storage.path ?? ''}
          onCommit={(v) => setStorage({ path: v })}
        />
        <ValidatedInput
          label="Retention"
          description="Entries older than this are dropped, a day at a time. 0s keeps everything."
          placeholder="168h"
          value={storage.retention === undefined ? '' : String(storage.retention)}
          validate={(v) => (isValidDuration(v) ? undefined : 'A duration such as 168h, 7d or 0s')}
          onCommit={(v) => setStorage({ retention: v })}
        />
        <ValidatedInput
          label="Maximum size"
          description="When the store grows past this, the oldest days are dropped."
          placeholder="10GiB"
          value={storage.max_bytes === undefined ? '' : String(storage.max_bytes)}
          validate={(v) => (isValidByteSize(v) ? undefined : 'A size such as 10GiB or 500MB')}
          onCommit={(v) => setStorage({ max_bytes: v })}
        />
        <ValidatedInput
          label="Poll interval"
          description="How often files are checked where the filesystem sends no change events."
          placeholder="1s"
          value={jsonData.poll_interval ?? ''}
          validate={(v) => (isValidDuration(v) ? undefined : 'A duration such as 1s or 500ms')}
          onCommit={(v) => setJsonData({ poll_interval: v || undefined })}
        />
      </FieldSet>
    </div>
  );
}

const YAML_PLACEHOLDER = `- job_name: cosyvoice3
  static_configs:
    - labels:
        job: cosyvoice3
        __path__: /root/CosyVoice/logs/*.log
  pipeline_stages:
    - multiline:
        firstline: '^\\[[A-Z]+\\]'`;

interface SourceProps {
  index: number;
  source: ScrapeConfig;
  onChange: (sc: ScrapeConfig) => void;
  onRemove: () => void;
}

function SourceEditor({ index, source, onChange, onRemove }: SourceProps) {
  const styles = useStyles2(getStyles);
  const labels = source.static_configs[0]?.labels ?? {};
  const preset = detectPreset(source.pipeline_stages);
  const [labelText, setLabelText] = useState(formatLabels(labels));
  const [labelError, setLabelError] = useState<string>();
  const problems = validateSource(source);
  const extraStaticConfigs = source.static_configs.length - 1;

  return (
    <div className={styles.source} aria-label={`Source ${index + 1}`}>
      <div className={styles.sourceHeader}>
        <span className={styles.sourceTitle}>Source {index + 1}</span>
        <IconButton name="trash-alt" tooltip="Remove this source" onClick={onRemove} />
      </div>
      <Field label="Job name" description="Promtail's job_name; also a good job label.">
        <Input
          aria-label="Job name"
          value={source.job_name}
          onChange={(e) => onChange({ ...source, job_name: e.currentTarget.value })}
        />
      </Field>
      <Field label="Path glob" description="Absolute glob of the files to tail, e.g. /root/CosyVoice/logs/*.log">
        <Input
          aria-label="Path glob"
          value={labels[PATH_LABEL] ?? ''}
          placeholder="/root/CosyVoice/logs/*.log"
          onChange={(e) => onChange(setPath(source, PATH_LABEL, e.currentTarget.value))}
        />
      </Field>
      <Field label="Exclude glob" description="Files matching this are skipped, e.g. /root/CosyVoice/logs/*.gz">
        <Input
          aria-label="Exclude glob"
          value={labels[PATH_EXCLUDE_LABEL] ?? ''}
          onChange={(e) => onChange(setPath(source, PATH_EXCLUDE_LABEL, e.currentTarget.value))}
        />
      </Field>
      <Field
        label="Labels"
        description="name=value pairs, comma-separated, e.g. job=cosyvoice3, instance=gpu-box"
        invalid={!!labelError}
        error={labelError}
      >
        <Input
          aria-label="Labels"
          value={labelText}
          onChange={(e) => setLabelText(e.currentTarget.value)}
          onBlur={() => {
            const parsed = parseLabels(labelText);
            setLabelError(parsed.error);
            if (!parsed.error) {
              onChange(setExtraLabels(source, parsed.labels));
            }
          }}
        />
      </Field>
      <Field
        label="Format"
        htmlFor={`lokal-format-${index}`}
        description={FORMAT_PRESETS.find((p) => p.id === preset)?.description ?? CUSTOM_OPTION.description}
      >
        <Combobox
          id={`lokal-format-${index}`}
          options={preset === 'custom' ? [...PRESET_OPTIONS, CUSTOM_OPTION] : PRESET_OPTIONS}
          value={preset}
          onChange={(v) => {
            if (v.value && v.value !== 'custom') {
              onChange({ ...source, pipeline_stages: presetStages(v.value) });
            }
          }}
        />
      </Field>
      {extraStaticConfigs > 0 && (
        <p className={styles.muted}>
          This source has {extraStaticConfigs} more static config{extraStaticConfigs > 1 ? 's' : ''}, kept as they are.
        </p>
      )}
      {problems.length > 0 && (
        <div className={styles.problems} role="alert">
          {problems.map((p) => (
            <div key={p}>{p}</div>
          ))}
        </div>
      )}
    </div>
  );
}

interface ValidatedInputProps {
  label: string;
  description: string;
  placeholder: string;
  value: string;
  validate?: (v: string) => string | undefined;
  onCommit: (v: string) => void;
}

/** An input that keeps what is typed and saves it on blur only when valid. */
function ValidatedInput({ label, description, placeholder, value, validate, onCommit }: ValidatedInputProps) {
  const [text, setText] = useState(value);
  const error = validate?.(text.trim());
  return (
    <Field label={label} description={description} invalid={!!error} error={error}>
      <Input
        aria-label={label}
        value={text}
        placeholder={placeholder}
        onChange={(e) => setText(e.currentTarget.value)}
        onBlur={() => {
          if (!error) {
            onCommit(text.trim());
          }
        }}
      />
    </Field>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  wrapper: css({ maxWidth: 900 }),
  muted: css({ color: theme.colors.text.secondary }),
  code: css({ fontFamily: theme.typography.fontFamilyMonospace }),
  source: css({
    border: `1px solid ${theme.colors.border.weak}`,
    borderRadius: theme.shape.radius.default,
    padding: theme.spacing(1, 2),
    marginBottom: theme.spacing(2),
  }),
  sourceHeader: css({ display: 'flex', justifyContent: 'space-between', alignItems: 'center' }),
  sourceTitle: css({ fontWeight: theme.typography.fontWeightMedium }),
  problems: css({ color: theme.colors.error.text, marginBottom: theme.spacing(1) }),
});
