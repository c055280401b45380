import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import { compileExpression, maxExpressionDepth, normalizeExpression } from './expression.js';
import {
  createEmbeddedCrm,
  seedCrm,
  type Condition,
  type CrmConnector,
  type CrmRecord,
  type FilterExpr,
} from './index.js';
import { specOf } from './metadata.js';
import { testDatabase } from '../../test/support/database.js';

const owners = [
  { email: 'alice@example.com', territory: 'EMEA' as const },
  { email: 'bob@example.com', territory: 'EMEA' as const },
  { email: 'erin@example.com', territory: 'NA' as const },
];
const emea: Condition[] = [{ field: 'territory', op: 'eq', value: 'EMEA' }];
const invalidInput = expect.objectContaining({ code: 'INVALID_INPUT' });
const fields = ['stage', 'amount', 'territory', 'owner', 'close_date'];

let dir: string;
let store: Store;
let crm: CrmConnector;
/** Every opportunity, fetched once, to check the SQL against an evaluation in JavaScript. */
let opportunities: CrmRecord[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-crm-expr-'));
  store = await openGatehouseStore(loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) } }));
  crm = createEmbeddedCrm(store.db);
  await seedCrm(store.db, { contacts: 300, seed: 7, owners });
  opportunities = (await crm.query('opportunity', { fields, where: [], limit: 10_000 })).records;
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

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

async function ids(where: Condition[], filter: FilterExpr): Promise<string[]> {
  const { records } = await crm.query('opportunity', { fields, where, filter, limit: 10_000 });
  return records.map((r) => String(r.id));
}

describe('filter expressions in the embedded CRM', () => {
  it('an or in the filter never widens past the row filter', async () => {
    const either = {
      kind: 'or',
      items: [cmp('territory', 'eq', 'NA'), cmp('territory', 'eq', 'EMEA')],
    } as const;
    const { records } = await crm.query('opportunity', {
      fields,
      where: emea,
      filter: either,
      limit: 10_000,
    });
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((r) => r.territory === 'EMEA')).toBe(true);
    expect(records.length).toBe(opportunities.filter((r) => r.territory === 'EMEA').length);
    expect(await crm.count('opportunity', emea, either)).toBe(records.length);
  });

  it('a not in the filter never reaches rows the row filter hides', async () => {
    const notEmea = { kind: 'not', item: cmp('territory', 'eq', 'EMEA') } as const;
    expect(await ids(emea, notEmea)).toEqual([]);
    expect(await crm.count('opportunity', emea, notEmea)).toBe(0);
  });

  it('an always-true filter still returns only the row-filtered rows', async () => {
    const always = {
      kind: 'or',
      items: [cmp('amount', 'ge', 0), { kind: 'not', item: cmp('amount', 'ge', 0) }],
    } as const;
    const got = await ids(emea, always);
    expect(got.length).toBe(opportunities.filter((r) => r.territory === 'EMEA').length);
  });

  it('binds every value as a parameter and puts the row filter outside the expression', () => {
    const db = store.db as unknown as Kysely<Record<string, Record<string, string | number | null>>>;
    const expression = normalizeExpression(specOf('opportunity'), {
      kind: 'or',
      items: [cmp('stage', 'eq', "x' or 1=1 --"), { kind: 'in', field: 'owner', values: ['a', 'b'] }],
    });
    const compiled = db
      .selectFrom('crm_opportunities')
      .select('id')
      .where('territory', '=', 'EMEA')
      .where((eb) => compileExpression(eb, expression))
      .compile();
    // PostgreSQL numbers its placeholders ($1, $2, ...); SQLite writes ?.
    expect(compiled.sql.replace(/\$\d+/g, '?')).toBe(
      'select "id" from "crm_opportunities" where "territory" = ? and ("stage" = ? or "owner" in (?, ?))',
    );
    expect(compiled.parameters).toEqual(['EMEA', "x' or 1=1 --", 'a', 'b']);
  });

  it('compares numbers as numbers and dates as ISO text', async () => {
    const big = await ids([], cmp('amount', 'gt', 100_000));
    expect(big.length).toBe(opportunities.filter((r) => Number(r.amount) > 100_000).length);
    const fromText = await ids([], cmp('amount', 'gt', '100000'));
    expect(fromText).toEqual(big);
    const early = await ids([], cmp('close_date', 'lt', '2025-01-01'));
    expect(early.length).toBe(opportunities.filter((r) => String(r.close_date) < '2025-01-01').length);
  });

  it('an empty in-list matches nothing, and under not everything', async () => {
    const none = { kind: 'in', field: 'stage', values: [] } as const;
    expect(await ids([], none)).toEqual([]);
    expect((await ids([], { kind: 'not', item: none })).length).toBe(opportunities.length);
  });

  it('aggregates only what the row filter and the expression both admit', async () => {
    const either = {
      kind: 'or',
      items: [cmp('territory', 'eq', 'NA'), cmp('territory', 'eq', 'EMEA')],
    } as const;
    const answer = await crm.aggregate('opportunity', {
      groupBy: 'territory',
      metrics: [{ fn: 'sum', field: 'amount' }],
      where: emea,
      filter: either,
      limit: 10,
    });
    const rows = opportunities.filter((r) => r.territory === 'EMEA');
    expect(answer.groups.map((g) => [g.key, g.count])).toEqual([['EMEA', rows.length]]);
    const won = await crm.aggregate('opportunity', {
      metrics: [{ fn: 'count' }],
      where: emea,
      filter: cmp('stage', 'eq', 'Closed Won'),
      limit: 1,
    });
    expect(won.groups[0]?.count).toBe(rows.filter((r) => r.stage === 'Closed Won').length);
  });

  it('refuses unknown fields and operators as programming mistakes', async () => {
    await expect(
      crm.query('opportunity', { fields, where: [], filter: cmp('secret', 'eq', 'x'), limit: 1 }),
    ).rejects.toThrow(TypeError);
    const badOp = { kind: 'compare', field: 'stage', op: 'like', value: 'x' } as unknown as FilterExpr;
    await expect(crm.query('opportunity', { fields, where: [], filter: badOp, limit: 1 })).rejects.toThrow(
      TypeError,
    );
    const badKind = { kind: 'xor', items: [] } as unknown as FilterExpr;
    await expect(crm.count('opportunity', [], badKind)).rejects.toThrow(TypeError);
  });

  it('refuses a value of the wrong type as bad input, without echoing it', async () => {
    const err = await crm
      .query('opportunity', { fields, where: [], filter: cmp('amount', 'eq', 'lots-of-money'), limit: 1 })
      .catch((e: unknown) => e);
    expect(err).toEqual(invalidInput);
    expect(String((err as Error).message)).not.toContain('lots-of-money');
    await expect(
      crm.query('opportunity', { fields, where: [], filter: cmp('close_date', 'ge', 'yesterday'), limit: 1 }),
    ).rejects.toEqual(invalidInput);
    await expect(
      crm.count('contact', [], cmp('created_at', 'ge', '2025-06-30T12:00:00Z')),
    ).resolves.toBeTypeOf('number');
    await expect(crm.count('contact', [], cmp('created_at', 'ge', '30/06/2025'))).rejects.toEqual(
      invalidInput,
    );
  });

  it('refuses an expression nested beyond its bound without deep recursion', () => {
    let deep: FilterExpr = cmp('stage', 'eq', 'x');
    for (let i = 0; i < 10_000; i++) deep = { kind: 'not', item: deep };
    expect(() => normalizeExpression(specOf('opportunity'), deep)).toThrow(TypeError);
    let ok: FilterExpr = cmp('stage', 'eq', 'x');
    for (let i = 1; i < maxExpressionDepth; i++) ok = { kind: 'not', item: ok };
    expect(() => normalizeExpression(specOf('opportunity'), ok)).not.toThrow();
  });

  it('returns the same rows as evaluating the expression in JavaScript', async () => {
    const stages = [...new Set(opportunities.map((r) => String(r.stage)))];
    const leaf: fc.Arbitrary<FilterExpr> = fc.oneof(
      fc.record({
        kind: fc.constant('compare' as const),
        field: fc.constant('stage'),
        op: fc.constantFrom('eq', 'ne', 'gt', 'ge', 'lt', 'le'),
        value: fc.constantFrom(...stages, 'M'),
      }),
      fc.record({
        kind: fc.constant('compare' as const),
        field: fc.constant('amount'),
        op: fc.constantFrom('eq', 'ne', 'gt', 'ge', 'lt', 'le'),
        value: fc.integer({ min: 0, max: 500_000 }),
      }),
      fc.record({
        kind: fc.constant('in' as const),
        field: fc.constantFrom('territory', 'stage'),
        values: fc.subarray(['EMEA', 'NA', 'APAC', ...stages]),
      }),
    );
    const tree = fc.letrec<{ node: FilterExpr }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.record({
          kind: fc.constantFrom('and' as const, 'or' as const),
          items: fc.array(tie('node'), { minLength: 1, maxLength: 3 }),
        }),
        fc.record({ kind: fc.constant('not' as const), item: tie('node') }),
      ),
    })).node;

    await fc.assert(
      fc.asyncProperty(tree, fc.boolean(), async (expr, rowFiltered) => {
        const where = rowFiltered ? emea : [];
        const got = await ids(where, expr);
        const want = opportunities
          .filter((r) => (!rowFiltered || r.territory === 'EMEA') && evaluate(expr, r))
          .map((r) => String(r.id));
        expect(got).toEqual(want);
      }),
      { numRuns: 150 },
    );
  });
});

/** SQL semantics over the seeded fields, none of which is null. */
function evaluate(expr: FilterExpr, record: CrmRecord): boolean {
  switch (expr.kind) {
    case 'and':
      return expr.items.every((item) => evaluate(item, record));
    case 'or':
      return expr.items.some((item) => evaluate(item, record));
    case 'not':
      return !evaluate(expr.item, record);
    case 'in':
      return expr.values.includes(record[expr.field] as string);
    case 'compare': {
      const a = record[expr.field] as string | number;
      const b = expr.value;
      switch (expr.op) {
        case 'eq':
          return a === b;
        case 'ne':
          return a !== b;
        case 'gt':
          return a > b;
        case 'ge':
          return a >= b;
        case 'lt':
          return a < b;
        case 'le':
          return a <= b;
      }
    }
  }
}
