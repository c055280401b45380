import type { FilterExpr, FilterOp, FilterValue } from '../crm/index.js';
import { InputError } from '../errors/index.js';

/**
 * The `filter` language of the gateway: comparisons joined by and/or/not, parsed into a FilterExpr that
 * the CRM connector compiles with its query builder (values bound as parameters, never SQL text).
 *
 *   filter     = or-expr
 *   or-expr    = and-expr *( "or" and-expr )
 *   and-expr   = unary *( "and" unary )
 *   unary      = "not" unary / "(" or-expr ")" / comparison
 *   comparison = field ( "eq" / "ne" / "gt" / "ge" / "lt" / "le" ) value
 *              / field "in" "(" value *( "," value ) ")"
 *   field      = [a-z_][a-z0-9_]*                  ; at most 64 characters
 *   value      = string / number
 *   string     = "'" *( any character but ' and controls / "''" ) "'"
 *   number     = ["-"] digits ["." digits] [("e" / "E") ["+" / "-"] digits]
 *
 * Keywords are case-insensitive; `not` binds tighter than `and`, which binds tighter than `or`. Dates
 * are strings ('2025-06-30'). The whole text is untrusted: every limit below is checked while parsing,
 * the parser's recursion is bounded by the depth limit, and an error names a position and at most a
 * short token (a field name or a keyword), never a value.
 */

export type { FilterExpr };

export const filterLimits = Object.freeze({
  /** Characters of one `filter` text. */
  maxLength: 1024,
  /** Nesting: every `(` group and every `not` is one level. */
  maxDepth: 5,
  /** Comparisons (`eq` … `in`) in one request, over all its `filter` parameters. */
  maxComparisons: 16,
  /** Values in one `in` list. */
  maxInValues: 100,
  /** Largest magnitude of a number literal (the CRM keeps amounts below 1e15). */
  maxNumber: 1e15,
});

const comparisons: ReadonlySet<string> = new Set<FilterOp>(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);
const keywords: ReadonlySet<string> = new Set(['and', 'or', 'not', 'in', ...comparisons]);
const fieldPattern = /^[a-z_][a-z0-9_]{0,63}$/;
const maxNumberLiteral = 32;

type Token =
  | { readonly type: 'word'; readonly text: string; readonly pos: number }
  | { readonly type: 'string'; readonly value: string; readonly pos: number }
  | { readonly type: 'number'; readonly value: number; readonly pos: number }
  | { readonly type: '(' | ')' | ','; readonly pos: number }
  | { readonly type: 'end'; readonly pos: number };

/** A 422 at a 0-based offset; the message counts characters from 1, as editors do. */
function fail(pos: number, message: string): InputError {
  return new InputError(`filter: ${message} at character ${pos + 1}`, {
    parameter: 'filter',
    position: pos + 1,
  });
}

/**
 * What a token is, for an error message. Only keywords and punctuation are shown: any other word may
 * be a value typed without quotes (an e-mail, a national id), and values never go into a message.
 */
function describe(token: Token): string {
  switch (token.type) {
    case 'word': {
      const lower = token.text.toLowerCase();
      return keywords.has(lower) ? `"${lower}"` : 'a name';
    }
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'end':
      return 'the end';
    default:
      return `"${token.type}"`;
  }
}

/**
 * The tokens of the text, read one at a time so that the first problem is the one reported.
 * Attacker-controlled input: one pass, and the only regexes are anchored (sticky) and linear.
 */
function lexer(text: string): () => Token {
  let i = 0;
  const wordRe = /[A-Za-z_][A-Za-z0-9_]*/y;
  const numberRe = /-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const read = (): Token => {
    while (i < text.length) {
      const ch = text[i] as string;
      if (ch !== ' ' && ch !== '\t' && ch !== '\n' && ch !== '\r') break;
      i++;
    }
    if (i >= text.length) return { type: 'end', pos: text.length };
    const c = text.charCodeAt(i);
    const ch = text[i] as string;
    if (ch === '(' || ch === ')' || ch === ',') {
      i++;
      return { type: ch, pos: i - 1 };
    }
    if (ch === "'") {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw fail(start, 'a string is not closed');
        const next = text[i] as string;
        if (next === "'") {
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (isControl(text.charCodeAt(i))) throw fail(i, 'a string contains a control character');
        value += next;
        i++;
      }
      return { type: 'string', value, pos: start };
    }
    if ((c >= 48 && c <= 57) || ch === '-') {
      numberRe.lastIndex = i;
      const match = numberRe.exec(text);
      if (!match) throw fail(i, 'expected a number after "-"');
      const literal = match[0];
      if (literal.length > maxNumberLiteral) throw fail(i, 'a number is too long');
      const value = Number(literal);
      if (!Number.isFinite(value) || Math.abs(value) > filterLimits.maxNumber) {
        throw fail(i, `a number is out of range (at most ${filterLimits.maxNumber} either way)`);
      }
      // -0 and 0 are the same filter; keep one of them so printed filters parse back equal.
      i += literal.length;
      return { type: 'number', value: value === 0 ? 0 : value, pos: i - literal.length };
    }
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || ch === '_') {
      wordRe.lastIndex = i;
      const word = (wordRe.exec(text) as RegExpExecArray)[0];
      if (word.length > 64) throw fail(i, 'a name is longer than 64 characters');
      i += word.length;
      return { type: 'word', text: word, pos: i - word.length };
    }
    throw fail(
      i,
      `unexpected character ${printable(c) ? JSON.stringify(ch) : `U+${c.toString(16).toUpperCase().padStart(4, '0')}`}`,
    );
  };
  return read;
}

function isControl(code: number): boolean {
  return code < 0x20 || code === 0x7f;
}

function printable(code: number): boolean {
  return code > 0x20 && code < 0x7f;
}

/**
 * Parses one `filter` text. Throws InputError (422, code INVALID_INPUT) with the position of the first
 * problem for anything that is not a filter within the limits; a non-string is the caller's mistake.
 */
export function parseFilter(text: string): FilterExpr {
  let budget = filterLimits.maxComparisons;
  return parseWithBudget(text, () => {
    budget--;
    return budget >= 0;
  });
}

function parseWithBudget(text: string, spend: () => boolean): FilterExpr {
  if (typeof text !== 'string') throw new TypeError('filter text must be a string');
  if (text.length > filterLimits.maxLength) {
    throw fail(filterLimits.maxLength, `a filter is longer than ${filterLimits.maxLength} characters`);
  }
  const read = lexer(text);
  let ahead: Token | undefined;
  const peek = (): Token => (ahead ??= read());
  const next = (): Token => {
    const token = peek();
    ahead = undefined;
    return token;
  };
  const keyword = (token: Token): string | undefined => {
    if (token.type !== 'word') return undefined;
    const lower = token.text.toLowerCase();
    return keywords.has(lower) ? lower : undefined;
  };
  const expect = (type: '(' | ')', what: string): void => {
    const token = next();
    if (token.type !== type) throw fail(token.pos, `expected ${what}, found ${describe(token)}`);
  };
  const enter = (token: Token, depth: number): number => {
    if (depth >= filterLimits.maxDepth) {
      throw fail(token.pos, `parentheses and "not" nest deeper than ${filterLimits.maxDepth} levels`);
    }
    return depth + 1;
  };

  const orExpr = (depth: number): FilterExpr => {
    const items = [andExpr(depth)];
    while (keyword(peek()) === 'or') {
      next();
      items.push(andExpr(depth));
    }
    return items.length === 1 ? (items[0] as FilterExpr) : { kind: 'or', items };
  };

  const andExpr = (depth: number): FilterExpr => {
    const items = [unary(depth)];
    while (keyword(peek()) === 'and') {
      next();
      items.push(unary(depth));
    }
    return items.length === 1 ? (items[0] as FilterExpr) : { kind: 'and', items };
  };

  // Recursion happens only through `not` and `(`, and `enter` bounds both: 10,000 opening
  // parentheses are refused at the sixth, long before the stack could matter.
  const unary = (depth: number): FilterExpr => {
    const token = peek();
    if (keyword(token) === 'not') {
      const inner = enter(token, depth);
      next();
      return { kind: 'not', item: unary(inner) };
    }
    if (token.type === '(') {
      const inner = enter(token, depth);
      next();
      const expr = orExpr(inner);
      expect(')', '")" to close the "(" at character ' + (token.pos + 1));
      return expr;
    }
    return comparison();
  };

  const comparison = (): FilterExpr => {
    const fieldToken = next();
    if (fieldToken.type !== 'word' || keyword(fieldToken) !== undefined) {
      throw fail(fieldToken.pos, `expected a field name, found ${describe(fieldToken)}`);
    }
    const field = fieldToken.text;
    if (!fieldPattern.test(field)) {
      throw fail(fieldToken.pos, 'field names are lower case: letters, digits and _');
    }
    if (!spend()) {
      throw fail(fieldToken.pos, `a filter may hold at most ${filterLimits.maxComparisons} comparisons`);
    }
    const opToken = next();
    const op = keyword(opToken);
    if (op === 'in') {
      expect('(', '"(" to open the in-list');
      const values = [value()];
      for (;;) {
        const token = next();
        if (token.type === ')') break;
        if (token.type !== ',') throw fail(token.pos, `expected "," or ")", found ${describe(token)}`);
        if (values.length >= filterLimits.maxInValues) {
          throw fail(token.pos, `an in-list may hold at most ${filterLimits.maxInValues} values`);
        }
        values.push(value());
      }
      return { kind: 'in', field, values };
    }
    if (op === undefined || !comparisons.has(op)) {
      throw fail(
        opToken.pos,
        `expected eq, ne, gt, ge, lt, le or in after ${field}, found ${describe(opToken)}`,
      );
    }
    return { kind: 'compare', field, op: op as FilterOp, value: value() };
  };

  const value = (): FilterValue => {
    const token = next();
    if (token.type === 'string' || token.type === 'number') return token.value;
    throw fail(token.pos, `expected a value ('quoted text' or a number), found ${describe(token)}`);
  };

  if (peek().type === 'end') throw fail(0, 'the filter is empty');
  const expr = orExpr(0);
  const rest = peek();
  if (rest.type !== 'end') {
    throw fail(
      rest.pos,
      rest.type === ')'
        ? 'a ")" has no matching "("'
        : `expected "and", "or" or the end, found ${describe(rest)}`,
    );
  }
  return expr;
}

/**
 * The `filter` parameters of one request, ANDed, or undefined when there are none. The comparison
 * limit holds for all of them together.
 *
 * Deprecated form, kept for one release: a parameter of the shape `field=value` (the filter before
 * this language) means `field eq 'value'`. The new language never has `=` outside a string, so the
 * two cannot be confused.
 */
export function parseFilterParams(texts: readonly string[]): FilterExpr | undefined {
  let budget = filterLimits.maxComparisons;
  const spend = () => --budget >= 0;
  const items = texts.map((text) => {
    const legacy = typeof text === 'string' ? /^([a-z_][a-z0-9_]{0,63})=/.exec(text) : null;
    if (!legacy) return parseWithBudget(text, spend);
    if (text.length > filterLimits.maxLength) {
      throw fail(filterLimits.maxLength, `a filter is longer than ${filterLimits.maxLength} characters`);
    }
    if (!spend()) throw fail(0, `a filter may hold at most ${filterLimits.maxComparisons} comparisons`);
    const field = legacy[1] as string;
    return { kind: 'compare', field, op: 'eq', value: text.slice(field.length + 1) } satisfies FilterExpr;
  });
  if (items.length === 0) return undefined;
  return items.length === 1 ? items[0] : { kind: 'and', items };
}

/**
 * The filter as text in the language, which parses back to an equal expression for every expression
 * the parser produces (and/or with two items or more). Used in tests and wherever a filter is shown.
 */
export function printFilter(expr: FilterExpr): string {
  switch (expr.kind) {
    case 'or':
      return expr.items
        .map((item) => (item.kind === 'or' ? `(${printFilter(item)})` : printFilter(item)))
        .join(' or ');
    case 'and':
      return expr.items
        .map((item) =>
          item.kind === 'or' || item.kind === 'and' ? `(${printFilter(item)})` : printFilter(item),
        )
        .join(' and ');
    case 'not':
      return expr.item.kind === 'or' || expr.item.kind === 'and'
        ? `not (${printFilter(expr.item)})`
        : `not ${printFilter(expr.item)}`;
    case 'compare':
      return `${expr.field} ${expr.op} ${printValue(expr.value)}`;
    case 'in':
      return `${expr.field} in (${expr.values.map(printValue).join(', ')})`;
  }
}

function printValue(value: FilterValue): string {
  return typeof value === 'number' ? String(value) : `'${value.replaceAll("'", "''")}'`;
}

/** Every field the expression compares, each once, in order of appearance. */
export function filterFields(expr: FilterExpr): string[] {
  const fields = new Set<string>();
  const walk = (node: FilterExpr): void => {
    switch (node.kind) {
      case 'and':
      case 'or':
        node.items.forEach(walk);
        break;
      case 'not':
        walk(node.item);
        break;
      default:
        fields.add(node.field);
    }
  };
  walk(expr);
  return [...fields];
}

/**
 * Refuses a filter on any field outside `allowed`: the fields the caller may read unmasked. Filtering
 * on a masked or unreadable field would let a client learn its hidden value one query at a time.
 */
export function checkFilterFields(expr: FilterExpr, allowed: ReadonlySet<string>): void {
  for (const field of filterFields(expr)) {
    if (!allowed.has(field)) {
      const name = field.slice(0, 64);
      throw new InputError(`cannot filter on ${name}: it is not readable unmasked with the granted scopes`, {
        parameter: 'filter',
        field: name,
      });
    }
  }
}
