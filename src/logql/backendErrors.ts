import type { DataFrame } from '@grafana/data';

import type { LogQLSyntaxError } from './parse';

/** The frame meta key under which the backend reports a query error's span (pkg/plugin/errrange.go). */
export const ERROR_RANGE_KEY = 'lokalErrorRange';

interface BackendPosition {
  offset: number; // bytes
  line: number; // 1-based
  col: number; // 1-based, in characters (code points)
}

interface BackendErrorRange {
  expr: string;
  message: string;
  start: BackendPosition;
  end: BackendPosition;
}

function isPosition(p: unknown): p is BackendPosition {
  const q = p as BackendPosition | undefined;
  return typeof q?.line === 'number' && typeof q?.col === 'number' && q.line >= 1 && q.col >= 1;
}

function isErrorRange(v: unknown): v is BackendErrorRange {
  const r = v as BackendErrorRange | undefined;
  return typeof r?.expr === 'string' && typeof r?.message === 'string' && isPosition(r.start) && isPosition(r.end);
}

/**
 * The UTF-16 offset (a JavaScript string index) of a backend position: its
 * line and column count characters, which differ from UTF-16 units past
 * the Basic Multilingual Plane. Null when the position lies outside expr.
 */
function offsetOf(expr: string, p: BackendPosition): number | null {
  let off = 0;
  for (let line = 1; line < p.line; line++) {
    const nl = expr.indexOf('\n', off);
    if (nl < 0) {
      return null;
    }
    off = nl + 1;
  }
  for (let col = 1; col < p.col; col++) {
    if (off >= expr.length || expr[off] === '\n') {
      return null;
    }
    off += (expr.codePointAt(off) ?? 0) > 0xffff ? 2 : 1;
  }
  return off;
}

/** Loki's prefix ("parse error at line 1, col 5: ", "parse error : "), which the editor's own wording replaces. */
const PARSE_ERROR_PREFIX = /^parse error(?: at line \d+, col \d+)?\s*:\s*/;

/**
 * The backend's parse and validation errors of refId's query, as editor
 * errors over expr (the editor's text). A span is kept only when the
 * backend parsed exactly expr: once the text was edited, or Grafana
 * substituted a variable in it, the positions no longer fit.
 */
export function backendErrors(expr: string, frames: DataFrame[] | undefined, refId: string): LogQLSyntaxError[] {
  const out: LogQLSyntaxError[] = [];
  for (const frame of frames ?? []) {
    if (frame.refId !== undefined && frame.refId !== refId) {
      continue;
    }
    const r: unknown = frame.meta?.custom?.[ERROR_RANGE_KEY];
    if (!isErrorRange(r) || r.expr !== expr) {
      continue;
    }
    const from = offsetOf(expr, r.start);
    const to = offsetOf(expr, r.end);
    if (from === null || to === null || to < from) {
      continue;
    }
    // Editor columns count UTF-16 units, as Monaco's do.
    const column = (off: number) => off - (off === 0 ? -1 : expr.lastIndexOf('\n', off - 1));
    out.push({
      from,
      to,
      startLine: r.start.line,
      startColumn: column(from),
      endLine: r.end.line,
      endColumn: column(to),
      message: r.message.replace(PARSE_ERROR_PREFIX, ''),
    });
  }
  return out;
}

/** How the editor words a backend error under the query. */
export function formatBackendError(err: LogQLSyntaxError): string {
  return `Query error at line ${err.startLine}, column ${err.startColumn}: ${err.message}`;
}
