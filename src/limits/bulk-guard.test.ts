import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  appBudget,
  BulkExportBlocked,
  bulkThreshold,
  userBudget,
  createLimits,
  defaultLimitsConfig,
  type LimitsConfig,
} from './index.js';

const start = Date.UTC(2025, 0, 6, 10, 0, 0);
const tableSize = 10_000;
const table = Array.from({ length: tableSize }, (_, i) => `003${String(i).padStart(12, '0')}`);
const contacts = { appId: 'call-notes', userId: 'alice', object: 'contact' };

function setup(bulkExport: Partial<LimitsConfig['bulkExport']> = {}) {
  const clock = { t: start };
  const config: LimitsConfig = {
    ...defaultLimitsConfig,
    bulkExport: { ...defaultLimitsConfig.bulkExport, windowSeconds: 3600, ...bulkExport },
  };
  return { clock, limits: createLimits(config, { now: () => clock.t }) };
}

/** A deterministic shuffle (mulberry32), so a failing order can be replayed. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let a = seed >>> 0;
  const random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Pages through `ids` as a scraper would; answers what got through and the page that was refused. */
async function scrape(
  limits: ReturnType<typeof setup>['limits'],
  ids: readonly string[],
  pageSizes: () => number,
) {
  const read = new Set<string>();
  for (let offset = 0; offset < ids.length;) {
    const page = ids.slice(offset, offset + pageSizes());
    const decision = await limits.guardBulkRead(contacts, page, tableSize, true);
    if (!decision.allowed) return { read, refusedPage: page, decision };
    for (const id of page) read.add(id);
    offset += page.length;
  }
  return { read, refusedPage: undefined, decision: undefined };
}

describe('bulk-export guard', () => {
  it.each([50, 7, 1])(
    'stops paging through a sensitive table right after 1%% with pages of %i',
    async (size) => {
      const { limits } = setup();
      const { read, refusedPage, decision } = await scrape(limits, table, () => size);
      expect(refusedPage).toBeDefined();
      expect(read.size).toBeLessThanOrEqual(100);
      expect(read.size + size).toBeGreaterThan(100); // refused at the first page that would pass 100
      expect(decision).toMatchObject({ allowed: false, distinct: read.size, threshold: 100 });
      expect(decision?.event).toEqual({
        action: 'bulk_export',
        guard: 'bulk_export_guard',
        budget: 'app',
        appId: 'call-notes',
        object: 'contact',
        sensitive: true,
        tableSize,
        threshold: 100,
        distinct: read.size,
        attempted: read.size + size,
        windowSeconds: 3600,
      });
      // Later pages stay refused, and so does one more record read on its own.
      expect(
        (await limits.guardBulkRead(contacts, table.slice(5000, 5000 + size), tableSize, true)).allowed,
      ).toBe(false);
      expect((await limits.guardBulkRead(contacts, [table[9999]!], tableSize, true)).allowed).toBe(
        read.size === 100 ? false : true,
      );
    },
  );

  it('stops a scrape in any order and with any page sizes at the threshold', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 20 }),
        async (seed, sizes) => {
          const { limits } = setup();
          let i = 0;
          const { read, refusedPage } = await scrape(
            limits,
            shuffled(table, seed),
            () => sizes[i++ % sizes.length]!,
          );
          expect(refusedPage).toBeDefined();
          expect(read.size).toBeLessThanOrEqual(100);
          expect(read.size + new Set(refusedPage).size).toBeGreaterThan(100);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('counts overlapping pages (a cursor moved back) only once per record', async () => {
    const { limits } = setup();
    for (let offset = 0; offset + 50 <= 100; offset += 10) {
      expect(
        (await limits.guardBulkRead(contacts, table.slice(offset, offset + 50), tableSize, true)).allowed,
      ).toBe(true);
    }
    const decision = await limits.guardBulkRead(contacts, table.slice(0, 100), tableSize, true);
    expect(decision).toMatchObject({ allowed: true, distinct: 100 });
    expect((await limits.guardBulkRead(contacts, table.slice(100, 101), tableSize, true)).allowed).toBe(
      false,
    );
  });

  it('allows re-reading the same 20 records 1000 times', async () => {
    const { limits } = setup();
    const twenty = table.slice(0, 20);
    for (let i = 0; i < 1000; i += 1) {
      const decision = await limits.guardBulkRead(
        contacts,
        shuffled(twenty, i).slice(0, 1 + (i % 20)),
        tableSize,
        true,
      );
      expect(decision.allowed).toBe(true);
    }
    expect(await limits.guardBulkRead(contacts, twenty, tableSize, true)).toEqual({
      allowed: true,
      budget: 'app',
      distinct: 20,
      threshold: 100,
    });
  });

  it('counts an id repeated within one read once', async () => {
    const { limits } = setup();
    const decision = await limits.guardBulkRead(
      contacts,
      Array(500).fill(table[0]!) as string[],
      tableSize,
      true,
    );
    expect(decision).toMatchObject({ allowed: true, distinct: 1 });
  });

  it('slides: records read more than a window ago stop counting', async () => {
    const { clock, limits } = setup();
    expect((await limits.guardBulkRead(contacts, table.slice(0, 60), tableSize, true)).allowed).toBe(true);
    clock.t += 1_800_000;
    expect((await limits.guardBulkRead(contacts, table.slice(60, 100), tableSize, true)).allowed).toBe(true);
    expect((await limits.guardBulkRead(contacts, table.slice(100, 101), tableSize, true)).allowed).toBe(
      false,
    );

    clock.t = start + 3_600_000; // the first 60 leave the window, the last 40 stay
    expect((await limits.guardBulkRead(contacts, table.slice(100, 161), tableSize, true)).allowed).toBe(
      false,
    );
    expect(await limits.guardBulkRead(contacts, table.slice(100, 160), tableSize, true)).toMatchObject({
      allowed: true,
      distinct: 100,
    });
  });

  it('slides from the last read: re-reading a record keeps it counted', async () => {
    const { clock, limits } = setup();
    await limits.guardBulkRead(contacts, table.slice(0, 100), tableSize, true);
    clock.t += 3_000_000;
    await limits.guardBulkRead(contacts, table.slice(0, 50), tableSize, true);
    clock.t = start + 3_600_000;
    expect((await limits.guardBulkRead(contacts, table.slice(100, 151), tableSize, true)).allowed).toBe(
      false,
    );
    expect(await limits.guardBulkRead(contacts, table.slice(100, 150), tableSize, true)).toMatchObject({
      allowed: true,
      distinct: 100,
    });
  });

  it('keeps apps and objects apart', async () => {
    const { limits } = setup();
    expect((await limits.guardBulkRead(contacts, table.slice(0, 100), tableSize, true)).allowed).toBe(true);
    expect(
      (
        await limits.guardBulkRead(
          { appId: 'other', userId: 'alice', object: 'contact' },
          table.slice(0, 100),
          tableSize,
          true,
        )
      ).allowed,
    ).toBe(true);
    expect(
      (
        await limits.guardBulkRead(
          { appId: 'call-notes', userId: 'alice', object: 'note' },
          table.slice(0, 100),
          tableSize,
          true,
        )
      ).allowed,
    ).toBe(true);
    expect((await limits.guardBulkRead(contacts, table.slice(100, 101), tableSize, true)).allowed).toBe(
      false,
    );
  });

  it('guards a non-sensitive object at its own, higher fraction', async () => {
    const { limits } = setup();
    const accounts = { appId: 'pipeline-dashboard', userId: 'bob', object: 'account' };
    const first = await limits.guardBulkRead(accounts, table.slice(0, 2500), tableSize, false);
    expect(first).toEqual({ allowed: true, budget: 'app', distinct: 2500, threshold: 2500 });
    const next = await limits.guardBulkRead(accounts, table.slice(2500, 2501), tableSize, false);
    expect(next).toMatchObject({
      allowed: false,
      threshold: 2500,
      event: { sensitive: false, attempted: 2501 },
    });
  });

  it('gives the gateway a 403 that names the guard and carries no record ids', async () => {
    const { limits } = setup();
    const decision = await limits.guardBulkRead(contacts, table.slice(0, 101), tableSize, true);
    const error = new BulkExportBlocked(decision);
    expect(error).toMatchObject({ status: 403, code: 'BULK_EXPORT_BLOCKED' });
    expect(error.extensions).toEqual({
      rule: 'bulk_export_guard',
      budget: 'app',
      threshold: 100,
      object: 'contact',
      window_seconds: 3600,
    });
    expect(JSON.stringify({ ...error.extensions, message: error.message })).not.toContain(table[0]);
  });

  it('lets a small table be read up to the minimum', async () => {
    const { limits } = setup();
    expect(await limits.guardBulkRead(contacts, table.slice(0, 40), 40, true)).toEqual({
      allowed: true,
      budget: 'app',
      distinct: 40,
      threshold: 50,
    });
  });
});

describe('export budgets per user and per app', () => {
  const plan = { expectedUsers: 50, expectedReads: 40 };
  const asUser = (userId: string, appId = 'call-notes') => ({ appId, userId, object: 'contact', plan });

  it('lets 50 reps each read their own 40 accounts of contacts through one app (issue 18)', async () => {
    const { limits } = setup();
    for (let rep = 0; rep < 50; rep += 1) {
      const own = table.slice(rep * 120, rep * 120 + 120);
      const decision = await limits.guardBulkRead(asUser(`rep${rep}`), own, 100_000, true);
      expect(decision.allowed).toBe(true);
    }
  });

  it('holds one user to one budget across apps and tokens: a split export stops at the user budget', async () => {
    const { limits } = setup();
    const budget = userBudget(defaultLimitsConfig.bulkExport, 100_000, true);
    expect(
      (await limits.guardBulkRead(asUser('mallory', 'app-a'), table.slice(0, 150), 100_000, true)).allowed,
    ).toBe(true);
    const second = await limits.guardBulkRead(
      asUser('mallory', 'app-b'),
      table.slice(150, 300),
      100_000,
      true,
    );
    expect(second).toMatchObject({
      allowed: false,
      budget: 'user',
      threshold: budget,
      event: { budget: 'user', attempted: 300 },
    });
  });

  it('holds an app to its plan with headroom: many users each under their own budget still stop at the app budget', async () => {
    const { limits } = setup();
    const small = { expectedUsers: 2, expectedReads: 20 };
    const budget = appBudget(defaultLimitsConfig.bulkExport, 100_000, true, small);
    expect(budget).toBe(2 * 20 * defaultLimitsConfig.bulkExport.planHeadroom);
    let refused;
    for (let user = 0; user < 10 && !refused; user += 1) {
      const decision = await limits.guardBulkRead(
        { appId: 'lead-sync', userId: `u${user}`, object: 'contact', plan: small },
        table.slice(user * 50, user * 50 + 50),
        100_000,
        true,
      );
      if (!decision.allowed) refused = decision;
    }
    expect(refused).toMatchObject({ budget: 'app', threshold: budget, event: { budget: 'app' } });
  });

  it("gives a plan that declares no reads of an object the sum of its users' budgets", () => {
    const config = defaultLimitsConfig.bulkExport;
    expect(appBudget(config, 100_000, true, { expectedUsers: 3 })).toBe(3 * config.perUserRecords);
    expect(appBudget(config, 2000, true, undefined)).toBe(bulkThreshold(config, 2000, true));
  });
});

describe('bulkThreshold', () => {
  const config = { ...defaultLimitsConfig.bulkExport, minimum: 0 };

  it('is the fraction of the table, rounded up, between the minimum and the tracking cap', () => {
    expect(bulkThreshold(defaultLimitsConfig.bulkExport, 10_000, true)).toBe(100);
    expect(bulkThreshold(defaultLimitsConfig.bulkExport, 10_000, false)).toBe(2500);
    expect(bulkThreshold(defaultLimitsConfig.bulkExport, 10, true)).toBe(50);
    expect(bulkThreshold(config, 10_001, true)).toBe(101);
    expect(bulkThreshold(config, 0, true)).toBe(0);
    expect(bulkThreshold({ ...config, maxTracked: 1000 }, 10_000_000, false)).toBe(1000);
  });

  it('does not round binary noise up (0.07 × 100 is 7.000000000000001 in floating point)', () => {
    expect(0.07 * 100).toBeGreaterThan(7);
    expect(bulkThreshold({ ...config, fraction: 0.07 }, 100, true)).toBe(7);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 99 }), fc.integer({ min: 0, max: 1000 }), (percent, hundreds) => {
        const threshold = bulkThreshold(
          { ...config, fraction: percent / 100, maxTracked: 1e9 },
          hundreds * 100,
          true,
        );
        expect(threshold).toBe(percent * hundreds);
      }),
    );
  });

  it('rejects a bad table size or ids as a programming error', async () => {
    const { limits } = setup();
    await expect(limits.guardBulkRead(contacts, ['a'], -1, true)).rejects.toBeInstanceOf(TypeError);
    await expect(limits.guardBulkRead(contacts, ['a'], Number.NaN, true)).rejects.toBeInstanceOf(TypeError);
    await expect(limits.guardBulkRead(contacts, [1] as unknown as string[], 10, true)).rejects.toBeInstanceOf(
      TypeError,
    );
  });
});
