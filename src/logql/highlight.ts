// Syntax highlighting from the lezer-logql tree: each leaf token gets a kind
// the editor styles. Monaco's own tokenizer is not used, so highlighting and
// error marking come from one grammar.
import { parseLogQL } from './parse';

export type TokenKind = 'string' | 'number' | 'label' | 'keyword' | 'function' | 'operator' | 'comment';

export interface HighlightToken {
  from: number;
  to: number;
  kind: TokenKind;
}

const NUMBER_NODES = new Set(['Number', 'Duration', 'Bytes']);
// Nodes whose leaf names are functions rather than plain keywords.
const FUNCTION_PARENTS = new Set(['RangeOp', 'VectorOp', 'LabelAggOp', 'ConvOp']);

export function highlightTokens(expr: string): HighlightToken[] {
  const tokens: HighlightToken[] = [];
  const tree = parseLogQL(expr);
  tree.iterate({
    enter: (ref) => {
      if (ref.type.isError) {
        return true;
      }
      const node = ref.node;
      const name = ref.name;
      if (name === 'String') {
        tokens.push({ from: ref.from, to: ref.to, kind: 'string' });
        return false;
      }
      if (name === 'LineComment') {
        tokens.push({ from: ref.from, to: ref.to, kind: 'comment' });
        return false;
      }
      if (NUMBER_NODES.has(name)) {
        tokens.push({ from: ref.from, to: ref.to, kind: 'number' });
        return false;
      }
      if (name === 'Identifier' || name === 'LabelName') {
        tokens.push({ from: ref.from, to: ref.to, kind: 'label' });
        return false;
      }
      if (node.firstChild === null && ref.to > ref.from) {
        const text = expr.slice(ref.from, ref.to);
        if (/^[A-Za-z_]/.test(text)) {
          const fn = node.parent && FUNCTION_PARENTS.has(node.parent.name);
          tokens.push({ from: ref.from, to: ref.to, kind: fn ? 'function' : 'keyword' });
        } else if (!/^[(){}[\],]+$/.test(text)) {
          tokens.push({ from: ref.from, to: ref.to, kind: 'operator' });
        }
      }
      return true;
    },
  });
  return tokens.sort((a, b) => a.from - b.from);
}
