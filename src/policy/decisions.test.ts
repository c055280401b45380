import { beforeAll, describe, expect, it } from 'vitest';
import { loadPolicySet } from '../policy-library/index.js';
import { variant } from '../policy-library/test-support.js';
import { authorizeRequest, createPolicyCaches } from './authorize.js';
import { DecisionReplay, recordDecision, sinceTime } from './decisions.js';
import type { PolicySet } from './library.js';
import { alice, bob, decisionRecorder, erin } from './test-support.js';

let policies: PolicySet;
beforeAll(async () => {
  policies = await loadPolicySet();
});

const decided = decisionRecorder(() => policies);

const emeaRecord = { id: 'c1', territory: 'EMEA', owner: 'bob@example.com', account: 'a1' };

describe('a recorded decision', () => {
  it("holds Cedar's input — ids, role, territory, app, scopes, field names, classes, count, network — and the outcome", () => {
    const decision = decided('r1', {
      principal: alice,
      action: 'read',
      object: 'contact',
      resource: emeaRecord,
    });
    expect(decision).toEqual({
      requestId: 'r1',
      timestamp: expect.any(String),
      version: policies.version,
      input: {
        principal: {
          id: 'alice',
          email: 'alice@example.com',
          role: 'sales_rep',
          territory: 'EMEA',
          app: 'call-notes',
          scopes: ['read:contact.basic'],
        },
        action: 'read',
        object: 'contact',
        resource: emeaRecord,
        context: { fields: ['first_name'], field_classes: ['internal'], record_count: 1, ip: '10.1.2.0/24' },
      },
      allowed: true,
      policyIds: ['runtime.sales-own-territory'],
    });
  });

  it('replays to the same decision under the same library, hour and weekday included', async () => {
    const night = new Date('2025-03-02T23:30:00Z');
    const withHours = await variant({
      'runtime/hours.cedar':
        '@id("runtime.office-hours")\n@reason("test")\n' +
        'forbid (principal, action == Gatehouse::Action::"read", resource) when { context.hour < 6 || context.weekday == 0 };\n',
    });
    const input = {
      principal: alice,
      action: 'read' as const,
      object: 'contact',
      resource: emeaRecord,
      context: { fields: ['first_name'], recordCount: 1, ip: '10.1.2.0/24', time: night },
    };
    const decision = recordDecision('r2', input, authorizeRequest(withHours, input, createPolicyCaches()));
    expect(decision).toMatchObject({ allowed: false, policyIds: ['runtime.office-hours'] });
    const replay = new DecisionReplay(withHours);
    replay.add(decision);
    expect(replay.report()).toMatchObject({ total: 1, unchanged: 1 });
  });
});

describe('DecisionReplay', () => {
  it('sorts flips and changed row filters under the rules that decide them in the candidate', async () => {
    const decisions = [
      decided('a-na', {
        principal: alice,
        action: 'read',
        object: 'contact',
        resource: { ...emeaRecord, territory: 'NA' },
      }),
      decided('a-emea', { principal: alice, action: 'read', object: 'contact', resource: emeaRecord }),
      decided('a-list', { principal: alice, action: 'read', object: 'contact' }),
      decided('e-list', { principal: erin, action: 'read', object: 'contact' }),
      decided('b-export', { principal: bob, action: 'export', object: 'contact', resource: emeaRecord }),
    ];
    const candidate = await variant({
      'runtime/territory.cedar':
        '@id("runtime.sales-everywhere")\n@reason("sales read everything")\n' +
        'permit (principal in Gatehouse::Role::"sales_rep", action == Gatehouse::Action::"read", resource);\n',
      'runtime/export.cedar': null,
    });
    const replay = new DecisionReplay(candidate);
    for (const decision of decisions) replay.add(decision);
    replay.skip();
    const report = replay.report();
    expect(report).toMatchObject({
      candidate: candidate.version,
      recorded: { [policies.version]: 5 },
      total: 5,
      unchanged: 1,
      unreadable: 1,
      changes: {
        deny_to_allow: {
          count: 1,
          rules: [{ rule: 'runtime.sales-everywhere', count: 1, examples: ['a-na'] }],
        },
        allow_to_deny: { count: 1, rules: [{ rule: 'default-deny', count: 1, examples: ['b-export'] }] },
        row_filter_changed: {
          count: 2,
          rules: [{ rule: 'runtime.sales-everywhere', count: 2, examples: ['a-list', 'e-list'] }],
        },
      },
    });
  });

  it('keeps at most five example request ids per rule', async () => {
    const candidate = await variant({ 'runtime/territory.cedar': null });
    const replay = new DecisionReplay(candidate);
    for (let i = 0; i < 8; i++) {
      replay.add(
        decided(`r${i}`, { principal: alice, action: 'read', object: 'contact', resource: emeaRecord }),
      );
    }
    const [rule] = replay.report().changes.allow_to_deny.rules;
    expect(rule).toEqual({ rule: 'default-deny', count: 8, examples: ['r0', 'r1', 'r2', 'r3', 'r4'] });
  });
});

describe('since', () => {
  const now = new Date('2025-03-10T12:00:00Z');
  it('takes a duration or an ISO time', () => {
    expect(sinceTime('7d', now)).toBe('2025-03-03T12:00:00.000Z');
    expect(sinceTime('12h', now)).toBe('2025-03-10T00:00:00.000Z');
    expect(sinceTime('30m', now)).toBe('2025-03-10T11:30:00.000Z');
    expect(sinceTime('2025-03-01T00:00:00Z', now)).toBe('2025-03-01T00:00:00.000Z');
  });

  it.each(['', '7', '0d', '-1d', '7w', 'yesterday', '2025-13-45'])('refuses %j with a 422', (value) => {
    expect(() => sinceTime(value, now)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});
