/**
 * The subset of SOQL the Salesforce fake understands, parsed as strictly as Salesforce does: a string
 * ends at the first unescaped quote and only SOQL's escape sequences are accepted, AND and OR may not be
 * mixed without parentheses, and `FIELDS(ALL)` needs a LIMIT of at most 200. Anything else is a
 * `SoqlError` with the errorCode Salesforce answers (MALFORMED_QUERY, INVALID_FIELD, ...).
 */

export class SoqlError extends Error {
  readonly errorCode: string;
  constructor(errorCode: string, message: string) {
    super(message);
    this.errorCode = errorCode;
  }
}

export type SoqlValue =
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'number'; readonly value: number }
  | { readonly kind: 'date'; readonly value: string }
  | { readonly kind: 'datetime'; readonly value: string }
  | { readonly kind: 'boolean'; readonly value: boolean }
  | { readonly kind: 'null' };

export type SoqlOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

export type SoqlCondition =
  | { readonly kind: 'compare'; readonly path: string; readonly op: SoqlOp; readonly value: SoqlValue }
  | {
      readonly kind: 'in';
      readonly path: string;
      readonly negated: boolean;
      readonly values: readonly SoqlValue[];
    }
  | { readonly kind: 'and' | 'or'; readonly items: readonly SoqlCondition[] }
  | { readonly kind: 'not'; readonly item: SoqlCondition };

export type SoqlAggregateFn = 'COUNT' | 'SUM' | 'AVG' | 'MIN' | 'MAX';

export type SoqlSelectItem =
  | { readonly kind: 'field'; readonly path: string }
  | { readonly kind: 'fields'; readonly which: 'ALL' | 'STANDARD' | 'CUSTOM' }
  | {
      readonly kind: 'aggregate';
      readonly fn: SoqlAggregateFn;
      readonly path?: string;
      readonly alias?: string;
    };

export interface SoqlQuery {
  readonly select: readonly SoqlSelectItem[];
  readonly from: string;
  readonly where?: SoqlCondition;
  readonly groupBy?: string;
  readonly orderBy?: { readonly path: string; readonly descending: boolean };
  readonly limit?: number;
}

type Token =
  | { type: 'word'; text: string; pos: number }
  | { type: 'string'; value: string; pos: number }
  | { type: 'number'; text: string; pos: number }
  | { type: 'datetime'; text: string; pos: number }
  | { type: 'date'; text: string; pos: number }
  | { type: 'punct'; text: string; pos: number }
  | { type: 'end'; pos: number };

const stringEscapes: Readonly<Record<string, string>> = {
  n: '\n',
  N: '\n',
  r: '\r',
  R: '\r',
  t: '\t',
  T: '\t',
  b: '\b',
  B: '\b',
  f: '\f',
  F: '\f',
  '"': '"',
  "'": "'",
  '\\': '\\',
};

const dateTimeLiteral = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})/;
const dateLiteral = /^\d{4}-\d{2}-\d{2}(?![\d:T])/;
const numberLiteral = /^-?\d+(\.\d+)?(?![\w.])/;

const malformed = (message: string) => new SoqlError('MALFORMED_QUERY', message);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const rest = text.slice(i);
    if (ch === "'") {
      let value = '';
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw malformed(`line 1:${i} mismatched character '<EOF>' expecting '''`);
        const c = text[j] as string;
        if (c === "'") break;
        if (c === '\\') {
          const next = text[j + 1] ?? '';
          const escaped = stringEscapes[next];
          if (escaped === undefined) {
            throw malformed(
              `Invalid string literal '\\${next}'. Illegal character sequence '\\${next}' in string literal.`,
            );
          }
          value += escaped;
          j += 2;
          continue;
        }
        value += c;
        j++;
      }
      tokens.push({ type: 'string', value, pos: i });
      i = j + 1;
      continue;
    }
    const dt = dateTimeLiteral.exec(rest);
    if (dt) {
      tokens.push({ type: 'datetime', text: dt[0], pos: i });
      i += dt[0].length;
      continue;
    }
    const d = dateLiteral.exec(rest);
    if (d) {
      tokens.push({ type: 'date', text: d[0], pos: i });
      i += d[0].length;
      continue;
    }
    const n = numberLiteral.exec(rest);
    if (n) {
      tokens.push({ type: 'number', text: n[0], pos: i });
      i += n[0].length;
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(rest);
    if (word) {
      tokens.push({ type: 'word', text: word[0], pos: i });
      i += word[0].length;
      continue;
    }
    const punct = /^(!=|<=|>=|<>|[=<>(),])/.exec(rest);
    if (punct) {
      if (punct[0] === '<>') throw malformed(`line 1:${i} unexpected token: '<>'`);
      tokens.push({ type: 'punct', text: punct[0], pos: i });
      i += punct[0].length;
      continue;
    }
    throw malformed(`line 1:${i} no viable alternative at character '${ch}'`);
  }
  tokens.push({ type: 'end', pos: text.length });
  return tokens;
}

const reserved = new Set([
  'SELECT',
  'FROM',
  'WHERE',
  'AND',
  'OR',
  'NOT',
  'IN',
  'GROUP',
  'BY',
  'ORDER',
  'LIMIT',
  'ASC',
  'DESC',
  'NULL',
  'TRUE',
  'FALSE',
  'NULLS',
  'FIRST',
  'LAST',
  'OFFSET',
  'LIKE',
  'INCLUDES',
  'EXCLUDES',
  'HAVING',
  'WITH',
  'TYPEOF',
]);
const aggregateFns = new Set(['COUNT', 'SUM', 'AVG', 'MIN', 'MAX']);

/** Parses one SOQL statement of the supported subset. */
export function parseSoql(text: string): SoqlQuery {
  if (text.length > 100_000) throw new SoqlError('MALFORMED_QUERY', 'Query is too long');
  const tokens = tokenize(text);
  let at = 0;
  const peek = () => tokens[at] as Token;
  const next = () => tokens[at++] as Token;
  const describe = (token: Token) =>
    token.type === 'end'
      ? '<EOF>'
      : token.type === 'string'
        ? `'${token.value}'`
        : 'text' in token
          ? token.text
          : '?';
  const unexpected = (token: Token) =>
    malformed(`line 1:${token.pos} unexpected token: '${describe(token)}'`);
  const isKeyword = (token: Token, keyword: string) =>
    token.type === 'word' && token.text.toUpperCase() === keyword;
  const expectKeyword = (keyword: string) => {
    const token = next();
    if (!isKeyword(token, keyword)) throw unexpected(token);
  };
  const expectPunct = (text: string) => {
    const token = next();
    if (token.type !== 'punct' || token.text !== text) throw unexpected(token);
  };
  const path = (): string => {
    const token = next();
    if (token.type !== 'word' || reserved.has(token.text.toUpperCase())) throw unexpected(token);
    return token.text;
  };

  const selectItem = (): SoqlSelectItem => {
    const token = peek();
    const after = tokens[at + 1];
    if (token.type === 'word' && after?.type === 'punct' && after.text === '(') {
      const name = token.text.toUpperCase();
      at += 2;
      if (name === 'FIELDS') {
        const which = next();
        const kind = which.type === 'word' ? which.text.toUpperCase() : '';
        if (kind !== 'ALL' && kind !== 'STANDARD' && kind !== 'CUSTOM') throw unexpected(which);
        expectPunct(')');
        return { kind: 'fields', which: kind };
      }
      if (!aggregateFns.has(name)) throw malformed(`Unknown function: ${token.text}`);
      const fn = name as SoqlAggregateFn;
      let field: string | undefined;
      if (!(peek().type === 'punct' && (peek() as { text: string }).text === ')')) field = path();
      else if (fn !== 'COUNT') throw unexpected(peek());
      expectPunct(')');
      let alias: string | undefined;
      const maybe = peek();
      if (maybe.type === 'word' && !reserved.has(maybe.text.toUpperCase()) && !maybe.text.includes('.')) {
        alias = maybe.text;
        at++;
      }
      return { kind: 'aggregate', fn, ...(field ? { path: field } : {}), ...(alias ? { alias } : {}) };
    }
    return { kind: 'field', path: path() };
  };

  const value = (): SoqlValue => {
    const token = next();
    switch (token.type) {
      case 'string':
        return { kind: 'string', value: token.value };
      case 'number':
        return { kind: 'number', value: Number(token.text) };
      case 'date':
        return { kind: 'date', value: token.text };
      case 'datetime':
        return { kind: 'datetime', value: token.text };
      case 'word': {
        const word = token.text.toUpperCase();
        if (word === 'NULL') return { kind: 'null' };
        if (word === 'TRUE' || word === 'FALSE') return { kind: 'boolean', value: word === 'TRUE' };
        throw unexpected(token);
      }
      default:
        throw unexpected(token);
    }
  };

  const valueList = (): SoqlValue[] => {
    expectPunct('(');
    const values = [value()];
    while (peek().type === 'punct' && (peek() as { text: string }).text === ',') {
      at++;
      values.push(value());
    }
    expectPunct(')');
    return values;
  };

  const comparison = (): SoqlCondition => {
    const field = path();
    const token = next();
    if (token.type === 'punct' && ['=', '!=', '<', '<=', '>', '>='].includes(token.text)) {
      return { kind: 'compare', path: field, op: token.text as SoqlOp, value: value() };
    }
    if (isKeyword(token, 'IN')) return { kind: 'in', path: field, negated: false, values: valueList() };
    if (isKeyword(token, 'NOT')) {
      expectKeyword('IN');
      return { kind: 'in', path: field, negated: true, values: valueList() };
    }
    throw unexpected(token);
  };

  const unary = (): SoqlCondition => {
    const token = peek();
    if (isKeyword(token, 'NOT')) {
      at++;
      return { kind: 'not', item: unary() };
    }
    if (token.type === 'punct' && token.text === '(') {
      at++;
      const inner = condition();
      expectPunct(')');
      return inner;
    }
    return comparison();
  };

  // SOQL refuses `a AND b OR c`: a condition is one unary, or unaries joined by one kind of operator.
  const condition = (): SoqlCondition => {
    const first = unary();
    const items = [first];
    let joiner: 'AND' | 'OR' | undefined;
    for (;;) {
      const token = peek();
      const word = token.type === 'word' ? token.text.toUpperCase() : '';
      if (word !== 'AND' && word !== 'OR') break;
      if (joiner && joiner !== word) throw unexpected(token);
      joiner = word;
      at++;
      items.push(unary());
    }
    return joiner ? { kind: joiner === 'AND' ? 'and' : 'or', items } : first;
  };

  expectKeyword('SELECT');
  const select = [selectItem()];
  while (peek().type === 'punct' && (peek() as { text: string }).text === ',') {
    at++;
    select.push(selectItem());
  }
  expectKeyword('FROM');
  const fromToken = next();
  if (
    fromToken.type !== 'word' ||
    fromToken.text.includes('.') ||
    reserved.has(fromToken.text.toUpperCase())
  ) {
    throw unexpected(fromToken);
  }
  let where: SoqlCondition | undefined;
  let groupBy: string | undefined;
  let orderBy: SoqlQuery['orderBy'];
  let limit: number | undefined;
  if (isKeyword(peek(), 'WHERE')) {
    at++;
    where = condition();
  }
  if (isKeyword(peek(), 'GROUP')) {
    at++;
    expectKeyword('BY');
    groupBy = path();
  }
  if (isKeyword(peek(), 'ORDER')) {
    at++;
    expectKeyword('BY');
    const field = path();
    let descending = false;
    if (isKeyword(peek(), 'ASC') || isKeyword(peek(), 'DESC')) descending = isKeyword(next(), 'DESC');
    orderBy = { path: field, descending };
  }
  if (isKeyword(peek(), 'LIMIT')) {
    at++;
    const token = next();
    if (token.type !== 'number' || !/^\d+$/.test(token.text)) throw unexpected(token);
    limit = Number(token.text);
  }
  const end = next();
  if (end.type !== 'end') throw unexpected(end);

  if (
    select.some((item) => item.kind === 'fields' && item.which !== 'STANDARD') &&
    !(limit !== undefined && limit <= 200)
  ) {
    throw malformed('The SOQL FIELDS function must have a LIMIT of at most 200');
  }
  return {
    select,
    from: fromToken.text,
    ...(where ? { where } : {}),
    ...(groupBy ? { groupBy } : {}),
    ...(orderBy ? { orderBy } : {}),
    ...(limit !== undefined ? { limit } : {}),
  };
}
