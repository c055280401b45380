import { describe, expect, it } from 'vitest';
import type { App } from './apps.js';
import { constraintsFor } from './constraints.js';
import { webhookSignature } from './notify.js';
import { inventoryCsv } from './view.js';

const app: App = {
  id: 'lead-notes',
  clientId: 'lead-notes',
  name: 'lead-notes',
  owner: 'alice@example.com',
  status: 'approved',
  scopes: ['read:account.basic', 'read:contact.basic'],
  manifest: {},
  createdAt: '2025-01-01T00:00:00.000Z',
  updatedAt: '2025-01-01T00:00:00.000Z',
  requestedBy: 'alice@example.com',
  dataClasses: ['internal', 'pii'],
  riskScore: 30,
};

describe('inventory CSV', () => {
  it('has a header and one line per app, lists space-separated', () => {
    expect(inventoryCsv([app]).split('\r\n')).toEqual([
      'id,name,owner,state,scopes,data_classes,risk_score,risk,approved_by,approved_until,last_used_at,created_at',
      'lead-notes,lead-notes,alice@example.com,approved,read:account.basic read:contact.basic,internal pii,30,medium,,,,2025-01-01T00:00:00.000Z',
      '',
    ]);
  });

  it('never lets a cell start a spreadsheet formula, and quotes what needs quoting', () => {
    const csv = inventoryCsv([{ ...app, owner: '=HYPERLINK("http://evil")@x', approvedBy: 'a,b' }]);
    expect(csv).toContain(`"'=HYPERLINK(""http://evil"")@x"`);
    expect(csv).toContain('"a,b"');
  });
});

describe('runtime constraints from the plan', () => {
  const quota = {
    requestsPerUserPerDay: 1000,
    minDailyQuota: 1000,
    maxDailyQuota: 100_000,
    requestsPerUserPerMinute: 20,
    minPerMinute: 60,
    maxPerMinute: 600,
  };

  it('grow with the expected users between a floor and a ceiling', () => {
    expect(constraintsFor({ expected_users: 12 }, quota)).toEqual({
      daily_quota: 12_000,
      requests_per_minute: 240,
    });
    expect(constraintsFor({ expected_users: 1 }, quota)).toEqual({
      daily_quota: 1000,
      requests_per_minute: 60,
    });
    expect(constraintsFor({ expected_users: 5000 }, quota)).toEqual({
      daily_quota: 100_000,
      requests_per_minute: 600,
    });
  });
});

describe('webhook signature', () => {
  it('is v1= and the hex HMAC-SHA256 of `timestamp.body` (a known answer)', () => {
    // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'a-long-enough-webhook-secret'
    expect(webhookSignature('a-long-enough-webhook-secret', '1700000000', '{"a":1}')).toBe(
      'v1=be86ce39152a1b7140fd3b11c2e57171883af76eceb1f29a29b152f1825f45a3',
    );
  });
});
