import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalEvent, canonicalJson, isAuditEvent, leafHashHex, type AuditEvent } from './event.js';
import * as tlog from '../../test/support/tlog.js';

const event: AuditEvent = {
  timestamp: '2025-01-02T03:04:05.000Z',
  actor_id: 'alice@example.com',
  actor_role: 'sales',
  app_id: 'call-notes',
  action: 'crm.read',
  resource_type: 'contact',
  resource_id: 'c-1',
  scope: 'read:contact.basic',
  request_id: 'r-1',
  trace_id: 't-1',
  outcome: 'allow',
  reason: 'policy permit',
};

describe('RFC 8785 canonical JSON', () => {
  it('matches the RFC 8785 §3.2.2 example (numbers, escapes, literals)', () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units (RFC 8785 §3.2.3)', () => {
    const input = JSON.parse(
      '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One",' +
        '"\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}',
    );
    const values = [...canonicalJson(input).matchAll(/:"([^"]*)"/g)].map((m) => m[1]);
    expect(values).toEqual([
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      'Emoji: Grinning Face',
      'Hebrew Letter Dalet With Dagesh',
    ]);
  });

  it('rejects values JSON cannot carry with a TypeError (NaN, Infinity, lone surrogate)', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ a: Infinity })).toThrow(TypeError);
    expect(() => canonicalJson({ a: '\ud800' })).toThrow(TypeError);
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
  });

  it('agrees with the independent verifier on any event (fast-check)', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 20 });
    fc.assert(
      fc.property(fc.record({ actor_id: text, reason: text, resource_id: text }), (fields) => {
        const e = { ...event, ...fields };
        const canonical = canonicalEvent(e);
        expect(canonical).toBe(tlog.jcs(e));
        expect(leafHashHex(canonical)).toBe(tlog.leafHash(Buffer.from(canonical)).toString('hex'));
        expect(JSON.parse(canonical)).toEqual(e);
      }),
    );
  });
});

describe('audit events', () => {
  it('are written exactly as the general canonical form writes them, or refused alike (fast-check)', () => {
    // Any code points, and often the ones canonical JSON treats specially: escapes, halves of a pair.
    const unit = fc.oneof(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
      fc.constantFrom('"', '\\', '\n', '\u0000', '\u2028', '\ud800', '\udc00', '\ud83d\ude00', '€'),
    );
    const text = fc.string({ unit, maxLength: 8 });
    const optional = <T>(value: fc.Arbitrary<T>) => fc.option(value, { nil: undefined });
    fc.assert(
      fc.property(
        fc.record({
          actor_id: text,
          reason: text,
          resource_id: text,
          scope: text,
          outcome: fc.constantFrom('allow', 'deny', 'error'),
          fields: optional(text),
          record_count: optional(fc.nat()),
          client_network: optional(text),
        }),
        (fields) => {
          const e = { ...event, ...fields } as AuditEvent;
          const picked = JSON.parse(JSON.stringify(e)) as AuditEvent;
          let general: string | TypeError;
          try {
            general = canonicalJson(picked);
          } catch (error) {
            general = error as TypeError;
          }
          if (typeof general === 'string') expect(canonicalEvent(e)).toBe(general);
          else expect(() => canonicalEvent(e)).toThrow(TypeError);
        },
      ),
    );
  });

  it('hashes the canonical bytes with the 0x00 leaf prefix', () => {
    const canonical = canonicalEvent(event);
    expect(canonical.startsWith('{"action":"crm.read","actor_id":"alice@example.com"')).toBe(true);
    expect(leafHashHex(canonical)).toMatch(/^[0-9a-f]{64}$/);
    expect(leafHashHex(canonical)).toBe(tlog.leafHash(Buffer.from(canonical, 'utf8')).toString('hex'));
  });

  it('keeps only the known fields, so nothing else a caller carries reaches the log', () => {
    const carrying = { ...event, record: { national_id: '123-45-6789' }, token: 'eyJ...' } as AuditEvent;
    const canonical = canonicalEvent(carrying);
    expect(canonical).toBe(canonicalEvent(event));
    expect(canonical).not.toContain('national_id');
    expect(canonical).not.toContain('eyJ');
  });

  it('keeps policy_version when present', () => {
    expect(JSON.parse(canonicalEvent({ ...event, policy_version: 'v7' }))).toMatchObject({
      policy_version: 'v7',
    });
  });

  it('keeps the optional request facts when present', () => {
    const facts = { fields: 'email,phone', record_count: 3, client_network: '10.1.2.0/24' };
    expect(JSON.parse(canonicalEvent({ ...event, ...facts }))).toMatchObject(facts);
  });

  it('a malformed event is the caller’s mistake: TypeError', () => {
    expect(() => canonicalEvent({ ...event, outcome: 'maybe' } as unknown as AuditEvent)).toThrow(TypeError);
    expect(() => canonicalEvent({ ...event, actor_id: 42 } as unknown as AuditEvent)).toThrow(TypeError);
  });

  it('recognizes exactly the event shape', () => {
    expect(isAuditEvent(event)).toBe(true);
    expect(isAuditEvent({ ...event, extra: 'x' })).toBe(false);
    expect(isAuditEvent([event])).toBe(false);
    expect(isAuditEvent(null)).toBe(false);
    expect(isAuditEvent({ ...event, policy_version: 3 })).toBe(false);
    expect(
      isAuditEvent({ ...event, fields: 'email,phone', record_count: 2, client_network: '10.0.0.0/24' }),
    ).toBe(true);
    expect(isAuditEvent({ ...event, record_count: -1 })).toBe(false);
    expect(isAuditEvent({ ...event, record_count: 1.5 })).toBe(false);
    expect(isAuditEvent({ ...event, record_count: '2' })).toBe(false);
    expect(isAuditEvent({ ...event, client_network: ['10.0.0.0/24'] })).toBe(false);
  });
});
