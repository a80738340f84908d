import { css, CSSObject } from '@emotion/css';
import { GrafanaTheme2, TimeRange } from '@grafana/data';
import { CodeEditor, Monaco, MonacoEditor, monacoTypes, useStyles2 } from '@grafana/ui';
import React, { KeyboardEvent, useCallback, useEffect, useMemo, useRef, useState } from 'react';

import type { LanguageProvider } from '../languageProvider';
import { CompletionItem, getCompletions } from '../logql/completion';
import { HighlightToken, highlightTokens, TokenKind } from '../logql/highlight';
import { findFieldHints, LogQLHint, readsUnextractedFields } from '../logql/hints';
import { formatBackendError } from '../logql/backendErrors';
import { findSyntaxErrors, formatSyntaxError, LogQLSyntaxError } from '../logql/parse';

export const LOGQL_LANGUAGE_ID = 'lokal-logql';

// Editor size in pixels: one line at least, a dozen at most (then it scrolls).
const LINE_HEIGHT = 19;
const PADDING = 10;
const MIN_HEIGHT = LINE_HEIGHT + PADDING;
const MAX_HEIGHT = 12 * LINE_HEIGHT + PADDING;

interface Props {
  value: string;
  onChange: (value: string) => void;
  onRunQuery: () => void;
  languageProvider: LanguageProvider;
  range?: TimeRange;
  /**
   * The backend's parse and validation errors of this very text, with their
   * spans (see logql/backendErrors): underlined like the editor's own
   * syntax errors, which take precedence when there are any.
   */
  backendErrors?: LogQLSyntaxError[];
}

interface Mounted {
  editor: MonacoEditor;
  monaco: Monaco;
  decorations: monacoTypes.editor.IEditorDecorationsCollection;
  disposables: Array<{ dispose: () => void }>;
}

/**
 * The LogQL code editor: Grafana's Monaco editor, with highlighting, error
 * markers and hints computed from the lezer-logql tree and completion of
 * label names and values from the backend. Shift+Enter runs the query.
 */
export function LogQLEditor({ value, onChange, onRunQuery, languageProvider, range, backendErrors }: Props) {
  const styles = useStyles2(getStyles);
  const syntaxErrors = useMemo(() => findSyntaxErrors(value), [value]);
  const fromBackend = syntaxErrors.length === 0 && backendErrors !== undefined && backendErrors.length > 0;
  const errors = fromBackend ? backendErrors : syntaxErrors;
  const tokens = useMemo(() => highlightTokens(value), [value]);
  const streamLabels = useStreamLabels(languageProvider, range, readsUnextractedFields(value));
  const hints = useMemo(() => findFieldHints(value, streamLabels), [value, streamLabels]);
  const mounted = useRef<Mounted | null>(null);
  // Monaco's content height, wrapped lines included, so the editor grows with the query.
  const [contentHeight, setContentHeight] = useState<number>();
  // Monaco callbacks outlive renders: they read the latest props through this ref.
  const latest = useRef({ languageProvider, range, styles, errors });
  useEffect(() => {
    latest.current = { languageProvider, range, styles, errors };
  });

  useEffect(() => {
    if (mounted.current) {
      paint(mounted.current, tokens, errors, hints, styles);
    }
  }, [tokens, errors, hints, styles]);

  useEffect(
    () => () => {
      mounted.current?.disposables.forEach((d) => d.dispose());
      mounted.current = null;
    },
    []
  );

  const onBeforeEditorMount = useCallback((monaco: Monaco) => {
    if (!monaco.languages.getLanguages().some((l) => l.id === LOGQL_LANGUAGE_ID)) {
      monaco.languages.register({ id: LOGQL_LANGUAGE_ID });
      monaco.languages.setLanguageConfiguration(LOGQL_LANGUAGE_ID, {
        // no bracket pairs: Monaco cannot tell brackets inside strings (regexps) from real ones
        autoClosingPairs: [
          { open: '{', close: '}' },
          { open: '(', close: ')' },
          { open: '[', close: ']' },
          { open: '"', close: '"' },
          { open: '`', close: '`' },
        ],
      });
    }
  }, []);

  const onEditorDidMount = useCallback((editor: MonacoEditor, monaco: Monaco) => {
    const state: Mounted = { editor, monaco, decorations: editor.createDecorationsCollection(), disposables: [] };
    mounted.current = state;
    // One provider per editor: it answers only for its own model, so
    // several queries on a panel each complete against their own text.
    state.disposables.push(
      monaco.languages.registerCompletionItemProvider(LOGQL_LANGUAGE_ID, {
        triggerCharacters: ['{', ',', '=', '"', '|', '(', '[', ' ', '~'],
        provideCompletionItems: async (model, position) => {
          if (model !== editor.getModel()) {
            return { suggestions: [] };
          }
          const offset = model.getOffsetAt(position);
          let items: CompletionItem[];
          try {
            items = await getCompletions(
              model.getValue(),
              offset,
              latest.current.languageProvider,
              latest.current.range
            );
          } catch (err) {
            // metadata is a convenience: say why it is missing, keep typing
            items = [];
            console.warn('Lokal: label completion failed', err);
          }
          return { suggestions: items.map((it) => toMonacoItem(monaco, model, position, it)) };
        },
      })
    );
    state.disposables.push(editor.onDidContentSizeChange((e) => setContentHeight(e.contentHeight)));
    // The text is the last rendered value until the user types, so the
    // errors of that render (the backend's included) still fit it.
    const text = editor.getValue();
    const errs = findSyntaxErrors(text);
    paint(state, highlightTokens(text), errs.length > 0 ? errs : latest.current.errors, [], latest.current.styles);
  }, []);

  // The text last run, so leaving the editor runs a changed query once, as in
  // Grafana's Loki editor, and an unchanged one not at all.
  const lastRun = useRef(value);
  const run = (v: string) => {
    lastRun.current = v;
    onRunQuery();
  };

  const onKeyDownCapture = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key === 'Enter' && e.shiftKey) {
      e.preventDefault();
      e.stopPropagation();
      const v = mounted.current?.editor.getValue() ?? value;
      if (v !== value) {
        onChange(v);
      }
      run(v);
    }
  };

  const lines = Math.max(1, value.split('\n').length);
  const height = Math.min(Math.max(contentHeight ?? lines * LINE_HEIGHT + PADDING, MIN_HEIGHT), MAX_HEIGHT);
  return (
    <div className={styles.wrapper} onKeyDownCapture={onKeyDownCapture} data-testid="lokal-logql-editor">
      <CodeEditor
        value={value}
        language={LOGQL_LANGUAGE_ID}
        height={height}
        showMiniMap={false}
        showLineNumbers={false}
        monacoOptions={{
          wordWrap: 'on',
          lineNumbers: 'off',
          folding: false,
          scrollBeyondLastLine: false,
          renderLineHighlight: 'none',
          overviewRulerLanes: 0,
          fixedOverflowWidgets: true,
          suggestFontSize: 12,
          padding: { top: 6, bottom: 4 },
          // Monaco knows no LogQL strings, so it would colour brackets inside regexps.
          bracketPairColorization: { enabled: false },
        }}
        onChange={onChange}
        onBlur={(v) => {
          if (v !== value) {
            onChange(v);
          }
          if (v !== lastRun.current) {
            run(v);
          }
        }}
        onBeforeEditorMount={onBeforeEditorMount}
        onEditorDidMount={onEditorDidMount}
      />
      {errors.length > 0 && (
        <div
          className={styles.errors}
          role="alert"
          aria-label={fromBackend ? 'LogQL query errors' : 'LogQL syntax errors'}
        >
          {errors.slice(0, 3).map((err) => (
            <div key={`${err.from}-${err.to}`}>{fromBackend ? formatBackendError(err) : formatSyntaxError(err)}</div>
          ))}
        </div>
      )}
      {errors.length === 0 && hints.length > 0 && (
        <div className={styles.hints} role="status" aria-label="LogQL hints">
          {hints.slice(0, 3).map((h) => (
            <div key={`${h.from}-${h.to}`}>Hint: {h.message}</div>
          ))}
        </div>
      )}
    </div>
  );
}

const MONACO_KINDS: Record<CompletionItem['kind'], keyof typeof monacoTypes.languages.CompletionItemKind> = {
  label: 'Enum',
  value: 'EnumMember',
  function: 'Function',
  keyword: 'Keyword',
  duration: 'Unit',
  snippet: 'Snippet',
};

function toMonacoItem(
  monaco: Monaco,
  model: monacoTypes.editor.ITextModel,
  position: monacoTypes.Position,
  it: CompletionItem
): monacoTypes.languages.CompletionItem {
  const offset = model.getOffsetAt(position);
  const start = model.getPositionAt(offset - it.replaceBefore);
  return {
    label: it.label,
    insertText: it.insertText,
    detail: it.detail,
    kind: monaco.languages.CompletionItemKind[MONACO_KINDS[it.kind]],
    range: new monaco.Range(start.lineNumber, start.column, position.lineNumber, position.column),
    // after a label name, open the value list at once
    command:
      it.kind === 'label' && it.insertText.endsWith('=')
        ? { id: 'editor.action.triggerSuggest', title: '' }
        : undefined,
  };
}

/**
 * The label names in the range, which tell a stream label from a field only
 * a parser would extract; fetched (and cached by the language provider)
 * only while the query reads such fields. Undefined until known, or when
 * the fetch fails: then there are no hints, never wrong ones.
 */
function useStreamLabels(languageProvider: LanguageProvider, range: TimeRange | undefined, wanted: boolean) {
  const [labels, setLabels] = useState<string[]>();
  useEffect(() => {
    if (!wanted) {
      return;
    }
    let live = true;
    // the provider caches by range, so a new range object costs no request
    languageProvider.fetchLabels(range).then(
      (ls) => live && setLabels(ls),
      () => live && setLabels(undefined)
    );
    return () => {
      live = false;
    };
  }, [languageProvider, range, wanted]);
  return wanted ? labels : undefined;
}

function paint(
  state: Mounted,
  tokens: HighlightToken[],
  errors: LogQLSyntaxError[],
  hints: LogQLHint[],
  styles: ReturnType<typeof getStyles>
) {
  const model = state.editor.getModel();
  if (!model) {
    return;
  }
  const { monaco } = state;
  const length = model.getValueLength();
  const toRange = (from: number, to: number) => {
    const s = model.getPositionAt(Math.min(from, length));
    const e = model.getPositionAt(Math.min(to, length));
    return new monaco.Range(s.lineNumber, s.column, e.lineNumber, e.column);
  };
  state.decorations.set(
    tokens.map((t) => ({ range: toRange(t.from, t.to), options: { inlineClassName: styles.tokens[t.kind] } }))
  );
  monaco.editor.setModelMarkers(
    model,
    LOGQL_LANGUAGE_ID,
    errors
      .map((err) => {
        // a zero-width error (end of input) still needs a visible squiggle
        const to = err.to > err.from ? err.to : err.from + 1;
        const r = toRange(err.from > 0 && err.from >= length ? err.from - 1 : err.from, to);
        return {
          severity: monaco.MarkerSeverity.Error,
          message: err.message,
          startLineNumber: r.startLineNumber,
          startColumn: r.startColumn,
          endLineNumber: r.endLineNumber,
          endColumn: r.endColumn,
        };
      })
      .concat(
        hints.map((h) => {
          const r = toRange(h.from, h.to);
          return {
            severity: monaco.MarkerSeverity.Warning,
            message: h.message,
            startLineNumber: r.startLineNumber,
            startColumn: r.startColumn,
            endLineNumber: r.endLineNumber,
            endColumn: r.endColumn,
          };
        })
      )
  );
}

const getStyles = (theme: GrafanaTheme2) => {
  const c = theme.visualization.getColorByName;
  // '&&' doubles the class so these win over Monaco's own token colours.
  const token = (style: CSSObject) => css({ '&&': style });
  const tokens: Record<TokenKind, string> = {
    string: token({ color: c('green') }),
    number: token({ color: c('purple') }),
    label: token({ color: c('orange') }),
    keyword: token({ color: c('blue'), fontWeight: theme.typography.fontWeightMedium }),
    function: token({ color: c('blue') }),
    operator: token({ color: theme.colors.text.secondary }),
    comment: token({ color: theme.colors.text.disabled, fontStyle: 'italic' }),
  };
  return {
    wrapper: css({ width: '100%' }),
    errors: css({
      color: theme.colors.error.text,
      fontSize: theme.typography.bodySmall.fontSize,
      marginTop: theme.spacing(0.5),
      fontFamily: theme.typography.fontFamilyMonospace,
    }),
    hints: css({
      color: theme.colors.warning.text,
      fontSize: theme.typography.bodySmall.fontSize,
      marginTop: theme.spacing(0.5),
      fontFamily: theme.typography.fontFamilyMonospace,
      overflowWrap: 'anywhere',
    }),
    tokens,
  };
};
