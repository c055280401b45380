import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { createEmbeddedCrm, seedCrm, type CrmConnector, type FilterExpr } from '../crm/index.js';
import { InputError } from '../errors/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import {
  checkFilterFields,
  filterFields,
  filterLimits,
  parseFilter,
  parseFilterParams,
  printFilter,
} from './filter.js';
import { testDatabase } from '../../test/support/database.js';

const invalid = (position?: number) =>
  expect.objectContaining({
    code: 'INVALID_INPUT',
    extensions: expect.objectContaining(position === undefined ? { parameter: 'filter' } : { position }),
  });

function errorOf(run: () => unknown): InputError {
  try {
    run();
  } catch (error) {
    if (error instanceof InputError) return error;
    throw error;
  }
  throw new Error('expected an InputError');
}

const cmp = (
  field: string,
  op: 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le',
  value: string | number,
): FilterExpr => ({
  kind: 'compare',
  field,
  op,
  value,
});

describe('parseFilter: the language', () => {
  it('parses the README example with and binding tighter than or', () => {
    expect(parseFilter("stage eq 'Closed Won' and (amount gt 10000 or owner eq 'bob@example.com')")).toEqual({
      kind: 'and',
      items: [
        cmp('stage', 'eq', 'Closed Won'),
        { kind: 'or', items: [cmp('amount', 'gt', 10000), cmp('owner', 'eq', 'bob@example.com')] },
      ],
    });
    expect(parseFilter('a eq 1 or b eq 2 and c eq 3')).toEqual({
      kind: 'or',
      items: [cmp('a', 'eq', 1), { kind: 'and', items: [cmp('b', 'eq', 2), cmp('c', 'eq', 3)] }],
    });
  });

  it('has every comparison, in-lists and not', () => {
    for (const op of ['eq', 'ne', 'gt', 'ge', 'lt', 'le'] as const) {
      expect(parseFilter(`amount ${op} -2.5`)).toEqual(cmp('amount', op, -2.5));
    }
    expect(parseFilter("territory in ('EMEA', 'NA',1)")).toEqual({
      kind: 'in',
      field: 'territory',
      values: ['EMEA', 'NA', 1],
    });
    expect(parseFilter("not stage eq 'Closed Lost' and not (a eq 1 or b eq 2)")).toEqual({
      kind: 'and',
      items: [
        { kind: 'not', item: cmp('stage', 'eq', 'Closed Lost') },
        { kind: 'not', item: { kind: 'or', items: [cmp('a', 'eq', 1), cmp('b', 'eq', 2)] } },
      ],
    });
  });

  it('reads quoted strings with doubled quotes, dates as strings, numbers with exponents', () => {
    expect(parseFilter("name eq 'O''Brien & Sons (UK)'")).toEqual(cmp('name', 'eq', "O'Brien & Sons (UK)"));
    expect(parseFilter("name eq ''")).toEqual(cmp('name', 'eq', ''));
    expect(parseFilter("close_date ge '2025-06-30'")).toEqual(cmp('close_date', 'ge', '2025-06-30'));
    expect(parseFilter('amount lt 1.5e3')).toEqual(cmp('amount', 'lt', 1500));
    expect(parseFilter('amount eq -0')).toEqual(cmp('amount', 'eq', 0));
    expect(parseFilter("name eq 'żółw 🐢'")).toEqual(cmp('name', 'eq', 'żółw 🐢'));
  });

  it('takes keywords in any case, whitespace anywhere, and redundant parentheses', () => {
    expect(parseFilter("\t( ( stage EQ 'x' ) )\r\nAND Not amount Gt 3 ")).toEqual({
      kind: 'and',
      items: [cmp('stage', 'eq', 'x'), { kind: 'not', item: cmp('amount', 'gt', 3) }],
    });
  });
});

describe('parseFilter: refusals', () => {
  it.each([
    ['', 1, 'empty'],
    ['   ', 1, 'empty'],
    ['stage', 6, 'missing operator'],
    ['stage eq', 9, 'missing value'],
    ["stage = 'x'", 7, 'SQL-style operator'],
    ["stage eq 'x", 10, 'unclosed string'],
    ["stage eq 'x' and", 17, 'dangling and'],
    ["(stage eq 'x'", 14, 'unclosed parenthesis'],
    ["stage eq 'x')", 13, 'stray closing parenthesis'],
    ["stage eq 'x' stage eq 'y'", 14, 'missing and/or'],
    ['Stage eq 1', 1, 'upper-case field'],
    ["and eq 'x'", 1, 'keyword as field'],
    ['amount eq 1e400', 11, 'infinite number'],
    ['amount eq 1e16', 11, 'number out of range'],
    ['amount eq - 1', 11, 'lone minus'],
    ['amount eq 1;', 12, 'semicolon'],
    ["stage eq 'a\u0000b'", 12, 'NUL in a string'],
    ['amount eq 0x10', 12, 'hexadecimal'],
    ['stage in ()', 11, 'empty in-list'],
    ["stage in ('a' 'b')", 15, 'in-list without comma'],
    ['stage eq stage', 10, 'field as value'],
    ["stage eq 'x' -- comment", 14, 'SQL comment'],
    ['amount eq 123456789012345678901234567890123', 11, 'over-long number'],
  ])('refuses %j at character %i (%s)', (text, position) => {
    expect(() => parseFilter(text)).toThrow(InputError);
    expect(errorOf(() => parseFilter(text))).toEqual(invalid(position));
  });

  it('never echoes a value, only short tokens', () => {
    const secret = 'AB123456C-very-secret-national-id';
    for (const text of [
      `national_id eq '${secret}' ${secret}`,
      `national_id eq '${secret}' or`,
      `national_id '${secret}'`,
      `(national_id eq '${secret}'`,
      `national_id in ('${secret}' '${secret}')`,
      // A value typed without quotes is a word: it is not shown either.
      `national_id eq ${secret}`,
      `national_id eq 'x' or ${secret.replaceAll('-', '_')} eq 1 ${secret.replaceAll('-', '_')}`,
      `${secret.replaceAll('-', '_')} eq 'x' ${secret.replaceAll('-', '_')}`,
    ]) {
      const message = errorOf(() => parseFilter(text)).message;
      expect(message).not.toContain('secret');
      expect(message).not.toContain('AB123456C');
      expect(message.length).toBeLessThan(160);
    }
  });

  it('refuses a filter longer than 1024 characters', () => {
    const long = `name eq '${'x'.repeat(filterLimits.maxLength)}'`;
    expect(errorOf(() => parseFilter(long))).toEqual(invalid(filterLimits.maxLength + 1));
    expect(() => parseFilter(`name eq '${'x'.repeat(filterLimits.maxLength - 11)}'`)).not.toThrow();
  });

  it('accepts five levels of nesting and refuses six', () => {
    expect(parseFilter('((((( a eq 1 )))))')).toEqual(cmp('a', 'eq', 1));
    expect(parseFilter('not not (not (a eq 1 or b eq 2))')).toMatchObject({ kind: 'not' });
    expect(errorOf(() => parseFilter('(((((( a eq 1 ))))))'))).toEqual(invalid(6));
    expect(errorOf(() => parseFilter('not not not not not not a eq 1'))).toEqual(invalid(21));
  });

  it('refuses 10,000 opening parentheses without a stack overflow', () => {
    expect(errorOf(() => parseFilter('('.repeat(10_000)))).toEqual(invalid()); // over-long
    expect(errorOf(() => parseFilter('('.repeat(500) + 'a eq 1' + ')'.repeat(500)))).toEqual(invalid(6));
    expect(errorOf(() => parseFilter('('.repeat(1024)))).toEqual(invalid(6));
    expect(errorOf(() => parseFilter('not '.repeat(256)))).toEqual(invalid(21));
  });

  it('accepts 16 comparisons and refuses 17', () => {
    const terms = (n: number) => Array.from({ length: n }, (_, i) => `f${i} eq ${i}`).join(' or ');
    expect(parseFilter(terms(16))).toMatchObject({ kind: 'or' });
    expect(errorOf(() => parseFilter(terms(17)))).toEqual(invalid(terms(16).length + 5));
  });

  it('accepts 100 values in an in-list and refuses 101', () => {
    const list = (n: number) => `id in (${Array.from({ length: n }, (_, i) => i).join(',')})`;
    expect(parseFilter(list(100))).toMatchObject({ kind: 'in' });
    expect(errorOf(() => parseFilter(list(101)))).toEqual(invalid());
  });

  it('treats a non-string as the caller’s mistake', () => {
    expect(() => parseFilter(42 as unknown as string)).toThrow(TypeError);
  });
});

describe('parseFilter: fuzzed', () => {
  const onlyInputErrors = (text: string) => {
    try {
      parseFilter(text);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      expect(error.message.length).toBeLessThan(200);
      expect(error.extensions.parameter).toBe('filter');
      expect(error.extensions.position).toBeGreaterThanOrEqual(1);
      expect(error.extensions.position).toBeLessThanOrEqual(text.length + 1);
    }
  };

  it('random strings throw nothing but InputError', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), onlyInputErrors), { numRuns: 2000 });
    fc.assert(fc.property(fc.string({ maxLength: 1100 }), onlyInputErrors), { numRuns: 300 });
  });

  it('random token soup throws nothing but InputError', () => {
    const token = fc.constantFrom(
      'and',
      'or',
      'not',
      'in',
      'eq',
      'ne',
      'gt',
      'ge',
      'lt',
      'le',
      '(',
      ')',
      ',',
      "'x'",
      "'it''s'",
      "'",
      '12',
      '-3.5e2',
      '-',
      'stage',
      'amount',
      'NOT',
      ' ',
      '=',
      '1e999',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 60 }), (tokens) => onlyInputErrors(tokens.join(' '))),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 60 }), (tokens) => onlyInputErrors(tokens.join(''))),
      { numRuns: 1000 },
    );
  });

  it('well-formed expressions round-trip: print, parse, equal', () => {
    fc.assert(
      fc.property(expression, (expr) => {
        const text = printFilter(expr);
        expect(parseFilter(text)).toEqual(expr);
        // The printed form is canonical: printing the parsed expression gives the same text.
        expect(printFilter(parseFilter(text))).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseFilterParams', () => {
  it('is undefined without a filter, the expression for one, their AND for several', () => {
    expect(parseFilterParams([])).toBeUndefined();
    expect(parseFilterParams(['a eq 1'])).toEqual(cmp('a', 'eq', 1));
    expect(parseFilterParams(['a eq 1 or a eq 2', "b eq 'x'"])).toEqual({
      kind: 'and',
      items: [{ kind: 'or', items: [cmp('a', 'eq', 1), cmp('a', 'eq', 2)] }, cmp('b', 'eq', 'x')],
    });
  });

  it('still reads the old field=value form as an equality on a string', () => {
    expect(parseFilterParams(['stage=Closed Won'])).toEqual(cmp('stage', 'eq', 'Closed Won'));
    expect(parseFilterParams(['amount=10000', "territory eq 'EMEA'"])).toEqual({
      kind: 'and',
      items: [cmp('amount', 'eq', '10000'), cmp('territory', 'eq', 'EMEA')],
    });
    // `=` inside a string of the new language is not the old form.
    expect(parseFilterParams(["name eq 'a=b'"])).toEqual(cmp('name', 'eq', 'a=b'));
  });

  it('counts comparisons over all the parameters together', () => {
    const eight = Array.from({ length: 8 }, (_, i) => `f${i} eq ${i}`).join(' and ');
    expect(parseFilterParams([eight, eight])).toMatchObject({ kind: 'and' });
    expect(() => parseFilterParams([eight, eight, 'x=1'])).toThrow(InputError);
    expect(() => parseFilterParams([eight, eight, 'x eq 1'])).toThrow(InputError);
  });
});

describe('filterFields and checkFilterFields', () => {
  const expr = parseFilter("stage eq 'x' and (amount gt 1 or not stage in ('a')) and owner ne 'b'");

  it('lists each field once', () => {
    expect(filterFields(expr)).toEqual(['stage', 'amount', 'owner']);
  });

  it('passes when every field is readable unmasked and names the first that is not', () => {
    expect(() => checkFilterFields(expr, new Set(['stage', 'amount', 'owner']))).not.toThrow();
    const error = errorOf(() => checkFilterFields(expr, new Set(['stage', 'owner'])));
    expect(error).toEqual(
      expect.objectContaining({
        code: 'INVALID_INPUT',
        extensions: { parameter: 'filter', field: 'amount' },
      }),
    );
    expect(error.message).toContain('amount');
  });
});

describe('the filter against the embedded CRM', () => {
  let dir: string;
  let store: Store;
  let crm: CrmConnector;
  const emea = [{ field: 'territory', op: 'eq', value: 'EMEA' }] as const;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-filter-'));
    store = await openGatehouseStore(
      loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) } }),
    );
    crm = createEmbeddedCrm(store.db);
    await seedCrm(store.db, {
      contacts: 200,
      seed: 3,
      owners: [
        { email: 'alice@example.com', territory: 'EMEA' },
        { email: 'erin@example.com', territory: 'NA' },
      ],
    });
  });

  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("an EMEA rep's `territory eq 'NA' or territory eq 'EMEA'` returns only EMEA", async () => {
    const filter = parseFilter("territory eq 'NA' or territory eq 'EMEA'");
    const page = await crm.query('account', { fields: ['territory'], where: emea, filter, limit: 1000 });
    expect(page.records.length).toBe(await crm.count('account', emea));
    expect(new Set(page.records.map((r) => r.territory))).toEqual(new Set(['EMEA']));
    const na = await crm.count('account', [], parseFilter("territory eq 'NA'"));
    expect(na).toBeGreaterThan(0);
    expect(await crm.count('account', emea, parseFilter("territory eq 'NA'"))).toBe(0);
  });

  it('an injection attempt is only a string that matches nothing', async () => {
    const filter = parseFilter(
      "name eq 'x'' or ''1''=''1' or name eq '1 OR 1=1; DROP TABLE crm_accounts; --'",
    );
    expect(await crm.count('account', emea, filter)).toBe(0);
    expect(await crm.count('account', emea)).toBeGreaterThan(0);
  });

  it('a number compared with a text field or text with a number field is handled by type', async () => {
    await expect(crm.count('opportunity', [], parseFilter("amount gt 'lots'"))).rejects.toEqual(
      expect.objectContaining({ code: 'INVALID_INPUT' }),
    );
    const all = await crm.count('opportunity', emea);
    const positive = await crm.count(
      'opportunity',
      emea,
      parseFilter("amount ge 0 and close_date ge '1900-01-01'"),
    );
    expect(positive).toBe(all);
  });
});

/* ------------------------------------------------------------------------------------------------ */

const fieldName = fc.stringMatching(/^[a-z_][a-z0-9_]{0,11}$/).filter((name) => !keywordSet.has(name));
const keywordSet = new Set(['and', 'or', 'not', 'in', 'eq', 'ne', 'gt', 'ge', 'lt', 'le']);
const value = fc.oneof(
  fc
    .string({ unit: 'grapheme', maxLength: 12 })
    .filter((s) => ![...s].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)),
  fc.constantFrom("O'Brien", "''", '2025-06-30', ''),
  fc.integer({ min: -1e9, max: 1e9 }),
  fc
    .double({
      min: -filterLimits.maxNumber,
      max: filterLimits.maxNumber,
      noNaN: true,
      noDefaultInfinity: true,
    })
    .map((n) => (n === 0 ? 0 : n)),
);
const leaf: fc.Arbitrary<FilterExpr> = fc.oneof(
  fc.record({
    kind: fc.constant('compare' as const),
    field: fieldName,
    op: fc.constantFrom(
      'eq' as const,
      'ne' as const,
      'gt' as const,
      'ge' as const,
      'lt' as const,
      'le' as const,
    ),
    value,
  }),
  fc.record({
    kind: fc.constant('in' as const),
    field: fieldName,
    values: fc.array(value, { minLength: 1, maxLength: 4 }),
  }),
);
const tree = fc.letrec<{ node: FilterExpr }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.record({
      kind: fc.constantFrom('and' as const, 'or' as const),
      items: fc.array(tie('node'), { minLength: 2, maxLength: 4 }),
    }),
    fc.record({ kind: fc.constant('not' as const), item: tie('node') }),
  ),
})).node;

/**
 * Trees the parser produces: no and directly inside and (or or inside or) without parentheses, and
 * within the limits as printed.
 */
const expression = tree.filter(
  (expr) =>
    printedDepth(expr) <= filterLimits.maxDepth &&
    comparisonsOf(expr) <= filterLimits.maxComparisons &&
    printFilter(expr).length <= filterLimits.maxLength,
);

/** The nesting the parser counts in the printed text: each `(` group and each `not`. */
function printedDepth(expr: FilterExpr): number {
  switch (expr.kind) {
    case 'not':
      return 1 + (expr.item.kind === 'or' || expr.item.kind === 'and' ? 1 : 0) + printedDepth(expr.item);
    case 'and':
    case 'or':
      return Math.max(
        ...expr.items.map((item) => {
          const grouped = item.kind === 'or' || (expr.kind === 'and' && item.kind === 'and');
          return (grouped ? 1 : 0) + printedDepth(item);
        }),
      );
    default:
      return 0;
  }
}

function comparisonsOf(expr: FilterExpr): number {
  switch (expr.kind) {
    case 'not':
      return comparisonsOf(expr.item);
    case 'and':
    case 'or':
      return expr.items.reduce((n, item) => n + comparisonsOf(item), 0);
    default:
      return 1;
  }
}
