import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import type { CrmObject, DataClass, ObjectMeta } from '../crm/index.js';
import {
  createPolicyCaches,
  type PolicySet,
  type Principal,
  type RecordedDecision,
} from '../policy/index.js';
import { loadPolicySet } from '../policy-library/index.js';
import { aggregateQueryFields, conditionHolds, filterFieldNames, listAction } from './authorize.js';
import {
  callerNetwork,
  capabilityRows,
  cedarRuntimePolicy,
  recordRefOf,
  type PolicyAsk,
  type RuntimePolicy,
} from './policy.js';

/** The authorize stage's pure parts and its Cedar policy, in-process, on the shipped library. */

const config = loadConfig({ env: {}, overrides: { dataDir: '/tmp/unused' } });
const alice: Principal = {
  userId: 'u-alice',
  email: 'alice@example.com',
  role: 'sales_rep',
  territory: 'EMEA',
  appId: 'call-notes',
  clientId: 'call-notes',
  scopes: ['read:contact.basic', 'read:contact.reach'],
};
const dashboard: Principal = {
  ...alice,
  userId: 'u-bob',
  email: 'bob@example.com',
  role: 'sales_manager',
  appId: 'pipeline-dashboard',
  clientId: 'pipeline-dashboard',
};

/** The CRM metadata the gateway classifies fields by (a few fields of each object suffice here). */
const classes: Record<string, DataClass> = { email: 'pii', phone: 'pii', amount: 'financial' };
const crmMetadata = (object: CrmObject): ObjectMeta => ({
  object,
  plural: `${object}s`,
  fields: ['first_name', 'email', 'phone', 'body', 'amount'].map((name) => ({
    name,
    type: 'string',
    dataClass: classes[name] ?? 'internal',
    label: name,
  })),
});

let library: PolicySet;
let recorded: RecordedDecision[];
let policy: RuntimePolicy;
const noon = new Date('2025-03-03T12:00:00Z');

beforeAll(async () => {
  library = await loadPolicySet();
});
beforeEach(() => {
  recorded = [];
  policy = cedarRuntimePolicy(() => library, {
    describe: crmMetadata,
    caches: createPolicyCaches(),
    now: () => noon,
    log: { record: (decision) => recorded.push(decision) },
  });
});

const ask = (overrides: Partial<PolicyAsk> = {}): PolicyAsk => ({
  requestId: 'req-1',
  principal: alice,
  action: 'read',
  object: 'contact',
  fields: ['first_name'],
  recordCount: 20,
  ip: '127.0.0.0/24',
  ...overrides,
});

describe('the Cedar runtime policy of the gateway', () => {
  it('answers the row filter and records the decision with its input, never contents', () => {
    expect(policy.rows(ask())).toEqual([{ field: 'territory', op: 'eq', value: 'EMEA' }]);
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({
      requestId: 'req-1',
      timestamp: noon.toISOString(),
      version: library.version,
      allowed: true,
      policyIds: ['runtime.sales-own-territory'],
      where: [{ field: 'territory', op: 'eq', value: 'EMEA' }],
      input: {
        principal: { id: 'u-alice', role: 'sales_rep', territory: 'EMEA', app: 'call-notes' },
        action: 'read',
        object: 'contact',
        context: {
          fields: ['first_name'],
          field_classes: ['internal'],
          record_count: 20,
          ip: '127.0.0.0/24',
        },
      },
    });
  });

  it('classifies the fields a request names from the CRM metadata, for rules on data classes', () => {
    const denied = () => policy.rows(ask({ principal: dashboard, fields: ['first_name', 'email'] }));
    expect(denied).toThrow(
      expect.objectContaining({
        code: 'POLICY_DENIED',
        status: 403,
        extensions: expect.objectContaining({
          rule: 'runtime.dashboard-no-raw-pii',
          policy_version: library.version,
        }),
      }),
    );
    expect(recorded[0]?.input.context.field_classes).toEqual(['internal', 'pii']);
    expect(recorded[0]).toMatchObject({ allowed: false, policyIds: ['runtime.dashboard-no-raw-pii'] });
  });

  it('decides one record on its attributes: 403 naming the policy, recorded with the attributes', () => {
    const note = { id: 'n1', territory: 'EMEA', owner: 'bob@example.com', account: 'a1' };
    expect(() => policy.record(ask({ action: 'write', object: 'note', fields: ['body'] }), note)).toThrow(
      expect.objectContaining({
        extensions: expect.objectContaining({ rule: 'runtime.notes-on-assigned-accounts' }),
      }),
    );
    expect(recorded[0]?.input.resource).toEqual(note);
    expect(() =>
      policy.record(ask({ action: 'write', object: 'note' }), { ...note, owner: 'alice@example.com' }),
    ).not.toThrow();
  });

  it('denies by default (an admin has no CRM access) and an export of a rep', () => {
    const dave = { ...alice, role: 'admin', territory: undefined, appId: 'console' };
    expect(() => policy.rows(ask({ principal: dave }))).toThrow(
      expect.objectContaining({ extensions: expect.objectContaining({ rule: 'default-deny', rules: [] }) }),
    );
    expect(() => policy.rows(ask({ action: 'export', recordCount: 150 }))).toThrow(
      expect.objectContaining({ code: 'POLICY_DENIED' }),
    );
  });

  it('adds a capability token accounts to every row filter', () => {
    const narrowed = { ...alice, accountIds: ['a1', 'a2'] };
    expect(policy.rows(ask({ principal: narrowed }))).toEqual([
      { field: 'territory', op: 'eq', value: 'EMEA' },
      { field: 'account_id', op: 'in', value: ['a1', 'a2'] },
    ]);
    expect(capabilityRows(narrowed, 'account')).toEqual([{ field: 'id', op: 'in', value: ['a1', 'a2'] }]);
    expect(capabilityRows(alice, 'account')).toEqual([]);
  });

  it('remembers a row filter per principal, and still records the decision of every request', () => {
    const first = policy.rows(ask());
    expect(policy.rows(ask({ requestId: 'req-2' }))).toBe(first);
    expect(recorded.map((r) => r.requestId)).toEqual(['req-1', 'req-2']);
    expect(recorded[1]).toMatchObject({ allowed: true, input: { context: { fields: ['first_name'] } } });
    // Another question, or another principal, is decided afresh.
    expect(() => policy.rows(ask({ action: 'export', recordCount: 150 }))).toThrow(
      expect.objectContaining({ code: 'POLICY_DENIED' }),
    );
    expect(policy.rows(ask({ principal: { ...alice, territory: 'NA' } }))).toEqual([
      { field: 'territory', op: 'eq', value: 'NA' },
    ]);
  });

  it('records a remembered decision at its own time and under its own request, sharing the one input', () => {
    let now = noon;
    const log: RecordedDecision[] = [];
    const clocked = cedarRuntimePolicy(() => library, {
      describe: crmMetadata,
      caches: createPolicyCaches(),
      now: () => now,
      log: { record: (decision) => log.push(decision) },
    });
    clocked.rows(ask());
    now = new Date('2025-03-03T12:59:00Z');
    clocked.rows(ask({ requestId: 'req-2' }));
    expect(log.map((r) => [r.requestId, r.timestamp])).toEqual([
      ['req-1', '2025-03-03T12:00:00.000Z'],
      ['req-2', '2025-03-03T12:59:00.000Z'],
    ]);
    expect(log[1]?.input).toBe(log[0]?.input);
    expect(log[1]).toMatchObject({ allowed: true, version: library.version });
  });

  it('follows the library in force: a new version decides the next request', async () => {
    let current = library;
    const switching = cedarRuntimePolicy(() => current, {
      describe: crmMetadata,
      caches: createPolicyCaches(),
    });
    expect(switching.version).toBe(library.version);
    // Decided once under the old version: remembered with alice's principal, but not across versions.
    expect(switching.rows(ask())).toEqual([{ field: 'territory', op: 'eq', value: 'EMEA' }]);
    const { variant } = await import('../policy-library/test-support.js');
    current = await variant({ 'runtime/territory.cedar': null });
    expect(switching.version).toBe(current.version);
    expect(() => switching.rows(ask())).toThrow(expect.objectContaining({ code: 'POLICY_DENIED' }));
  });
});

describe('the pure parts of the authorize stage', () => {
  it('sees the caller as its network: /24, /48, the IPv6 loopback as is, 0.0.0.0 when unknown', () => {
    expect(callerNetwork('10.1.2.3')).toBe('10.1.2.0/24');
    expect(callerNetwork('::ffff:192.168.7.9')).toBe('192.168.7.0/24');
    expect(callerNetwork('2001:db8:abcd:12::1')).toBe('2001:db8:abcd::/48');
    expect(callerNetwork('::1')).toBe('::1');
    expect(callerNetwork('not-an-address')).toBe('0.0.0.0');
  });

  it('makes a list of more than gateway.exportAbove records an export', () => {
    expect(listAction(config, config.gateway.exportAbove)).toBe('read');
    expect(listAction(config, config.gateway.exportAbove + 1)).toBe('export');
  });

  it('counts the fields a filter compares and an aggregate groups by, measures or filters on', () => {
    expect(filterFieldNames(["email eq 'x' or (phone ne '1' and not title eq 'y')"]).sort()).toEqual([
      'email',
      'phone',
      'title',
    ]);
    expect(filterFieldNames([])).toEqual([]);
    expect(
      aggregateQueryFields({
        groupBy: 'stage',
        metrics: [{ fn: 'count' }, { fn: 'sum', field: 'amount' }],
        filter: ["owner eq 'a'"],
      }),
    ).toEqual(['stage', 'amount', 'owner']);
  });

  it('takes only territory, owner and account from a record, whatever else was fetched', () => {
    expect(
      recordRefOf('contact', 'c1', {
        territory: 'NA',
        owner: 'erin@example.com',
        account_id: 'a9',
        email: 'x@y.z',
      }),
    ).toEqual({ id: 'c1', territory: 'NA', owner: 'erin@example.com', account: 'a9' });
    expect(recordRefOf('account', 'a1', { territory: 'NA', owner: 'erin@example.com' })).toMatchObject({
      account: 'a1',
    });
    expect(recordRefOf('note', 'n1', { territory: null })).toEqual({
      id: 'n1',
      territory: '',
      owner: '',
      account: '',
    });
  });

  it('holds a new record to every row condition, `in` as well as `eq`; a missing value fails it', () => {
    const note = { territory: 'EMEA', account_id: 'a2' };
    expect(conditionHolds({ field: 'territory', op: 'eq', value: 'EMEA' }, note)).toBe(true);
    expect(conditionHolds({ field: 'account_id', op: 'in', value: ['a1', 'a2'] }, note)).toBe(true);
    expect(conditionHolds({ field: 'account_id', op: 'in', value: ['a1', 'a3'] }, note)).toBe(false);
    expect(conditionHolds({ field: 'owner', op: 'in', value: ['a1'] }, note)).toBe(false);
  });
});
