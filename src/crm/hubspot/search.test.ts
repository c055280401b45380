import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../errors/index.js';
import { encodeCursor } from '../cursor.js';
import type { FilterExpr, FilterOp } from '../types.js';
import { createHubSpotConnector, type HubSpotConnector } from './connector.js';
import { checkSearch, startHubSpotFake, type HubSpotFake } from './fake.js';
import { searchLimits, toFilterGroups, type Encoder } from './search.js';

const encoder: Encoder = { property: (field) => `p_${field}`, value: (_field, value) => String(value) };
const compare = (field: string, op: FilterOp, value: string): FilterExpr => ({
  kind: 'compare',
  field,
  op,
  value,
});

describe('filterGroups from row filters and filter expressions', () => {
  it('puts negations down (De Morgan) and keeps the row filter in every group', () => {
    const groups = toFilterGroups(
      [{ field: 'territory', op: 'eq', value: 'EMEA' }],
      {
        kind: 'not',
        item: { kind: 'and', items: [compare('a', 'gt', '1'), { kind: 'in', field: 'b', values: ['x'] }] },
      },
      encoder,
    );
    expect(groups).toEqual([
      {
        filters: [
          { propertyName: 'p_territory', operator: 'EQ', value: 'EMEA' },
          { propertyName: 'p_a', operator: 'LTE', value: '1' },
        ],
      },
      {
        filters: [
          { propertyName: 'p_territory', operator: 'EQ', value: 'EMEA' },
          { propertyName: 'p_b', operator: 'HAS_PROPERTY' },
          { propertyName: 'p_b', operator: 'NOT_IN', values: ['x'] },
        ],
      },
    ]);
  });

  it('an empty in-list matches nothing (no request), a negated one everything', () => {
    expect(toFilterGroups([], { kind: 'in', field: 'a', values: [] }, encoder)).toBeUndefined();
    expect(toFilterGroups([{ field: 'a', op: 'in', value: [] }], undefined, encoder)).toBeUndefined();
    expect(
      toFilterGroups([], { kind: 'not', item: { kind: 'in', field: 'a', values: [] } }, encoder),
    ).toEqual([]);
  });

  it("refuses (422) what HubSpot's limits cannot take, rather than sending part of it", () => {
    const wide: FilterExpr = {
      kind: 'or',
      items: Array.from({ length: searchLimits.groups + 1 }, (_, i) => compare('a', 'eq', String(i))),
    };
    expect(() => toFilterGroups([], wide, encoder)).toThrow(InputError);
    const deep: FilterExpr = {
      kind: 'and',
      items: Array.from({ length: searchLimits.filtersPerGroup + 1 }, (_, i) => compare(`f${i}`, 'eq', 'x')),
    };
    expect(() => toFilterGroups([], deep, encoder)).toThrow(/too complex for HubSpot search/);
    const values = Array.from({ length: searchLimits.inValues + 1 }, (_, i) => `v${i}`);
    expect(() => toFilterGroups([], { kind: 'in', field: 'a', values }, encoder)).toThrow(InputError);
    // An expression that would expand past any limit stops early instead of growing exponentially.
    const product: FilterExpr = {
      kind: 'and',
      items: Array.from({ length: 12 }, (_, i) => ({
        kind: 'or' as const,
        items: [compare(`a${i}`, 'eq', 'x'), compare(`b${i}`, 'eq', 'y')],
      })),
    };
    expect(() => toFilterGroups([], product, encoder)).toThrow(InputError);
  });
});

describe('the fake validates search bodies as HubSpot does', () => {
  const defs = [{ name: 'name', label: 'Name', type: 'string', fieldType: 'text' }];
  it.each([
    [
      { filterGroups: [{ filters: [{ propertyName: 'nope', operator: 'EQ', value: 'x' }] }] },
      /does not exist/,
    ],
    [{ filterGroups: [{ filters: [{ propertyName: 'name', operator: 'LIKE', value: 'x' }] }] }, /operator/],
    [{ filterGroups: [{ filters: [{ propertyName: 'name', operator: 'IN', value: 'x' }] }] }, /values/],
    [{ filterGroups: Array.from({ length: 6 }, () => ({ filters: [] })) }, /Too many filter groups/],
    [
      {
        filterGroups: [
          { filters: Array.from({ length: 7 }, () => ({ propertyName: 'name', operator: 'HAS_PROPERTY' })) },
        ],
      },
      /Too many filters in a filter group/,
    ],
    [{ filterGroups: [], limit: 201 }, /limit/],
    [{ filterGroups: [], after: '9990', limit: 100 }, /10000/],
    [{ filterGroups: [], select: ['name'] }, /Unrecognized field "select"/],
  ])('%j is refused', (body, message) => {
    expect(checkSearch(body, defs)).toMatch(message);
  });
});

describe('hostile filter values reach HubSpot exactly as meant', () => {
  const token = 'pat-property-test';
  let fake: HubSpotFake;
  let hubspot: HubSpotConnector;

  beforeAll(async () => {
    fake = await startHubSpotFake({ token });
    hubspot = await createHubSpotConnector({ baseUrl: fake.url, token: async () => token });
  });
  afterAll(async () => {
    hubspot?.close();
    await fake?.close();
  });

  it('a cursor naming an id HubSpot cannot have is refused, not read as the first page', async () => {
    const forged = encodeCursor('account', '001ABCDEFGHIJKL');
    await expect(
      hubspot.query('account', { fields: ['name'], where: [], limit: 3, cursor: forged }),
    ).rejects.toMatchObject({ code: 'INVALID_INPUT', extensions: { parameter: 'cursor' } });
  });

  it('the fake receives the intended filterGroups, whatever the values hold', async () => {
    const value = fc.string({ unit: 'binary', maxLength: 40 });
    const op = fc.constantFrom<FilterOp>('eq', 'ne', 'gt', 'ge', 'lt', 'le');
    const operator: Record<FilterOp, string> = {
      eq: 'EQ',
      ne: 'NEQ',
      gt: 'GT',
      ge: 'GTE',
      lt: 'LT',
      le: 'LTE',
    };
    await fc.assert(
      fc.asyncProperty(op, value, value, value, value, async (first, v1, v2, v3, v4) => {
        const filter: FilterExpr = {
          kind: 'or',
          items: [
            compare('name', first, v1),
            {
              kind: 'and',
              items: [
                { kind: 'in', field: 'industry', values: [v2, v3] },
                { kind: 'not', item: compare('name', 'eq', v4) },
              ],
            },
          ],
        };
        const answered = fake.searches.length;
        await hubspot.query('account', {
          fields: ['name'],
          where: [{ field: 'territory', op: 'eq', value: 'EMEA' }],
          filter,
          limit: 3,
        });
        const territory = { propertyName: 'gatehouse_territory', operator: 'EQ', value: 'EMEA' };
        const present = (propertyName: string) => ({ propertyName, operator: 'HAS_PROPERTY' });
        expect(fake.searches.length).toBe(answered + 1);
        expect((fake.searches.at(-1) as { filterGroups: unknown }).filterGroups).toEqual([
          {
            filters: [
              territory,
              ...(first === 'ne' ? [present('name')] : []),
              { propertyName: 'name', operator: operator[first], value: v1 },
            ],
          },
          {
            filters: [
              territory,
              { propertyName: 'industry', operator: 'IN', values: [...new Set([v2, v3])] },
              present('name'),
              { propertyName: 'name', operator: 'NEQ', value: v4 },
            ],
          },
        ]);
      }),
      { numRuns: 60 },
    );
  });
});
