import { describe, expect, it } from 'vitest';
import type { App } from './apps.js';
import {
  appliesAtOnce,
  assertSeparateDuties,
  assertStep,
  consentWarnings,
  droppedScopes,
  purposeInForce,
  residencyOf,
  restoreTarget,
  stateAfter,
} from './rules.js';

const app = (extra: Partial<App> = {}): App => ({
  id: 'lead-notes',
  clientId: 'lead-notes',
  name: 'lead-notes',
  owner: 'alice@example.com',
  status: 'in_review',
  scopes: ['read:account.basic', 'read:contact.basic'],
  manifest: {},
  createdAt: '2025-01-01T00:00:00.000Z',
  updatedAt: '2025-01-01T00:00:00.000Z',
  requestedBy: 'dave@example.com',
  dataClasses: ['internal'],
  ...extra,
});

describe('separation of duties', () => {
  it('refuses the owner, whatever the case of the email', () => {
    expect(() => assertSeparateDuties(app(), 'Alice@Example.com')).toThrow(
      expect.objectContaining({
        code: 'SEPARATION_OF_DUTIES',
        extensions: expect.objectContaining({ rule: 'separation-of-duties' }),
      }),
    );
  });

  it('refuses whoever registered the app for its owner', () => {
    expect(() => assertSeparateDuties(app(), 'dave@example.com')).toThrow(
      /dave@example.com registered lead-notes/,
    );
  });

  it('refuses whoever asked for the pending plan change', () => {
    const pending = {
      manifest: {},
      scopes: [],
      requested_by: 'bob@example.com',
      requested_at: '2025-01-02T00:00:00.000Z',
      admission: {
        decision: 'review',
        rules: [],
        policy_version: 'v',
        risk_score: 30,
        data_classes: [],
        decided_at: '',
      },
    } as const;
    expect(() => assertSeparateDuties(app({ status: 'approved', pending }), 'bob@example.com')).toThrow(
      /asked for the pending change/,
    );
  });

  it('lets anyone else approve', () => {
    expect(() => assertSeparateDuties(app(), 'rita@example.com')).not.toThrow();
  });
});

describe('lifecycle steps', () => {
  it('approves only what is in review or has a change pending', () => {
    expect(() => assertStep(app(), 'approve')).not.toThrow();
    expect(() => assertStep(app({ status: 'draft' }), 'approve')).toThrow(
      expect.objectContaining({ code: 'APP_STATE' }),
    );
    expect(() => assertStep(app({ status: 'approved' }), 'approve')).toThrow(/only an app in review/);
  });

  it('never brings a retired app back', () => {
    for (const step of ['update', 'approve', 'deny', 'suspend', 'restore', 'retire', 'transfer'] as const) {
      expect(() => assertStep(app({ status: 'retired' }), step)).toThrow(
        expect.objectContaining({ code: 'APP_STATE' }),
      );
    }
  });

  it('maps admission decisions onto states', () => {
    expect([stateAfter('approve'), stateAfter('review'), stateAfter('deny')]).toEqual([
      'approved',
      'in_review',
      'draft',
    ]);
  });
});

describe('plan changes of an approved app', () => {
  const held = { scopes: ['read:account.basic', 'read:contact.basic'], risk: 10 };

  it('apply at once when the policy approves', () => {
    expect(appliesAtOnce('approve', held, { scopes: ['read:contact.pii'], risk: 90 })).toBe(true);
  });

  it('apply at once when they only take away', () => {
    expect(appliesAtOnce('review', held, { scopes: ['read:account.basic'], risk: 5 })).toBe(true);
  });

  it('wait for review when they add a scope or raise the risk', () => {
    expect(appliesAtOnce('review', held, { scopes: [...held.scopes, 'read:contact.reach'], risk: 10 })).toBe(
      false,
    );
    expect(appliesAtOnce('review', held, { scopes: ['read:account.basic'], risk: 11 })).toBe(false);
  });

  it('wait for review when they change the residency, even one the policy approves', () => {
    const us = residencyOf({ residency: { region: 'US', transfers: [] } });
    const withEu = residencyOf({ residency: { region: 'US', transfers: ['EU'] } });
    expect(appliesAtOnce('approve', { ...held, residency: us }, { ...held, residency: withEu })).toBe(false);
    expect(appliesAtOnce('approve', held, { ...held, residency: us })).toBe(false);
    expect(appliesAtOnce('approve', { ...held, residency: withEu }, { ...held, residency: withEu })).toBe(
      true,
    );
  });

  it('wait for review when they change the consent purpose, even one the policy approves', () => {
    const outreach = { ...held, purpose: 'sales_outreach' };
    expect(appliesAtOnce('approve', outreach, { ...held, purpose: 'marketing' })).toBe(false);
    // Adding a purpose widens; dropping one hands the choice to configuration: a reviewer looks at both.
    expect(appliesAtOnce('approve', held, { ...held, purpose: 'sales_outreach' })).toBe(false);
    expect(appliesAtOnce('review', outreach, { scopes: ['read:account.basic'], risk: 5 })).toBe(false);
    expect(appliesAtOnce('approve', outreach, { ...held, purpose: 'sales_outreach' })).toBe(true);
  });

  it('name the scopes a change drops', () => {
    expect(droppedScopes(held.scopes, ['read:contact.basic', 'read:contact.reach'])).toEqual([
      'read:account.basic',
    ]);
  });
});

describe('restoring a suspended app', () => {
  it('goes back where it was, except that a lapsed approval needs review', () => {
    expect(restoreTarget('approved', false)).toBe('approved');
    expect(restoreTarget('approved', true)).toBe('in_review');
    expect(restoreTarget('draft', false)).toBe('draft');
    expect(restoreTarget('in_review', true)).toBe('in_review');
  });
});

describe('the consent purpose in force', () => {
  const manifest = { consent_purpose: 'sales_outreach' };

  it("is the approved plan's", () => {
    expect(purposeInForce(app({ status: 'approved', manifest }))).toBe('sales_outreach');
    expect(purposeInForce(app({ status: 'approved' }))).toBeUndefined();
  });

  it('is never that of a plan nobody approved, nor of a pending change', () => {
    for (const status of ['draft', 'in_review', 'suspended', 'retired'] as const) {
      expect(purposeInForce(app({ status, manifest }))).toBeUndefined();
    }
    const pending = {
      manifest: { consent_purpose: 'marketing' },
      scopes: [],
      requested_by: 'alice@example.com',
      requested_at: '2025-01-02T00:00:00.000Z',
      admission: {
        decision: 'approve' as const,
        rules: [],
        policy_version: 'v',
        risk_score: 5,
        data_classes: [],
        decided_at: '2025-01-02T00:00:00.000Z',
      },
    };
    expect(purposeInForce(app({ status: 'approved', manifest, pending }))).toBe('sales_outreach');
    expect(purposeInForce(app({ status: 'approved', pending }))).toBeUndefined();
  });
});

describe('consent warnings of a plan', () => {
  const vocabulary = ['analytics', 'marketing', 'sales_outreach'];

  it('say plainly that a plan opening contacts or notes without a purpose will see no contact', () => {
    expect(consentWarnings({}, ['account', 'contact', 'note'], undefined, vocabulary)).toEqual([
      'the plan opens contact and note fields but names no consent_purpose, so the app will see no contact (nor any note about one): add consent_purpose, one of analytics, marketing, sales_outreach',
    ]);
  });

  it('say nothing when the plan or the configuration names a purpose, or no contact is opened', () => {
    expect(consentWarnings({ consent_purpose: 'analytics' }, ['contact'], undefined, vocabulary)).toEqual([]);
    expect(consentWarnings({}, ['contact'], 'sales_outreach', vocabulary)).toEqual([]);
    expect(consentWarnings({}, ['account', 'opportunity'], undefined, vocabulary)).toEqual([]);
  });
});
