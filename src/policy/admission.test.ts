import { beforeAll, describe, expect, it } from 'vitest';
import { demoApps } from '../catalog/apps.js';
import { defaultScopes } from '../config/defaults.js';
import {
  judgeManifest,
  ManifestInvalid,
  parseManifest,
  type AdmissionResult,
  type PolicySet,
} from './index.js';
import { loadPolicySet } from '../policy-library/index.js';

let policies: PolicySet;
beforeAll(async () => {
  policies = await loadPolicySet();
});

/** A small notes app that every rule leaves alone: the approve baseline each case changes one thing of. */
const base = {
  name: 'meeting-notes',
  owner: 'alice@example.com',
  purpose: 'log meeting notes on my accounts',
  scopes: ['read:contact.basic', 'write:contact.note'],
  data_classes: ['internal'],
  retention_days: 30,
  expected_users: 12,
  telemetry: true,
  redirect_uris: ['http://localhost:5173/callback', 'https://notes.example.com/callback'],
};

const ids = (result: AdmissionResult) => result.rules.map((r) => r.id);
const judge = (changes: Record<string, unknown>, context = {}) =>
  judgeManifest(policies, { ...base, ...changes }, context);

describe('admission', () => {
  it('approves the baseline manifest, naming the permit that approved', () => {
    const result = judge({});
    expect(result.decision).toBe('approve');
    expect(result.rules).toEqual([
      { id: 'admission.baseline', effect: 'approve', reason: expect.any(String) },
    ]);
    expect(result.enrichment).toMatchObject({ data_classes: ['internal'], write_objects: ['note'] });
    expect(result.version).toBe(policies.version);
  });

  // Both demo apps read a sensitive class (call-notes: contact email and phone, which are pii;
  // pipeline-dashboard: opportunity amount, which is financial), so the library sends them to review,
  // and nothing denies them. The demo seeds them as already approved by a reviewer, and with
  // `approved` the deploy gate lets them through.
  it.each(['call-notes', 'pipeline-dashboard'])(
    'sends the demo app %s to review and denies nothing',
    (id) => {
      const manifest = demoApps.find((a) => a.id === id)?.manifest;
      const result = judgeManifest(policies, manifest);
      expect(result.decision).toBe('review');
      expect(ids(result)).toEqual(['admission.sensitive-data-review']);
      const deploy = judgeManifest(policies, manifest, { action: 'deploy', approved: true });
      expect(deploy.decision).toBe('approve');
    },
  );

  it('enriches with the data classes of the requested fields and a risk score', () => {
    const result = judge({ scopes: ['read:contact.reach'], data_classes: ['internal'] });
    expect(result.enrichment?.data_classes).toEqual(['internal', 'pii']);
    expect(result.enrichment?.risk_score).toBe(30);
  });

  const cases: ReadonlyArray<[string, 'deny' | 'review', Record<string, unknown>, Record<string, unknown>?]> =
    [
      ['admission.telemetry-required', 'deny', { telemetry: false }],
      [
        'admission.pii-scope-not-needed',
        'deny',
        { scopes: ['read:contact.pii', 'write:contact.note'], retention_days: 30 },
      ],
      ['admission.financial-scope-not-needed', 'deny', { scopes: ['read:opportunity.financial'] }],
      ['admission.sensitive-data-review', 'review', { scopes: ['read:contact.reach'] }],
      [
        'admission.sensitive-write-review',
        'review',
        { scopes: ['write:contact.title'] },
        { fieldsets: { ...defaultScopes, 'write:contact.title': { object: 'contact', fields: ['title'] } } },
      ],
      ['admission.sso-required', 'deny', { sso: false }],
      ['admission.retention-exceeds-class', 'deny', { retention_days: 400 }],
      ['admission.redirect-uri-insecure', 'deny', { redirect_uris: ['http://notes.example.com/callback'] }],
      [
        'admission.bulk-read-integration',
        'review',
        { expected_reads: { contact: 50 } },
        { tableSizes: { contact: 2000 } },
      ],
      [
        'admission.high-risk-score',
        'review',
        { data_classes: ['health', 'financial', 'pii'], retention_days: 10 },
      ],
      ['admission.secret-class', 'deny', { data_classes: ['secret'], retention_days: 0 }],
      ['admission.deploy-requires-approval', 'deny', {}, { action: 'deploy' }],
    ];

  it.each(cases)('fires %s (%s) on a manifest crafted for it', (id, effect, changes, context) => {
    const result = judge(changes, context);
    expect(result.decision).toBe(effect);
    expect(result.rules).toContainEqual({ id, effect, reason: policies.policies.get(id)?.reason });
  });

  it('leaves each rule quiet just inside its limit', () => {
    expect(
      judge({ telemetry: false, audit_hook: 'https://hooks.example.com/audit' }, { auditHookVerified: true })
        .decision,
    ).toBe('approve');
    // An audit hook that never answered the signed challenge is no telemetry.
    expect(judge({ telemetry: false, audit_hook: 'https://hooks.example.com/audit' }).decision).toBe('deny');
    expect(
      ids(judge({ scopes: ['read:contact.pii'], purpose: 'verify customer identity during onboarding' })),
    ).not.toContain('admission.pii-scope-not-needed');
    expect(judge({ sso: false, expected_users: 1 }).decision).toBe('approve');
    expect(judge({ retention_days: 365 }).decision).toBe('approve');
    expect(ids(judge({ scopes: ['read:contact.reach'], retention_days: 90 }))).not.toContain(
      'admission.retention-exceeds-class',
    );
    expect(ids(judge({ scopes: ['read:contact.reach'], retention_days: 91 }))).toContain(
      'admission.retention-exceeds-class',
    );
    expect(judge({ redirect_uris: ['http://127.0.0.1:8080/cb', 'http://[::1]/cb'] }).decision).toBe(
      'approve',
    );
    expect(judge({ expected_reads: { contact: 20 } }, { tableSizes: { contact: 2000 } }).decision).toBe(
      'approve',
    );
    expect(judge({}, { action: 'deploy', approved: true }).decision).toBe('approve');
  });

  it('counts an expected read of a table of unknown size as over 1% (fails towards review)', () => {
    expect(ids(judge({ expected_reads: { contact: 1 } }))).toContain('admission.bulk-read-integration');
  });

  it('reports every rule that decided, deny rules first', () => {
    const result = judge({ telemetry: false, sso: false, scopes: ['read:contact.reach'] });
    expect(result.decision).toBe('deny');
    expect(ids(result)).toEqual([
      'admission.sso-required',
      'admission.telemetry-required',
      'admission.sensitive-data-review',
    ]);
  });

  it('refuses a redirect URI with another scheme (javascript:) as insecure', () => {
    expect(ids(judge({ redirect_uris: ['javascript://localhost/%0Aalert(1)'] }))).toContain(
      'admission.redirect-uri-insecure',
    );
  });
});

describe('an invalid manifest', () => {
  it('gives a distinct result that names every field and what is wrong', () => {
    const result = judgeManifest(policies, {
      ...base,
      owner: 'alice',
      scopes: ['read:contact.*'],
      telemetry: undefined,
      telemtry: true,
    });
    expect(result.decision).toBe('invalid');
    const errors = result.errors ?? [];
    expect(errors.some((e) => e.startsWith('owner:'))).toBe(true);
    expect(errors.some((e) => e.startsWith('scopes[0]:'))).toBe(true);
    expect(errors.some((e) => e.startsWith('telemetry:'))).toBe(true);
    expect(errors.some((e) => e.includes('telemtry'))).toBe(true);
    expect(result.rules).toEqual([]);
  });

  it('names an unknown scope, a repeated scope and a relative redirect URI', () => {
    const result = judge({
      scopes: ['read:contact.everything', 'read:contact.basic', 'read:contact.basic'],
      redirect_uris: ['/cb'],
    });
    expect(result.errors).toEqual([
      'scopes[0]: unknown scope read:contact.everything',
      'scopes[2]: read:contact.basic is listed twice',
      'redirect_uris[0]: must be an absolute URL',
    ]);
  });

  it('is not an object at all', () => {
    expect(judgeManifest(policies, null).decision).toBe('invalid');
    expect(judgeManifest(policies, 'call-notes').decision).toBe('invalid');
  });

  it('throws ManifestInvalid (INVALID_INPUT) from parseManifest for callers that prefer a 422', () => {
    expect(() => parseManifest({})).toThrow(ManifestInvalid);
    expect(() => parseManifest({})).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});
