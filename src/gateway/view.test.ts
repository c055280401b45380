import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import type {
  AggregateGroup,
  CrmConnector,
  CrmObject,
  CrmRecord,
  FieldMeta,
  FilterExpr,
  ObjectMeta,
} from '../crm/index.js';
import type { Principal } from '../policy/index.js';
import {
  aggregateAsked,
  groupCondition,
  parseAggregateQuery,
  planAggregate,
  releasedGroups,
} from './aggregate.js';
import { conditionHolds } from './authorize.js';
import { openCursor, sealCursor, visiblePage, type CursorBinding } from './cursor.js';
import { printFilter } from './filter.js';
import {
  aggregateDimensions,
  aggregateMonthFields,
  aggregateView,
  checkFilter,
  readerView,
  type CallerView,
} from './view.js';
import '../../test/support/fast-check-seed.js';

/** The caller's view and what consults it — filters, cursors, aggregates, creates — as pure functions. */

const config = loadConfig({ env: {}, overrides: { dataDir: '/tmp/unused' } });
const masked = loadConfig({
  env: {},
  overrides: { dataDir: '/tmp/unused', 'gateway.consent.mode': 'mask' },
});

const alice: Principal = {
  userId: 'u-alice',
  email: 'alice@example.com',
  role: 'sales_rep',
  territory: 'EMEA',
  appId: 'call-notes',
  clientId: 'call-notes',
  scopes: [
    'read:account.basic',
    'read:contact.basic',
    'read:contact.reach',
    'read:note.basic',
    'write:contact.note',
  ],
};
const bob: Principal = {
  ...alice,
  userId: 'u-bob',
  email: 'bob@example.com',
  role: 'sales_manager',
  scopes: [...alice.scopes, 'read:account.financial', 'read:opportunity.aggregate'],
};

/** The embedded CRM's field types (src/crm/metadata.ts), for the fields these tests name. */
const types: Record<string, FieldMeta['type']> = {
  id: 'id',
  account_id: 'id',
  contact_id: 'id',
  opportunity_id: 'id',
  annual_revenue: 'number',
  amount: 'number',
  created_at: 'datetime',
  updated_at: 'datetime',
  close_date: 'date',
  date_of_birth: 'date',
};
const fieldsOf: Record<CrmObject, string[]> = {
  account: ['id', 'territory', 'owner', 'name', 'industry', 'annual_revenue', 'created_at'],
  contact: ['id', 'territory', 'owner', 'first_name', 'last_name', 'title', 'account_id', 'email', 'phone'],
  opportunity: ['id', 'territory', 'owner', 'name', 'account_id', 'stage', 'amount', 'close_date'],
  note: ['id', 'territory', 'owner', 'body', 'author', 'account_id', 'contact_id', 'created_at'],
};
const meta = (object: CrmObject): ObjectMeta => ({
  object,
  plural: `${object}s`,
  fields: fieldsOf[object].map((name) => ({
    name,
    type: types[name] ?? 'string',
    dataClass: 'internal',
    label: name,
  })),
});

const refusal = (field: string) =>
  expect.objectContaining({ code: 'INVALID_INPUT', extensions: expect.objectContaining({ field }) });
const compare = (field: string, op: 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le', value: string | number) =>
  ({ kind: 'compare', field, op, value }) as const;

describe('the caller view', () => {
  it('shows a rep note text redacted, contact phones masked and the rest whole', () => {
    const notes = readerView(config, alice, 'note', meta('note'));
    expect(notes.shown.get('body')).toBe('redacted');
    expect(notes.shown.get('author')).toBe('whole');
    expect(notes.filterable.has('body')).toBe(false);
    expect([...notes.orderable]).toEqual(['created_at']);
    const contacts = readerView(config, alice, 'contact', meta('contact'));
    expect(contacts.shown.get('phone')).toBe('masked');
    expect(contacts.shown.get('email')).toBe('whole');
    expect(contacts.shown.has('national_id')).toBe(false);
  });

  it('refuses a range over text (the bisection that recovered a redacted phone) and over a name', () => {
    const notes = readerView(config, alice, 'note', meta('note'));
    expect(() => checkFilter(notes, compare('body', 'ge', '+44 20'))).toThrow(refusal('body'));
    expect(() => checkFilter(notes, compare('body', 'eq', 'x'))).toThrow(refusal('body'));
    const accounts = readerView(config, bob, 'account', meta('account'));
    expect(() => checkFilter(accounts, compare('name', 'ge', 'M'))).toThrow(refusal('name'));
    expect(() => checkFilter(accounts, compare('name', 'eq', 'Acme'))).not.toThrow();
    expect(() => checkFilter(accounts, compare('annual_revenue', 'gt', 1000))).not.toThrow();
  });

  it('in consent mask mode names the fields a record without consent shows nulled', () => {
    expect(readerView(config, alice, 'contact', meta('contact')).withheld.size).toBe(0);
    const view = readerView(masked, alice, 'contact', meta('contact'));
    expect([...view.withheld].sort()).toEqual(['email', 'first_name', 'last_name', 'phone', 'title']);
  });

  it('lets an aggregate filter only on its dimensions, never on a measure', () => {
    const view = aggregateView(config, bob, 'opportunity', meta('opportunity'));
    expect([...aggregateDimensions(view, meta('opportunity'))].sort()).toEqual(['owner', 'stage']);
  });

  it('groups a date by month only: the month is a coarse dimension, the exact date is not, and no filter narrows a month', () => {
    const opportunities = meta('opportunity');
    const view = aggregateView(config, bob, 'opportunity', opportunities);
    expect([...aggregateMonthFields(view, opportunities)]).toEqual(['close_date']);
    const crm = { describe: () => opportunities } as unknown as CrmConnector;
    const plan = (query: Record<string, unknown>) =>
      planAggregate(config, bob, 'opportunity', crm, parseAggregateQuery(query), []);
    expect(plan({ group_by: 'close_date:month', metric: 'sum(amount)' })).toMatchObject({
      groupBy: 'close_date',
      bucket: 'month',
    });
    const refused = (query: Record<string, unknown>) =>
      expect(() => plan(query)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    refused({ group_by: 'close_date' });
    refused({ group_by: 'stage:month' });
    refused({ group_by: 'close_date:week' });
    refused({ group_by: 'close_date:month', filter: "stage eq 'Prospecting'" });
    refused({ group_by: 'close_date:month', filter: "close_date ge '2025-03-01'" });
  });

  it('a month group holds the dates from its first day to the next month (December into January)', () => {
    expect(groupCondition('close_date', 'month', '2025-12')).toEqual([
      compare('close_date', 'ge', '2025-12-01'),
      compare('close_date', 'lt', '2026-01-01'),
    ]);
    expect(groupCondition('close_date', 'month', '2025-03')[1]).toEqual(
      compare('close_date', 'lt', '2025-04-01'),
    );
    expect(groupCondition('stage', undefined, 'Won')).toEqual([compare('stage', 'eq', 'Won')]);
  });

  it("an aggregate's audit reason names its grouping and every filter it was sent", () => {
    expect(
      aggregateAsked(
        parseAggregateQuery({ group_by: 'stage', filter: ["stage in ('A', 'B')", "owner eq 'x'"] }),
      ),
    ).toBe("group_by stage; filter stage in ('A', 'B'); filter owner eq 'x'; ");
    expect(aggregateAsked(parseAggregateQuery({ group_by: 'close_date:month' }))).toBe(
      'group_by close_date:month; ',
    );
  });
});

/** Random filters over every field of an object, with every operator. */
const filterOver = (fields: readonly string[]) => {
  const leaf = fc.oneof(
    fc.record({
      kind: fc.constant('compare' as const),
      field: fc.constantFrom(...fields),
      op: fc.constantFrom('eq', 'ne', 'gt', 'ge', 'lt', 'le'),
      value: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()),
    }),
    fc.record({
      kind: fc.constant('in' as const),
      field: fc.constantFrom(...fields),
      values: fc.array(fc.string({ maxLength: 4 }), { minLength: 1, maxLength: 3 }),
    }),
  );
  return fc.letrec<{ expr: FilterExpr }>((tie) => ({
    expr: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.record({
        kind: fc.constantFrom('and' as const, 'or' as const),
        items: fc.array(tie('expr'), { minLength: 2, maxLength: 3 }),
      }),
      fc.record({ kind: fc.constant('not' as const), item: tie('expr') }),
    ),
  })).expr;
};

/** What the view allows of one comparison, stated independently of checkFilter. */
function allowed(view: CallerView, expr: FilterExpr): boolean {
  switch (expr.kind) {
    case 'and':
    case 'or':
      return expr.items.every((item) => allowed(view, item));
    case 'not':
      return allowed(view, expr.item);
    case 'in':
      return view.shown.get(expr.field) === 'whole';
    case 'compare':
      return (
        view.shown.get(expr.field) === 'whole' &&
        (expr.op === 'eq' ||
          expr.op === 'ne' ||
          ['number', 'date', 'datetime'].includes(types[expr.field] ?? ''))
      );
  }
}

describe('property: a filter passes exactly when every comparison is one the view allows', () => {
  it.each([
    ['a rep', alice, 'note'],
    ['a rep', alice, 'contact'],
    ['a manager', bob, 'account'],
    ['a manager', bob, 'note'],
  ] as const)('%s on %s', (_who, principal, object) => {
    const view = readerView(config, principal, object, meta(object));
    fc.assert(
      fc.property(filterOver([...fieldsOf[object], 'national_id', 'consent']), (expr) => {
        let passed = true;
        try {
          checkFilter(view, expr);
        } catch {
          passed = false;
        }
        expect(passed).toBe(allowed(view, expr));
      }),
      { numRuns: 300 },
    );
  });
});

describe('cursors', () => {
  const key = new Uint8Array(32).fill(7);
  const binding: CursorBinding = { userId: 'u-alice', appId: 'call-notes', object: 'note', filter: '' };

  it('open to the position they were sealed with, for the same caller, app, object and filter only', () => {
    const cursor = sealCursor(key, binding, 'position-1');
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(openCursor(key, binding, cursor)).toBe('position-1');
    const refused = expect.objectContaining({ code: 'INVALID_INPUT' });
    for (const other of [
      { ...binding, userId: 'u-bob' },
      { ...binding, appId: 'field-notes' },
      { ...binding, object: 'contact' },
      { ...binding, filter: printFilter(compare('author', 'eq', 'bob@example.com')) },
    ]) {
      expect(() => openCursor(key, other, cursor)).toThrow(refused);
    }
    expect(() => openCursor(new Uint8Array(32).fill(8), binding, cursor)).toThrow(refused);
    const moved = sealCursor(key, binding, 'position-2').slice(0, -43) + cursor.slice(-43);
    expect(() => openCursor(key, binding, moved)).toThrow(refused);
    expect(() => openCursor(key, binding, 'abc')).toThrow(refused);
  });

  /** A connector over ids 0..n-1 in order, whose position is the last id fetched. */
  const connector = (ids: readonly number[], visible: ReadonlySet<number>) => {
    const fetched: number[][] = [];
    const fetch = async (position: string | undefined, limit: number) => {
      const from = position === undefined ? 0 : ids.indexOf(Number(position)) + 1;
      const rows = ids.slice(from, from + limit);
      fetched.push(rows);
      const more = from + limit < ids.length;
      return {
        records: rows.filter((id) => visible.has(id)).map((id): CrmRecord => ({ id })),
        ...(more && { nextCursor: String(rows.at(-1)) }),
      };
    };
    return { fetch, fetched };
  };

  it('property: paging returns exactly the visible records, each page full until the last, and every page boundary is a returned record', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.boolean(), { maxLength: 40 }),
        fc.integer({ min: 1, max: 7 }),
        fc.boolean(),
        async (flags, limit, leavesOut) => {
          const ids = flags.map((_, i) => i);
          const visible = new Set(ids.filter((i) => flags[i]));
          const { fetch } = connector(ids, visible);
          const seen: number[] = [];
          let position: string | undefined;
          do {
            const page = await visiblePage(fetch, limit, position, leavesOut);
            seen.push(...page.records.map((r) => Number(r.id)));
            if (page.next !== undefined) {
              expect(page.records).toHaveLength(limit);
              expect(page.next).toBe(String(page.records.at(-1)?.id));
            }
            // With the look-ahead, a cursor never leads to an empty page (which would say a hidden one follows).
            if (leavesOut && position !== undefined) expect(page.records.length).toBeGreaterThan(0);
            position = page.next;
          } while (position !== undefined);
          expect(seen).toEqual([...visible]);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('aggregates release no small group, directly or as a remainder', () => {
  const group = (key: string, count: number): AggregateGroup => ({ key, count, values: [] });

  it('suppresses the next smallest groups until the suppressed ones hold k records together', () => {
    const groups = [group('a', 2), group('b', 5), group('c', 9), group('d', 6)];
    expect(releasedGroups(groups, 5).map((g) => g.key)).toEqual(['c', 'd']);
    expect(releasedGroups([group('a', 3), group('b', 3), group('c', 9)], 5).map((g) => g.key)).toEqual(['c']);
    expect(releasedGroups([group('a', 9), group('b', 7)], 5).map((g) => g.key)).toEqual(['a', 'b']);
    expect(releasedGroups([group('a', 4)], 5)).toEqual([]);
  });

  it('property: the suppressed groups hold none or at least k records, and no shown group is below k', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 2, maxLength: 12 }),
        fc.integer({ min: 2, max: 10 }),
        (counts, k) => {
          const groups = counts.map((count, i) => group(String(i), count));
          const shown = releasedGroups(groups, k);
          const hidden = groups.filter((g) => !shown.includes(g)).reduce((n, g) => n + g.count, 0);
          expect(shown.every((g) => g.count >= k)).toBe(true);
          expect(hidden === 0 || hidden >= k).toBe(true);
        },
      ),
    );
  });
});

describe('a create meets every condition of its row filter', () => {
  it('eq and in alike; a field the new record has no value for fails', () => {
    const record: CrmRecord = { territory: 'EMEA', owner: 'alice@example.com', account_id: '001A' };
    expect(conditionHolds({ field: 'territory', op: 'eq', value: 'EMEA' }, record)).toBe(true);
    expect(conditionHolds({ field: 'account_id', op: 'in', value: ['001B', '001C'] }, record)).toBe(false);
    expect(conditionHolds({ field: 'account_id', op: 'in', value: ['001A'] }, record)).toBe(true);
    expect(conditionHolds({ field: 'consent', op: 'in', value: ['["sales_outreach"]'] }, record)).toBe(false);
  });
});
