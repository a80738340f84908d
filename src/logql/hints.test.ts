import { findFieldHints, readsUnextractedFields, templateFields } from './hints';

const streamLabels = ['filename', 'instance', 'job', 'level'];

describe('findFieldHints', () => {
  it("explains the guide's line_format and suggests a parser, as the backend does", () => {
    const q = '{job="cosyvoice3"} |= "Generating audio" | line_format "{{.text_len}} chars, seed={{.seed}}"';
    const hints = findFieldHints(q, streamLabels);
    expect(hints).toHaveLength(1);
    const suggestion =
      '{job="cosyvoice3"} |= "Generating audio" | regexp "text_len=(?P<text_len>[^, ]+)" | regexp "seed=(?P<seed>[^, ]+)" | line_format "{{.text_len}} chars, seed={{.seed}}"';
    expect(hints[0]).toEqual({
      from: q.indexOf('| line_format'),
      to: q.length,
      suggestion,
      message:
        '`text_len` and `seed` are not labels here (no stream has them and no stage before line_format extracts them, so they read as empty); ' +
        'add `| logfmt` or `| regexp` before line_format, e.g. ' +
        suggestion,
    });
    // following the hint leaves nothing to hint
    expect(findFieldHints(suggestion, streamLabels)).toEqual([]);
  });

  it.each([
    ['a label filter', '{job="a"} | text_len > 100', 'text_len', '`| text_len > 100`'],
    ['label_format renaming', '{job="a"} | label_format n=text_len', 'text_len', 'label_format'],
    ['label_format templates', '{job="a"} | label_format n="{{.seed}}"', 'seed', 'label_format'],
    ['a metric query', 'sum(count_over_time({job="a"} | line_format "{{.seed}}" [5m]))', 'seed', 'line_format'],
    [
      'a field a regexp does not name',
      '{job="a"} | regexp "x=(?P<x>\\\\d+)" | line_format "{{.seed}}"',
      'seed',
      'line_format',
    ],
  ])('hints %s', (_name, q, field, what) => {
    const hints = findFieldHints(q, streamLabels);
    expect(hints).toHaveLength(1);
    expect(hints[0].message).toMatch(
      new RegExp(`^\`${field}\` is not a label here .* before ${escape(what)} extracts it`)
    );
    expect(hints[0].suggestion).toContain(`| regexp "${field}=(?P<${field}>[^, ]+)" `);
    expect(findFieldHints(hints[0].suggestion, streamLabels)).toEqual([]);
  });

  it.each([
    ['a parser that extracts anything', '{job="a"} | logfmt | line_format "{{.text_len}}"'],
    ['json', '{job="a"} | json | text_len > 3'],
    [
      'the clean regexp',
      '{job="a"} | regexp "text_len=(?P<text_len>\\\\d+), seed=(?P<seed>\\\\d+)" | line_format "{{.text_len}} {{.seed}}"',
    ],
    ['a pattern', '{job="a"} | pattern "<_> text_len=<text_len>, <_>" | line_format "{{.text_len}}"'],
    ['logfmt with parameters', '{job="a"} | logfmt seed | seed > 4'],
    ['json with parameters', '{job="a"} | json n="a.b" | n != ""'],
    ['stream labels', '{job="a"} | level="error" | line_format "{{.instance}} {{ .level | upper }} {{ __line__ }}"'],
    ['a label label_format made', '{job="a"} | label_format x="{{.level}}" | line_format "{{.x}}"'],
    ["Loki's own labels", '{job="a"} | __error__="" | line_format "{{.__error__}}"'],
    ['with, where the dot changes', '{job="a"} | line_format "{{ with .level }}{{ .x }}{{ end }}"'],
    ['a syntax error', '{job="a"} | line_format '],
    ['no pipeline', '{job="a"}'],
  ])('gives no hint for %s', (_name, q) => {
    expect(findFieldHints(q, streamLabels)).toEqual([]);
  });

  it('gives none before the stream labels are known', () => {
    const q = '{job="a"} | line_format "{{.seed}}"';
    expect(findFieldHints(q, undefined)).toEqual([]);
    expect(readsUnextractedFields(q)).toBe(true);
    expect(readsUnextractedFields('{job="a"} | logfmt | line_format "{{.seed}}"')).toBe(false);
  });
});

describe('templateFields', () => {
  it.each([
    ['{{.text_len}} chars, seed={{.seed}}', ['text_len', 'seed']],
    ['{{ .a.b }} {{ $.c }} {{ printf "%s .q" .d }} {{ (.e) }}', ['a', 'c', 'd', 'e']],
    ['{{ range .r }}{{ .x }}{{ end }}', []],
    ['{{ __line__ }}', []],
    ['no template', []],
  ])('%s', (tmpl, want) => {
    expect(templateFields(tmpl)).toEqual(want);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
