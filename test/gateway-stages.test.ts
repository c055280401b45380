import { describe, expect, it } from 'vitest';
import { dlpKinds, loadConfig } from '../src/config/index.js';
import { consentFor } from '../src/crm/seed/seed.js';
import { DETECTOR_KINDS } from '../src/dlp/index.js';
import type { CrmConnector, CrmRecord } from '../src/crm/index.js';
import { consentCondition, hasConsent } from '../src/gateway/consent.js';
import { bulkGuardStage } from '../src/gateway/guard.js';
import type { Trail } from '../src/gateway/pipeline.js';
import { createLimits, defaultLimitsConfig } from '../src/limits/index.js';
import { asCrmKnowsThem, etagOf } from '../src/gateway/stages.js';
import { requireIfMatch } from '../src/gateway/writes.js';
import type { Principal } from '../src/policy/index.js';

/** The gateway's pure stages, in-process. */

const config = loadConfig({ env: {}, overrides: { dataDir: '/tmp/unused' } });
const principal = (appId: string): Principal => ({
  userId: 'alice',
  email: 'alice@example.com',
  role: 'sales_rep',
  territory: 'EMEA',
  appId,
  clientId: appId,
  scopes: [],
});

describe('configuration', () => {
  it('names exactly the DLP detector kinds (config depends on no module, so the list is kept in step here)', () => {
    expect([...dlpKinds].sort()).toEqual([...DETECTOR_KINDS].sort());
  });

  it('refuses an app purpose outside the purpose vocabulary', () => {
    expect(() =>
      loadConfig({
        env: {},
        overrides: { dataDir: '/tmp/unused', 'gateway.consent.appPurposes': { x: 'spying' } },
      }),
    ).toThrow(/gateway.consent/);
  });
});

describe('consent', () => {
  it('pushes "consented to P" into the query as the sorted purpose arrays that contain P', () => {
    const condition = consentCondition(config, principal('call-notes'));
    expect(condition).toEqual({
      field: 'consent',
      op: 'in',
      value: expect.arrayContaining([
        '["sales_outreach"]',
        '["analytics","sales_outreach"]',
        '["marketing","sales_outreach"]',
        '["analytics","marketing","sales_outreach"]',
      ]),
    });
    expect(condition.value).toHaveLength(4);
  });

  it('an app without a declared purpose matches no contact', () => {
    expect(consentCondition(config, principal('unknown-app'))).toEqual({
      field: 'consent',
      op: 'in',
      value: [],
    });
  });

  it('every seeded consent value is in the form the condition matches', () => {
    const matches = new Set(consentCondition(config, principal('call-notes')).value as string[]);
    for (let i = 0; i < 200; i++) {
      const flags = consentFor(`003000000000${String(i).padStart(3, '0')}`);
      const record = { id: 'x', consent: flags };
      expect(matches.has(flags)).toBe(hasConsent(config, principal('call-notes'), record));
    }
  });

  it('unreadable flags count as no consent', () => {
    for (const consent of ['', 'not json', '{"sales_outreach":true}', null]) {
      expect(hasConsent(config, principal('call-notes'), { id: 'x', consent })).toBe(false);
    }
  });
});

describe('If-Match', () => {
  it('is required (428), and * or weak tags do not count as one', () => {
    for (const header of [undefined, '', '*', 'W/"abc"', 'abc']) {
      expect(() => requireIfMatch(header)).toThrow(
        expect.objectContaining({ code: 'PRECONDITION_REQUIRED' }),
      );
    }
    expect(requireIfMatch('"a", W/"b", "c"')).toEqual(['"a"', '"c"']);
  });

  it('the ETag changes with the version and the record, and is a strong tag', () => {
    const a = etagOf({ id: '002A', updated_at: '2025-01-01T00:00:00.000Z' });
    expect(a).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(etagOf({ id: '002A', updated_at: '2025-01-01T00:00:00.001Z' })).not.toBe(a);
    expect(etagOf({ id: '002B', updated_at: '2025-01-01T00:00:00.000Z' })).not.toBe(a);
  });
});

describe('the principal as a vendor CRM knows its user', () => {
  const alice = principal('call-notes');
  it("takes the territory the CRM holds over the token's claim; the claim stands where it holds none", () => {
    const moved = asCrmKnowsThem(alice, { crmUserId: '005x', email: alice.email, territory: 'NA' });
    expect(moved).toMatchObject({ territory: 'NA', userId: 'alice', appId: 'call-notes' });
    expect(asCrmKnowsThem(alice, { crmUserId: '005x', email: alice.email, territory: 'NA' })).toBe(moved);
    expect(asCrmKnowsThem(alice, undefined)).toBe(alice);
    expect(asCrmKnowsThem(alice, { crmUserId: '005x', email: alice.email })).toBe(alice);
    expect(asCrmKnowsThem(alice, { crmUserId: '005x', email: alice.email, territory: 'EMEA' })).toBe(alice);
  });
});

describe('bulk guard stage', () => {
  it("counts a table once per cacheSeconds, and judges sensitivity by the object's current metadata", async () => {
    let counts = 0;
    let meta = { fields: [{ name: 'title', dataClass: 'internal' }] };
    const crm = {
      count: () => Promise.resolve(++counts && 4000),
      describe: () => meta,
    } as unknown as CrmConnector;
    const guard = bulkGuardStage(crm, createLimits(defaultLimitsConfig), 60);
    const records: CrmRecord[] = Array.from({ length: 100 }, (_, i) => ({ id: `c${i}` }));
    const trail = { events: [], detail: '' } as unknown as Trail;
    // Not sensitive: a quarter of the table is within both budgets.
    await guard.check(principal('call-notes'), 'contact', records, trail);
    await guard.check(principal('call-notes'), 'contact', records, trail);
    expect(counts).toBe(1);
    // The CRM's metadata refreshed with a personal field: the same read is now over the sensitive budget.
    meta = { fields: [...meta.fields, { name: 'email', dataClass: 'pii' }] };
    await expect(guard.check(principal('call-notes'), 'contact', records, trail)).rejects.toMatchObject({
      code: 'BULK_EXPORT_BLOCKED',
    });
    expect(counts).toBe(1);
  });
});
