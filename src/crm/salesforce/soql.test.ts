import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NormalExpr } from '../expression.js';
import { parseSoql, SoqlError, type SoqlCondition, type SoqlValue } from './soql-parse.js';
import { soqlConditions, soqlExpression, soqlLiteral, soqlSelect, type SoqlField } from './soql.js';

/**
 * The SOQL translation against the fake's parser: whatever a client puts in a filter value, the query
 * Gatehouse sends parses to exactly the intended condition, and means on any record what the filter
 * means under the connector contract (a comparison with an empty field is false).
 */

const fields: Record<string, SoqlField> = {
  name: { path: 'Name', type: 'string' },
  industry: { path: 'Industry', type: 'string' },
  amount: { path: 'Amount', type: 'number' },
  close_date: { path: 'CloseDate', type: 'date' },
};
const fieldOf = (name: string) => fields[name] as SoqlField;
const whereOf = (clause: string) =>
  parseSoql(soqlSelect({ fields: ['Id'], from: 'Account', where: [clause] })).where;

// Everything an attacker may try: quotes, backslashes, escapes, SOQL keywords, Unicode, lone surrogates.
/** Control characters SOQL has no escape sequence for (it has \n, \r, \t, \b and \f). */
const unescapable = (s: string) =>
  [...s].some((ch) => (ch < ' ' && !'\n\r\t\b\f'.includes(ch)) || ch === '\x7f');

const hostile = fc
  .oneof(
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({
      unit: fc.constantFrom(
        "'",
        '\\',
        '"',
        ' ',
        'OR',
        'Id',
        '!=',
        'null',
        ')',
        '(',
        '\n',
        '\t',
        '%',
        '_',
        'x',
      ),
      maxLength: 20,
    }),
    fc.string({ unit: 'binary', maxLength: 20 }),
  )
  .filter((s) => !unescapable(s));

const hostileControl = fc.string({ unit: 'binary', maxLength: 20 }).filter(unescapable);

describe('soqlLiteral', () => {
  it('a hostile string compared with a field parses back as exactly that one comparison', () => {
    fc.assert(
      fc.property(hostile, (value) => {
        const clause = soqlExpression({ kind: 'compare', field: 'name', op: 'eq', value }, fieldOf);
        expect(whereOf(clause)).toEqual({
          kind: 'compare',
          path: 'Name',
          op: '=',
          value: { kind: 'string', value },
        });
      }),
    );
  });

  it('control characters SOQL cannot escape are refused, never sent', () => {
    fc.assert(
      fc.property(hostileControl, (value) => {
        expect(() => soqlLiteral(value, 'string', 'name')).toThrow(/control character/);
      }),
    );
  });

  it('numbers are plain decimals, dates and date-times unquoted, anything else refused', () => {
    expect(soqlLiteral(1e21, 'number')).toBe('1000000000000000000000');
    expect(soqlLiteral(-0.000001, 'number')).toBe('-0.000001');
    expect(() => soqlLiteral(Number.NaN, 'number')).toThrow();
    expect(() => soqlLiteral('5 OR Id != null', 'number')).toThrow();
    expect(soqlLiteral('2025-06-30', 'date')).toBe('2025-06-30');
    expect(() => soqlLiteral("2025-06-30' OR Name != '", 'date')).toThrow();
    expect(soqlLiteral('2025-06-30T12:34', 'datetime')).toBe('2025-06-30T12:34:00.000Z');
    expect(soqlLiteral('2025-06-30', 'datetime')).toBe('2025-06-30T00:00:00.000Z');
    expect(() => soqlLiteral('2025-06-30T12:00:00+01:00', 'datetime')).toThrow();
  });
});

/** Filter expressions over the four fields, with hostile values. */
const expression: fc.Arbitrary<NormalExpr> = fc.letrec<{ expr: NormalExpr }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(
      fc.record({
        kind: fc.constant('compare' as const),
        field: fc.constantFrom('name', 'industry'),
        op: fc.constantFrom('eq' as const, 'ne' as const),
        value: hostile,
      }),
      fc.record({
        kind: fc.constant('compare' as const),
        field: fc.constant('amount'),
        op: fc.constantFrom(
          'eq' as const,
          'ne' as const,
          'gt' as const,
          'ge' as const,
          'lt' as const,
          'le' as const,
        ),
        value: fc.integer({ min: -5, max: 5 }),
      }),
      fc.record({
        kind: fc.constant('in' as const),
        field: fc.constantFrom('name', 'industry'),
        values: fc.array(hostile, { maxLength: 3 }),
      }),
    ),
    fc.record({
      kind: fc.constantFrom('and' as const, 'or' as const),
      items: fc.array(tie('expr'), { maxLength: 3 }),
    }),
    fc.record({ kind: fc.constant('not' as const), item: tie('expr') }),
  ),
})).expr;

type Rec = Record<string, string | number | null>;

/** The connector contract's meaning: SQL's, where a comparison with an empty field is unknown. */
function sqlMeaning(expr: NormalExpr, record: Rec): boolean | null {
  switch (expr.kind) {
    case 'and': {
      const values = expr.items.map((item) => sqlMeaning(item, record));
      return values.includes(false) ? false : values.includes(null) ? null : true;
    }
    case 'or': {
      const values = expr.items.map((item) => sqlMeaning(item, record));
      return values.includes(true) ? true : values.includes(null) ? null : false;
    }
    case 'not': {
      const value = sqlMeaning(expr.item, record);
      return value === null ? null : !value;
    }
    case 'in': {
      const value = record[expr.field];
      if (expr.values.length === 0) return false;
      return value === null || value === undefined ? null : expr.values.includes(value);
    }
    case 'compare': {
      const value = record[expr.field];
      if (value === null || value === undefined) return null;
      return compare(value, expr.op, expr.value);
    }
  }
}

function compare(a: string | number, op: string, b: string | number): boolean {
  switch (op) {
    case 'eq':
    case '=':
      return a === b;
    case 'ne':
    case '!=':
      return a !== b;
    case 'gt':
    case '>':
      return a > b;
    case 'ge':
    case '>=':
      return a >= b;
    case 'lt':
    case '<':
      return a < b;
    default:
      return a <= b;
  }
}

const byPath: Record<string, string> = { Name: 'name', Industry: 'industry', Amount: 'amount', Id: 'id' };

/** SOQL's meaning, as Salesforce documents it: null is a value for = and !=, and never ordered. */
function soqlMeaning(condition: SoqlCondition, record: Rec): boolean {
  const valueOf = (v: SoqlValue) =>
    v.kind === 'null' ? null : v.kind === 'boolean' ? String(v.value) : v.value;
  switch (condition.kind) {
    case 'and':
      return condition.items.every((item) => soqlMeaning(item, record));
    case 'or':
      return condition.items.some((item) => soqlMeaning(item, record));
    case 'not':
      return !soqlMeaning(condition.item, record);
    case 'in': {
      const value = record[byPath[condition.path] as string] ?? null;
      const found = condition.values.map(valueOf).includes(value);
      return condition.negated ? !found : found;
    }
    case 'compare': {
      const value = record[byPath[condition.path] as string] ?? null;
      const literal = valueOf(condition.value);
      if (condition.op === '=') return value === literal;
      if (condition.op === '!=') return value !== literal;
      if (value === null || literal === null) return false;
      return compare(value, condition.op, literal);
    }
  }
}

const records = fc.record({
  id: fc.constant('001000000000001'),
  name: fc.option(hostile, { nil: null }),
  industry: fc.option(fc.constantFrom('Retail', "O'Brien", '\\', ''), { nil: null }),
  amount: fc.option(fc.integer({ min: -5, max: 5 }), { nil: null }),
});

describe('the filter translation', () => {
  it('parses, and selects exactly the records the filter selects under the connector contract', () => {
    fc.assert(
      fc.property(expression, fc.array(records, { minLength: 1, maxLength: 5 }), (expr, rows) => {
        const where = whereOf(soqlExpression(expr, fieldOf));
        expect(where).toBeDefined();
        for (const row of rows) {
          expect(soqlMeaning(where as SoqlCondition, row)).toBe(sqlMeaning(expr, row) === true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('row conditions and the client filter stay in separate parentheses', () => {
    const where = soqlConditions([{ field: 'industry', op: 'eq', value: 'Retail' }], fieldOf);
    where.push(
      soqlExpression(
        {
          kind: 'or',
          items: [
            { kind: 'compare', field: 'name', op: 'eq', value: "x' OR Industry != 'y" },
            { kind: 'compare', field: 'name', op: 'eq', value: 'z' },
          ],
        },
        fieldOf,
      ),
    );
    const soql = soqlSelect({ fields: ['Id'], from: 'Account', where });
    expect(parseSoql(soql).where).toMatchObject({
      kind: 'and',
      items: [{ kind: 'compare', path: 'Industry' }, { kind: 'or' }],
    });
  });
});

describe('the fake parser refuses what Salesforce refuses', () => {
  it.each([
    ["SELECT Id FROM Account WHERE Name = 'it's'", 'MALFORMED_QUERY'],
    ["SELECT Id FROM Account WHERE Name = 'x\\q'", 'MALFORMED_QUERY'],
    ["SELECT Id FROM Account WHERE Name = 'a' AND Industry = 'b' OR Name = 'c'", 'MALFORMED_QUERY'],
    ['SELECT FIELDS(ALL) FROM Account', 'MALFORMED_QUERY'],
    ['SELECT FIELDS(ALL) FROM Account LIMIT 201', 'MALFORMED_QUERY'],
    ["SELECT Id FROM Account WHERE Name <> 'x'", 'MALFORMED_QUERY'],
    ["SELECT Id FROM Account WHERE Name = 'x'; DELETE", 'MALFORMED_QUERY'],
    ["SELECT Id FROM Account WHERE Name = 'unterminated", 'MALFORMED_QUERY'],
    ['SELECT Id FROM Account LIMIT -1', 'MALFORMED_QUERY'],
    ['SELECT FROM Account', 'MALFORMED_QUERY'],
  ])('%s', (soql, code) => {
    let error: unknown;
    try {
      parseSoql(soql);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SoqlError);
    expect((error as SoqlError).errorCode).toBe(code);
  });

  it('accepts FIELDS(ALL) with a LIMIT of at most 200, and parenthesised mixes of AND and OR', () => {
    expect(parseSoql('SELECT FIELDS(ALL) FROM Account LIMIT 200').select).toEqual([
      { kind: 'fields', which: 'ALL' },
    ]);
    expect(
      parseSoql("SELECT Id FROM Account WHERE (Name = 'a' AND Industry = 'b') OR Name = 'c'").where,
    ).toMatchObject({
      kind: 'or',
    });
  });
});
