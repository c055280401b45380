import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../audit/index.js';
import { defaultScopes } from '../config/index.js';
import { parseDays, parseSince, suggestScopes } from './usage.js';

const since = new Date('2025-03-01T00:00:00.000Z');
const event = (extra: Partial<AuditEvent>): AuditEvent => ({
  timestamp: '2025-03-02T10:00:00.000Z',
  actor_id: 'alice@example.com',
  actor_role: 'sales_rep',
  app_id: 'wide-app',
  action: 'crm.list',
  resource_type: 'contact',
  resource_id: '',
  scope: '',
  request_id: 'r',
  trace_id: 't',
  outcome: 'allow',
  reason: '',
  ...extra,
});
const app = {
  id: 'wide-app',
  scopes: [
    'read:account.basic',
    'read:contact.basic',
    'read:contact.reach',
    'read:contact.pii',
    'write:contact.note',
  ],
};

describe('suggestScopes', () => {
  it('keeps the narrowest scope that covers each field used and drops the rest', () => {
    const suggestion = suggestScopes(
      app,
      [
        event({
          fields: 'email,first_name',
          scope: 'read:contact.basic read:contact.reach read:contact.pii',
        }),
        event({ action: 'crm.read', fields: 'last_name' }),
      ],
      defaultScopes,
      since,
    );
    // email is in reach and pii; reach is narrower.
    expect(suggestion.suggested).toEqual(['read:contact.basic', 'read:contact.reach']);
    expect(suggestion.drop).toEqual(['read:account.basic', 'read:contact.pii', 'write:contact.note']);
    expect(suggestion.usage).toEqual([
      {
        object: 'contact',
        access: 'read',
        used_fields: ['email', 'first_name', 'last_name'],
        unused_fields: ['account_id', 'date_of_birth', 'national_id', 'phone', 'title'],
      },
    ]);
    expect(suggestion.requests).toBe(2);
  });

  it('counts writes apart from reads, and only allowed requests of this app', () => {
    const suggestion = suggestScopes(
      app,
      [
        event({ action: 'crm.create', resource_type: 'note', fields: 'body,contact_id' }),
        event({ outcome: 'deny', fields: 'national_id' }),
        event({ app_id: 'other-app', fields: 'email' }),
        event({ action: 'app.approve', resource_type: 'app' }),
      ],
      defaultScopes,
      since,
    );
    expect(suggestion.suggested).toEqual(['write:contact.note']);
    expect(suggestion.requests).toBe(1);
  });

  it('keeps the granted scopes of requests without field names (aggregates, deletes)', () => {
    const suggestion = suggestScopes(
      { id: 'dash', scopes: ['read:opportunity.aggregate', 'read:opportunity.financial'] },
      [
        event({
          app_id: 'dash',
          action: 'crm.aggregate',
          resource_type: 'opportunity',
          scope: 'read:opportunity.aggregate',
        }),
      ],
      defaultScopes,
      since,
    );
    expect(suggestion.suggested).toEqual(['read:opportunity.aggregate']);
  });

  it('suggests nothing for an app that made no request', () => {
    const suggestion = suggestScopes(app, [], defaultScopes, since);
    expect(suggestion).toMatchObject({ suggested: [], drop: app.scopes, requests: 0 });
  });

  it('names fields used without a held scope rather than widening', () => {
    const suggestion = suggestScopes(
      { id: 'wide-app', scopes: ['read:contact.basic'] },
      [event({ fields: 'first_name,phone' })],
      defaultScopes,
      since,
    );
    expect(suggestion.suggested).toEqual(['read:contact.basic']);
    expect(suggestion.uncovered).toEqual(['contact.phone']);
  });
});

describe('look-back windows', () => {
  const now = new Date('2025-03-31T12:00:00.000Z');

  it('reads days, hours and ISO times', () => {
    expect(parseSince('30d', now).toISOString()).toBe('2025-03-01T12:00:00.000Z');
    expect(parseSince('12h', now).toISOString()).toBe('2025-03-31T00:00:00.000Z');
    expect(parseSince('2025-03-15T00:00:00Z', now).toISOString()).toBe('2025-03-15T00:00:00.000Z');
    expect(parseDays('30d')).toBe(30);
    expect(parseDays('7')).toBe(7);
  });

  it('refuses anything else with a coded error', () => {
    for (const bad of ['', '0d', '-3d', '30w', 'yesterday', '1e400d']) {
      expect(() => parseSince(bad, now)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    }
    expect(() => parseDays('30 days')).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});
