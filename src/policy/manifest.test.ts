import { describe, expect, it } from 'vitest';
import { ManifestInvalid, parseManifest } from './index.js';

/** A notes app that reads contacts; each case changes its consent purpose or the vocabulary. */
const base = {
  name: 'lead-caller',
  owner: 'alice@example.com',
  purpose: 'call leads who asked to be called',
  scopes: ['read:contact.basic', 'write:contact.note'],
  data_classes: ['internal'],
  retention_days: 30,
  expected_users: 12,
  telemetry: true,
};

const problems = (input: unknown, context = {}): readonly string[] => {
  try {
    parseManifest(input, context);
    return [];
  } catch (error) {
    if (error instanceof ManifestInvalid) return error.errors;
    throw error;
  }
};

describe('the consent purpose of a manifest', () => {
  it('is one code of the default vocabulary when the installation names none', () => {
    expect(parseManifest({ ...base, consent_purpose: 'sales_outreach' }).consent_purpose).toBe(
      'sales_outreach',
    );
  });

  it('may be left out: the plan is valid (its app will see no contact)', () => {
    expect(parseManifest(base).consent_purpose).toBeUndefined();
  });

  it('outside the vocabulary is invalid, naming the purposes allowed', () => {
    expect(problems({ ...base, consent_purpose: 'profiling' })).toEqual([
      'consent_purpose: "profiling" is not a consent purpose here; use one of analytics, marketing, sales_outreach',
    ]);
  });

  it("is checked against the installation's vocabulary, not the default one", () => {
    const context = { consentPurposes: ['research', 'support'] };
    expect(parseManifest({ ...base, consent_purpose: 'support' }, context).consent_purpose).toBe('support');
    expect(problems({ ...base, consent_purpose: 'sales_outreach' }, context)).toEqual([
      'consent_purpose: "sales_outreach" is not a consent purpose here; use one of research, support',
    ]);
  });

  it('is exactly one code: not a list, not a differently cased code, not an empty string', () => {
    expect(problems({ ...base, consent_purpose: ['analytics', 'marketing'] })).toEqual([
      expect.stringMatching(/^consent_purpose: /),
    ]);
    expect(problems({ ...base, consent_purpose: 'Sales_Outreach' })).toEqual([
      expect.stringContaining('use one of analytics, marketing, sales_outreach'),
    ]);
    expect(problems({ ...base, consent_purpose: '' })).toHaveLength(1);
  });

  it('is reported with the other problems of the manifest, not instead of them', () => {
    const errors = problems({ ...base, scopes: ['read:contact.everything'], consent_purpose: 'spying' });
    expect(errors).toEqual([
      'scopes[0]: unknown scope read:contact.everything',
      expect.stringMatching(/^consent_purpose: "spying" is not a consent purpose here/),
    ]);
  });
});
