import fc from 'fast-check';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadPolicySet } from '../policy-library/index.js';
import { variant } from '../policy-library/test-support.js';
import { compileRowFilter } from './authorize.js';
import {
  assertAuthorized,
  authorizeRequest,
  createPolicyCaches,
  type AuthorizeInput,
  type PolicyCaches,
  type PolicySet,
  type RequestContext,
  type RowCondition,
  type RuntimeAction,
} from './index.js';
import type { Principal } from './runtime.js';
import { alice, bob, dave, erin, principal } from './test-support.js';

let policies: PolicySet;
beforeAll(async () => {
  policies = await loadPolicySet();
});
// Each test its own caches, as each set of modules has its own.
let caches: PolicyCaches;
beforeEach(() => {
  caches = createPolicyCaches();
});
const authorize = (set: PolicySet, input: AuthorizeInput) => authorizeRequest(set, input, caches);
const rowFilter = (
  set: PolicySet,
  p: Principal,
  action: RuntimeAction,
  object: string,
  context?: RequestContext,
) => compileRowFilter(set, { principal: p, action, object, ...(context && { context }) }, caches);

const record = (territory: string, owner = 'someone@example.com', id = 'c1') => ({ id, territory, owner });
const exportContext = {
  recordCount: 10,
  ip: '127.0.0.1',
  fields: ['first_name'],
  time: new Date('2025-01-01T10:00:00Z'),
};

describe('runtime authorization', () => {
  it('allows a rep of EMEA on an EMEA record, naming the permit', () => {
    const result = authorize(policies, {
      principal: alice,
      action: 'read',
      object: 'contact',
      resource: record('EMEA'),
    });
    expect(result).toMatchObject({
      allowed: true,
      policyIds: ['runtime.sales-own-territory'],
      version: policies.version,
    });
  });

  it('denies a rep of EMEA on an NA record, naming the forbid, and answers 403 with the id and version', () => {
    const result = authorize(policies, {
      principal: alice,
      action: 'read',
      object: 'contact',
      resource: record('NA'),
    });
    expect(result).toMatchObject({ allowed: false, policyIds: ['runtime.territory-boundary'] });
    expect(() => assertAuthorized(result)).toThrow(
      expect.objectContaining({
        code: 'POLICY_DENIED',
        status: 403,
        extensions: expect.objectContaining({
          rule: 'runtime.territory-boundary',
          policy_version: policies.version,
        }),
      }),
    );
  });

  it('denies by default: a role no policy permits gets nothing', () => {
    const result = authorize(policies, {
      principal: dave,
      action: 'read',
      object: 'account',
      resource: record('EMEA'),
    });
    expect(result).toMatchObject({ allowed: false, policyIds: [] });
    expect(() => assertAuthorized(result)).toThrow(expect.objectContaining({ code: 'POLICY_DENIED' }));
  });

  it('denies a sales rep with no territory', () => {
    const nowhere = principal('nora', 'sales_rep', undefined);
    expect(
      authorize(policies, {
        principal: nowhere,
        action: 'read',
        object: 'contact',
        resource: record('EMEA'),
      }).allowed,
    ).toBe(false);
  });

  it('lets only managers export, within 1000 records and from a trusted network', () => {
    const ask = (p = bob, context = exportContext) =>
      authorize(policies, {
        principal: p,
        action: 'export',
        object: 'contact',
        resource: record('EMEA'),
        context,
      });
    expect(ask()).toMatchObject({ allowed: true, policyIds: ['runtime.manager-export'] });
    expect(ask(alice).allowed).toBe(false);
    expect(ask(bob, { ...exportContext, recordCount: 5000 })).toMatchObject({
      allowed: false,
      policyIds: ['runtime.bulk-export-limit'],
    });
    expect(ask(bob, { ...exportContext, ip: '203.0.113.9' })).toMatchObject({
      allowed: false,
      policyIds: ['runtime.export-trusted-network'],
    });
    // An unknown address is 0.0.0.0, which no network rule trusts.
    expect(ask(bob, { ...exportContext, ip: undefined as unknown as string }).allowed).toBe(false);
  });

  it('denies when the context cannot be evaluated (an address that is not one)', () => {
    const result = authorize(policies, {
      principal: bob,
      action: 'read',
      object: 'contact',
      resource: record('EMEA'),
      context: { ip: 'not-an-address' },
    });
    expect(result.allowed).toBe(false);
  });

  it('treats an unknown action or object as a programming mistake (TypeError)', () => {
    expect(() =>
      authorize(policies, { principal: alice, action: 'delete' as 'read', object: 'contact' }),
    ).toThrow(TypeError);
    expect(() => authorize(policies, { principal: alice, action: 'read', object: 'user' })).toThrow(
      TypeError,
    );
  });
});

describe('decision cache', () => {
  const emeaRead = () => ({
    principal: alice,
    action: 'read' as const,
    object: 'contact',
    resource: record('EMEA'),
  });

  it('returns the same decision for the same inputs without asking Cedar again', () => {
    const request = emeaRead();
    const first = authorize(policies, request);
    const misses = caches.decisions.misses;
    const second = authorize(policies, request);
    expect(second).toBe(first);
    expect(caches.decisions.misses).toBe(misses);
    expect(caches.decisions.hits).toBeGreaterThan(0);
  });

  it('is keyed by version: a new library never reuses an old decision', async () => {
    const open = await variant({
      'runtime/territory.cedar':
        '@id("runtime.open")\n@reason("everyone reads everything")\npermit (principal, action == Gatehouse::Action::"read", resource);\n',
    });
    const request = { principal: alice, action: 'read' as const, object: 'contact', resource: record('NA') };
    expect(authorize(policies, request).allowed).toBe(false);
    const result = authorize(open, request);
    expect(result).toMatchObject({ allowed: true, policyIds: ['runtime.open'], version: open.version });
    expect(authorize(policies, request).allowed).toBe(false);
  });

  it('is an instance: answers kept by one set of caches are not answers of another', () => {
    const request = emeaRead();
    const first = authorize(policies, request);
    const other = createPolicyCaches();
    const fresh = authorizeRequest(policies, request, other);
    expect(fresh).toEqual(first);
    expect(fresh).not.toBe(first);
    expect(other.decisions).toMatchObject({ size: 1, hits: 0, misses: 1 });
    expect(caches.decisions).toMatchObject({ size: 1, hits: 0, misses: 1 });
  });

  it('keys on the hour and weekday bucket, the network and the fields: a cached answer never outlives its inputs', async () => {
    const hours = await variant({
      'runtime/hours.cedar':
        '@id("runtime.office-hours")\n@reason("test")\n' +
        'forbid (principal, action == Gatehouse::Action::"read", resource) unless { context.hour >= 8 && context.hour < 18 && context.weekday != 0 && context.ip.isInRange(ip("10.0.0.0/8")) && !context.field_classes.contains("pii") };\n',
    });
    const ask = (time: string, ip = '10.1.2.0/24', fields = ['first_name']) =>
      authorize(hours, {
        principal: alice,
        action: 'read',
        object: 'contact',
        resource: record('EMEA'),
        context: { time: new Date(time), ip, fields },
      }).allowed;
    expect(ask('2025-03-03T09:15:00Z')).toBe(true);
    expect(ask('2025-03-03T09:59:00Z')).toBe(true); // same bucket: a cache hit, the same answer
    expect(ask('2025-03-03T20:00:00Z')).toBe(false); // another hour
    expect(ask('2025-03-02T09:15:00Z')).toBe(false); // a Sunday
    expect(ask('2025-03-03T09:15:00Z', '203.0.113.0/24')).toBe(false); // another network
    expect(ask('2025-03-03T09:15:00Z', '10.1.2.0/24', ['first_name', 'email'])).toBe(false); // a pii field
    expect(ask('2025-03-03T09:15:00Z')).toBe(true);
  });

  it('keys on every input Cedar sees (different territory, different answer)', () => {
    expect(
      authorize(policies, {
        principal: alice,
        action: 'read',
        object: 'note',
        resource: record('EMEA'),
      }).allowed,
    ).toBe(true);
    expect(
      authorize(policies, {
        principal: erin,
        action: 'read',
        object: 'note',
        resource: record('EMEA'),
      }).allowed,
    ).toBe(false);
  });
});

describe('row filters from partial evaluation', () => {
  it('gives territory eq for reps and managers', () => {
    expect(rowFilter(policies, alice, 'read', 'contact')).toEqual([
      { field: 'territory', op: 'eq', value: 'EMEA' },
    ]);
    // Through any app a rep writes notes only on her own accounts (runtime.notes-on-assigned-accounts).
    expect(rowFilter(policies, erin, 'write', 'note')).toEqual([
      { field: 'territory', op: 'eq', value: 'NA' },
      { field: 'owner', op: 'eq', value: 'erin@example.com' },
    ]);
    expect(rowFilter(policies, bob, 'aggregate', 'opportunity', exportContext)).toEqual([
      { field: 'territory', op: 'eq', value: 'EMEA' },
    ]);
    expect(rowFilter(policies, bob, 'export', 'contact', exportContext)).toEqual([
      { field: 'territory', op: 'eq', value: 'EMEA' },
    ]);
  });

  it('turns the residency forbid into a region filter over the closed vocabulary, and a record decision', () => {
    const regions = ['APAC', 'EU', 'US'];
    const inUs = { ...alice, residency: { region: 'US', transfers: [], regions } };
    // `region ≠ EU` has no `in` form of its own; over the vocabulary it is `region in [APAC, US]`.
    expect(rowFilter(policies, inUs, 'read', 'account')).toEqual([
      { field: 'territory', op: 'eq', value: 'EMEA' },
      { field: 'region', op: 'in', value: ['APAC', 'US'] },
    ]);
    const allowed = { ...inUs, residency: { ...inUs.residency, transfers: ['EU'] } };
    expect(rowFilter(policies, allowed, 'read', 'account')).toEqual([
      { field: 'territory', op: 'eq', value: 'EMEA' },
    ]);
    const record = { id: '0010S0000000004', territory: 'EMEA', owner: 'bob@example.com', region: 'EU' };
    expect(
      authorize(policies, { principal: inUs, action: 'read', object: 'account', resource: record }),
    ).toMatchObject({
      allowed: false,
      policyIds: ['runtime.residency-eu-transfer'],
    });
    expect(
      authorize(policies, { principal: allowed, action: 'read', object: 'account', resource: record })
        .allowed,
    ).toBe(true);
  });

  it('answers a list request through authorizeRequest with the same filter', () => {
    const result = authorize(policies, { principal: alice, action: 'read', object: 'account' });
    expect(result).toMatchObject({ allowed: true, where: [{ field: 'territory', op: 'eq', value: 'EMEA' }] });
  });

  it('denies (403 naming the reason) when nothing can be visible', () => {
    expect(() => rowFilter(policies, dave, 'read', 'contact')).toThrow(
      expect.objectContaining({
        code: 'POLICY_DENIED',
        extensions: expect.objectContaining({ rule: 'default-deny' }),
      }),
    );
    expect(() => rowFilter(policies, alice, 'export', 'contact', exportContext)).toThrow(
      expect.objectContaining({ code: 'POLICY_DENIED' }),
    );
  });

  it('fails closed when a policy depends on request context that was not given', () => {
    expect(() => rowFilter(policies, bob, 'export', 'contact')).toThrow(
      expect.objectContaining({
        code: 'POLICY_DENIED',
        extensions: expect.objectContaining({ rule: 'runtime.bulk-export-limit' }),
      }),
    );
  });

  it('merges permits on one field into an in condition', async () => {
    const wider = await variant({
      'runtime/extra.cedar':
        '@id("runtime.managers-see-na")\n@reason("test")\n' +
        'permit (principal in Gatehouse::Role::"sales_manager", action == Gatehouse::Action::"read", resource)\n' +
        'when { ["NA", "APAC"].contains(resource.territory) };\n',
      'runtime/territory.cedar': null,
      'runtime/export.cedar': null,
    });
    expect(rowFilter(wider, bob, 'read', 'contact', exportContext)).toEqual([
      { field: 'territory', op: 'in', value: ['APAC', 'NA'] },
    ]);
  });

  it('fails closed on anything the compiler cannot translate, never widening', async () => {
    const like = await variant({
      'runtime/extra.cedar':
        '@id("runtime.owner-domain")\n@reason("test")\n' +
        'permit (principal, action == Gatehouse::Action::"read", resource) when { resource.owner like "*@example.com" };\n',
    });
    expect(() => rowFilter(like, alice, 'read', 'contact')).toThrow(
      expect.objectContaining({
        code: 'POLICY_DENIED',
        extensions: expect.objectContaining({ rule: 'runtime.owner-domain' }),
      }),
    );
    // The same policy still decides single records exactly.
    expect(
      authorize(like, {
        principal: dave,
        action: 'read',
        object: 'contact',
        resource: record('NA', 'x@example.com'),
      }).allowed,
    ).toBe(true);

    const twoFields = await variant({
      'runtime/extra.cedar':
        '@id("runtime.own-records")\n@reason("test")\n' +
        'permit (principal, action == Gatehouse::Action::"read", resource) when { resource.owner == principal.email };\n',
      'runtime/territory.cedar': (await import('node:fs'))
        .readFileSync(new URL('../../policies/runtime/territory.cedar', import.meta.url), 'utf8')
        .replace(/@id\("runtime.territory-boundary"\)[\s\S]*$/, ''),
    });
    // territory == EMEA OR owner == alice: an OR across fields is not a list of AND-ed conditions.
    expect(() => rowFilter(twoFields, alice, 'read', 'contact')).toThrow(
      expect.objectContaining({ code: 'POLICY_DENIED' }),
    );

    const negative = await variant({
      'runtime/extra.cedar':
        '@id("runtime.no-apac")\n@reason("test")\n' +
        'forbid (principal, action == Gatehouse::Action::"read", resource) when { resource.territory == "APAC" };\n',
    });
    expect(() => rowFilter(negative, alice, 'read', 'contact')).toThrow(
      expect.objectContaining({ extensions: expect.objectContaining({ rule: 'runtime.no-apac' }) }),
    );
  });

  it('caches row filters per version and principal', () => {
    const first = rowFilter(policies, alice, 'read', 'contact');
    const hits = caches.rowFilters.hits;
    expect(rowFilter(policies, alice, 'read', 'contact')).toEqual(first);
    expect(caches.rowFilters.hits).toBe(hits + 1);
  });
});

/** The connector's semantics of a filter: every condition holds. */
function matches(where: readonly RowCondition[], row: Record<string, string>): boolean {
  return where.every((c) =>
    c.op === 'eq' ? row[c.field] === c.value : c.value.includes(row[c.field] ?? ''),
  );
}

describe('the compiled filter agrees with isAuthorized (property)', () => {
  const territories = ['EMEA', 'NA', 'APAC'];
  const arbitraryPrincipal = fc
    .record({
      role: fc.constantFrom('sales_rep', 'sales_manager', 'admin', 'auditor'),
      territory: fc.option(fc.constantFrom(...territories), { nil: undefined }),
      user: fc.constantFrom('alice', 'bob', 'erin'),
    })
    .map(({ role, territory, user }) => principal(user, role, territory));
  const arbitraryRow = fc.record({
    id: fc.constantFrom('r1', 'r2', 'r3'),
    territory: fc.constantFrom(...territories, ''),
    owner: fc.constantFrom('alice@example.com', 'bob@example.com', 'erin@example.com'),
  });

  async function check(set: PolicySet): Promise<void> {
    fc.assert(
      fc.property(
        arbitraryPrincipal,
        fc.constantFrom('read', 'write', 'export', 'aggregate'),
        fc.constantFrom('account', 'contact', 'opportunity', 'note'),
        fc.array(arbitraryRow, { minLength: 1, maxLength: 8 }),
        fc.option(fc.constant(exportContext), { nil: undefined }),
        (p, action, object, rows, context) => {
          let where: RowCondition[] | undefined;
          try {
            where = rowFilter(set, p, action, object, context);
          } catch {
            where = undefined; // denied: nothing is visible, which can never be wider than the policy
          }
          for (const row of rows) {
            const allowed = authorize(set, {
              principal: p,
              action,
              object,
              resource: row,
              context: context ?? exportContext,
            }).allowed;
            if (where === undefined) continue;
            // Exact when a filter was compiled: shows precisely the records Cedar allows one by one.
            expect(matches(where, row)).toBe(allowed);
          }
        },
      ),
      { numRuns: 300 },
    );
  }

  it('for the default library', async () => {
    await check(policies);
  });

  it('for a library with multi-territory permits', async () => {
    await check(
      await variant({
        'runtime/extra.cedar':
          '@id("runtime.managers-see-na")\n@reason("test")\n' +
          'permit (principal in Gatehouse::Role::"sales_manager", action == Gatehouse::Action::"read", resource)\n' +
          'when { ["NA", "EMEA"].contains(resource.territory) };\n' +
          '@id("runtime.auditors-read")\n@reason("test")\n' +
          'permit (principal in Gatehouse::Role::"auditor", action == Gatehouse::Action::"read", resource);\n',
      }),
    );
  });
});
