import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CrmConnector } from '../src/crm/index.js';
import { openTestSql } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import { auditEventsOf, expectProblem, json, requestIdOf, type Page } from './support/http.js';

// Detection's containment (throttle, revoke, suspend) would answer this suite's deliberate refusals and
// bulk reads; it has suites of its own, so it is off here.
const quietDetection = { 'detect.enabled': false };

/**
 * Limits over real HTTP: token-bucket rate limits with RateLimit fields and Retry-After, the bulk-export guard (with its
 * `bulk_export` audit event for detection) and the circuit breaker in front of a failing CRM. Each demo
 * has the one setting it tests; the bulk guard runs with the defaults.
 */

const read = 'read:account.basic read:contact.basic read:contact.reach';

describe('rate limits (token buckets)', () => {
  let demo: Demo;
  let carol: string;

  beforeAll(async () => {
    // A burst of 5 per app that refills one token every 2 s: fast enough to watch a refill, slow enough
    // that the burst below cannot refill under it. Users get a burst of 3, refilled one every 5 s.
    demo = await startDemo({
      config: {
        ...quietDetection,
        'limits.perApp': { burst: 5, ratePerSecond: 0.5 },
        'limits.perUser': { burst: 3, ratePerSecond: 0.2 },
      },
    });
    carol = await demo.accessToken('carol', 'console', 'audit:read');
  });
  afterAll(async () => demo?.stop());

  it('a burst past the per-app limit, across tokens of the app, is 429 with exact Retry-After and RateLimit fields', async () => {
    const [alice, bob] = await Promise.all([
      demo.accessToken('alice', 'call-notes', read),
      demo.accessToken('bob', 'call-notes', read),
    ]);
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await demo.get('/crm/v1/accounts?limit=1', i % 2 ? bob : alice);
      expect(response.status).toBe(200);
      expect(response.headers.get('ratelimit-policy')).toBe(
        '"user";q=3;w=15, "app";q=5;w=10, "quota";q=100000;w=86400',
      );
      remaining.push(/"app";r=(\d+);t=(\d+)/.exec(response.headers.get('ratelimit') ?? '')?.[1] ?? '');
      expect(response.headers.get('retry-after')).toBeNull();
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);

    // bob has a token of his own left, so it is the app's bucket that refuses.
    const refused = await demo.get('/crm/v1/accounts?limit=1', bob);
    const problem = await expectProblem(refused, 429, 'RATE_LIMITED');
    expect(problem.limit).toBe('app');
    // One token comes back every 2 s, less the time the burst took, rounded up: 2 s, or 1 s when the
    // burst took over a second (a loaded machine). Either way, waiting that long must be enough.
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect([1, 2]).toContain(retryAfter);
    expect(refused.headers.get('ratelimit')).toMatch(/"app";r=0;t=(9|10)\b/);
    const [row] = await auditEventsOf(demo, carol, requestIdOf(refused));
    expect(row?.event).toMatchObject({
      outcome: 'deny',
      reason: 'RATE_LIMITED: app limit of 5',
      app_id: 'call-notes',
    });

    // Waiting what Retry-After said is enough for exactly one more request.
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
    expect((await demo.get('/crm/v1/accounts?limit=1', bob)).status).toBe(200);
    await expectProblem(await demo.get('/crm/v1/accounts?limit=1', bob), 429, 'RATE_LIMITED');
  });

  it('another app keeps its own budget', async () => {
    const dashboard = await demo.accessToken('erin', 'pipeline-dashboard', 'read:account.basic');
    expect((await demo.get('/crm/v1/accounts?limit=1', dashboard)).status).toBe(200);
  });

  it("one user is limited across every app they use, without spending the apps' budgets", async () => {
    const [notes, dashboard] = await Promise.all([
      demo.accessToken('erin', 'call-notes', read),
      demo.accessToken('erin', 'pipeline-dashboard', 'read:account.basic'),
    ]);
    // call-notes has no tokens left from the first test: erin's requests through it are refused by the
    // app limit and, all-or-nothing, take nothing from erin's own bucket (3, one spent just above).
    await expectProblem(await demo.get('/crm/v1/accounts?limit=1', notes), 429, 'RATE_LIMITED');
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await demo.get('/crm/v1/accounts?limit=1', dashboard)).status);
    expect(statuses).toEqual([200, 200]);
    const refused = await demo.get('/crm/v1/accounts?limit=1', dashboard);
    const problem = await expectProblem(refused, 429, 'RATE_LIMITED');
    expect(problem.limit).toBe('user');
    expect(refused.headers.get('retry-after')).toBe('5');
  });
});

describe('the bulk-export guard', () => {
  let demo: Demo;
  let carol: string;
  /** Contacts alice has been given so far, through any token. */
  const seen = new Set<string>();
  const userBudget = 60;

  beforeAll(async () => {
    demo = await startDemo({
      config: { ...quietDetection, 'limits.bulkExport': { perUserRecords: userBudget } },
    });
    carol = await demo.accessToken('carol', 'console', 'audit:read');
  });
  afterAll(async () => demo?.stop());

  /** Pages through contacts with `token` until `pages` pages or a refusal; answers the refusal, if any. */
  async function readPages(token: string, pages: number, size: number, into?: Set<string>) {
    let cursor: string | null = null;
    for (let i = 0; i < pages; i++) {
      const response = await demo.get(
        `/crm/v1/contacts?limit=${size}${cursor ? `&cursor=${cursor}` : ''}`,
        token,
      );
      if (response.status !== 200) return response;
      const page = await json<Page>(response);
      for (const record of page.records) into?.add(String(record.id));
      cursor = page.next_cursor;
      if (cursor === null) break;
    }
    return undefined;
  }

  it('two reps each reading their own pages of contacts through one app are not refused (the app budget was 1% of the table)', async () => {
    // Before: 1% of 2000 contacts, floor 50, per app: the second page of the second rep was refused and
    // detection suspended call-notes for everyone.
    const alice = await demo.accessToken('alice', 'call-notes', read);
    const erin = await demo.accessToken('erin', 'call-notes', read);
    expect(await readPages(alice, 2, 25, seen)).toBeUndefined();
    expect(await readPages(erin, 2, 25)).toBeUndefined();
  });

  it("one user's export split over small pages and several tokens is refused (403) at the user budget and raises bulk_export", async () => {
    const tokens = await Promise.all([
      demo.accessToken('alice', 'call-notes', read),
      demo.accessToken('alice', 'call-notes', read),
      demo.accessToken('alice', 'call-notes', 'read:contact.basic'),
    ]);
    const cursors: (string | null)[] = tokens.map(() => null);
    let refused: Response | undefined;
    for (let round = 0; round < 30 && !refused; round++) {
      const i = round % tokens.length;
      const cursor = cursors[i];
      const response = await demo.get(
        `/crm/v1/contacts?limit=7${cursor ? `&cursor=${cursor}` : ''}`,
        tokens[i],
      );
      if (response.status !== 200) {
        refused = response;
        break;
      }
      const page = await json<Page>(response);
      for (const record of page.records) seen.add(String(record.id));
      cursors[i] = page.next_cursor;
    }
    expect(refused).toBeDefined();
    const problem = await expectProblem(refused as Response, 403, 'BULK_EXPORT_BLOCKED');
    expect(problem).toMatchObject({
      rule: 'bulk_export_guard',
      budget: 'user',
      threshold: userBudget,
      object: 'contact',
    });
    expect(seen.size).toBeLessThanOrEqual(userBudget);

    const rows = await auditEventsOf(demo, carol, requestIdOf(refused as Response));
    expect(rows.map((r) => r.event.action)).toEqual(['bulk_export', 'crm.list']);
    expect(rows[0]?.event).toMatchObject({ outcome: 'deny', app_id: 'call-notes', resource_type: 'contact' });
    expect(rows[0]?.event.reason).toMatch(
      new RegExp(
        `^guard=bulk_export_guard budget=user object=contact sensitive=true threshold=${userBudget} `,
      ),
    );
    expect(rows[1]?.event.reason).toBe(`BULK_EXPORT_BLOCKED: bulk_export_guard user budget ${userBudget}`);
    for (const id of seen) expect(JSON.stringify(rows)).not.toContain(id);
  });

  it('another user of the same app is not refused because of it', async () => {
    const erin = await demo.accessToken('erin', 'call-notes', read);
    expect(await readPages(erin, 1, 5)).toBeUndefined();
  });

  it('then fetching unseen records one id at a time is refused too; re-reading a counted one is not', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', read);
    const db = await openTestSql(demo.dataDir);
    const rows = await db.all<{ id: string }>(
      "select id from crm_contacts where territory = 'EMEA' and consent like '%sales_outreach%' order by id desc limit 10",
    );
    await db.close();
    // The split export stopped within a page of the budget: what is left of it fits, one more does not.
    const left = userBudget - seen.size;
    const statuses: number[] = [];
    for (const { id } of rows.slice(0, left + 1)) {
      expect(seen.has(id)).toBe(false);
      statuses.push((await demo.get(`/crm/v1/contacts/${id}`, alice)).status);
    }
    expect(statuses.slice(0, -1).every((status) => status === 200)).toBe(true);
    expect(statuses.at(-1)).toBe(403);
    const counted = [...seen][0] as string;
    expect((await demo.get(`/crm/v1/contacts/${counted}`, alice)).status).toBe(200);
  });
});

describe('the circuit breaker', () => {
  let demo: Demo;
  let carol: string;
  let failing = false;
  let calls = 0;

  /** The embedded CRM, made to fail like a CRM that went down while `failing` is set. */
  const flaky = (crm: CrmConnector): CrmConnector => {
    const maybeFail = async <T>(fn: () => Promise<T>): Promise<T> => {
      calls += 1;
      if (failing) throw new Error('connect ECONNREFUSED');
      return fn();
    };
    return {
      ...crm,
      describe: (object) => crm.describe(object),
      get: (...args) => maybeFail(() => crm.get(...args)),
      query: (...args) => maybeFail(() => crm.query(...args)),
      count: (...args) => maybeFail(() => crm.count(...args)),
    };
  };

  beforeAll(async () => {
    demo = await startDemo({
      config: { ...quietDetection, 'limits.breaker': { failureThreshold: 3, openSeconds: 60 } },
      start: { wrapConnector: flaky },
    });
    carol = await demo.accessToken('carol', 'console', 'audit:read');
  });
  afterAll(async () => demo?.stop());

  it('a failing CRM is 503; after the threshold the circuit opens and refuses without calling it', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', read);
    expect((await demo.get('/crm/v1/accounts?limit=1', alice)).status).toBe(200);
    failing = true;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await demo.get('/crm/v1/accounts?limit=1', alice);
      await expectProblem(response, 503, 'DEPENDENCY_UNAVAILABLE');
      ids.push(requestIdOf(response));
    }
    const before = calls;
    const started = performance.now();
    const open = await demo.get('/crm/v1/accounts?limit=1', alice);
    const elapsed = performance.now() - started;
    const problem = await expectProblem(open, 503, 'CIRCUIT_OPEN');
    expect(problem.connector).toBe('embedded');
    expect(Number(open.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(calls).toBe(before);
    expect(elapsed).toBeLessThan(1000);
    ids.push(requestIdOf(open));

    for (const id of ids) {
      const [row] = await auditEventsOf(demo, carol, id);
      expect(row?.event.outcome).toBe('error');
    }
    const [last] = await auditEventsOf(demo, carol, ids.at(-1) as string);
    expect(last?.event.reason).toBe('CIRCUIT_OPEN');
  });
});
