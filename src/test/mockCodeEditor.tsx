// Test double for Grafana's CodeEditor: Monaco cannot run in jsdom, so tests
// get a textarea with the same props, and a fake Monaco that records what the
// editor asks of it (language registration, decorations, markers, completion).
import type { CodeEditor } from '@grafana/ui';
import React, { ComponentProps, useEffect, useRef } from 'react';

type CodeEditorProps = ComponentProps<typeof CodeEditor>;

export interface FakeMonacoRecord {
  languages: string[];
  decorations: Array<{ range: FakeRange; options: { inlineClassName?: string } }>;
  markers: Array<{
    message: string;
    severity?: number;
    startLineNumber: number;
    startColumn: number;
    endColumn: number;
  }>;
  completion?: {
    provideCompletionItems: (
      model: unknown,
      position: unknown
    ) => Promise<{ suggestions: Array<{ label: string; insertText: string }> }>;
  };
  disposed: number;
  /** The fake editor's model, to ask the completion provider about it. */
  model?: unknown;
}

class FakeRange {
  constructor(
    public startLineNumber: number,
    public startColumn: number,
    public endLineNumber: number,
    public endColumn: number
  ) {}
}

/** A text model over a getter, with Monaco's offset/position arithmetic. */
function fakeModel(getValue: () => string) {
  return {
    getValue,
    getValueLength: () => getValue().length,
    getOffsetAt: (p: { lineNumber: number; column: number }) => {
      const lines = getValue().split('\n');
      let off = 0;
      for (let i = 0; i < p.lineNumber - 1; i++) {
        off += lines[i].length + 1;
      }
      return off + p.column - 1;
    },
    getPositionAt: (offset: number) => {
      const before = getValue().slice(0, offset).split('\n');
      return { lineNumber: before.length, column: before[before.length - 1].length + 1 };
    },
  };
}

export function createFakeMonaco(record: FakeMonacoRecord, getValue: () => string) {
  const model = fakeModel(getValue);
  record.model = model;
  const monaco = {
    Range: FakeRange,
    MarkerSeverity: { Hint: 1, Info: 2, Warning: 4, Error: 8 },
    languages: {
      CompletionItemKind: new Proxy({}, { get: (_t, name) => String(name) }),
      getLanguages: () => record.languages.map((id) => ({ id })),
      register: ({ id }: { id: string }) => record.languages.push(id),
      setLanguageConfiguration: () => undefined,
      registerCompletionItemProvider: (_id: string, provider: FakeMonacoRecord['completion']) => {
        record.completion = provider;
        return { dispose: () => record.disposed++ };
      },
    },
    editor: {
      setModelMarkers: (_m: unknown, _owner: string, markers: FakeMonacoRecord['markers']) => {
        record.markers = markers;
      },
    },
  };
  const editor = {
    getModel: () => model,
    getValue,
    createDecorationsCollection: () => ({
      set: (d: FakeMonacoRecord['decorations']) => {
        record.decorations = d;
      },
    }),
    onDidContentSizeChange: () => ({ dispose: () => record.disposed++ }),
  };
  return { monaco, editor, model };
}

export function newRecord(): FakeMonacoRecord {
  return { languages: [], decorations: [], markers: [], disposed: 0 };
}

/** Renders a textarea and drives the Monaco callbacks with a fake Monaco. */
export function makeMockCodeEditor(record: FakeMonacoRecord) {
  return function MockCodeEditor(props: CodeEditorProps) {
    const value = useRef(props.value);
    useEffect(() => {
      value.current = props.value;
    });
    const mounted = useRef(false);
    useEffect(() => {
      if (mounted.current) {
        return;
      }
      mounted.current = true;
      const { monaco, editor } = createFakeMonaco(record, () => value.current);
      props.onBeforeEditorMount?.(monaco as never);
      props.onEditorDidMount?.(editor as never, monaco as never);
    });
    return (
      <textarea
        aria-label="LogQL query"
        data-language={props.language}
        value={props.value}
        onChange={(e) => props.onChange?.(e.currentTarget.value)}
        onBlur={(e) => props.onBlur?.(e.currentTarget.value)}
      />
    );
  };
}
