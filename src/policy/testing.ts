import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { InputError } from '../errors/index.js';
import { judgeManifest, type AdmissionContext } from './admission.js';
import {
  authorizeRequest,
  createPolicyCaches,
  runtimeActions,
  type AuthorizeResult,
  type PolicyCaches,
} from './authorize.js';
import type { PolicySet } from './library.js';
import type { Principal, RowCondition } from './runtime.js';

/**
 * Policy tests and simulation. A case is either a runtime request
 * `{ name?, principal, action, resource, context?, expect: allow | deny, policy?, where? }` or an
 * admission case `{ name?, manifest, action?, approved?, expect: approve | review | deny | invalid, rules? }`.
 * A file holds a list of cases, or `{ cases: [...] }`.
 */

const principalSchema = z.strictObject({
  id: z.string().min(1),
  email: z.string().optional(),
  role: z.string().min(1),
  territory: z.string().optional(),
  app: z.string().default('policy-test'),
  scopes: z.array(z.string()).default([]),
});

const runtimeCase = z.strictObject({
  name: z.string().optional(),
  principal: principalSchema,
  action: z.enum(runtimeActions),
  resource: z.strictObject({
    object: z.enum(['account', 'contact', 'opportunity', 'note']),
    /** Without id, territory and owner the case is a list: the row filter is computed. */
    id: z.string().optional(),
    territory: z.string().optional(),
    owner: z.string().optional(),
    account: z.string().optional(),
  }),
  context: z
    .strictObject({
      fields: z.array(z.string()).optional(),
      /** The classes of `fields`; derived from the default classification when absent. */
      field_classes: z.array(z.string()).optional(),
      record_count: z.number().int().min(0).optional(),
      ip: z.string().optional(),
      time: z.iso.datetime({ offset: true }).optional(),
    })
    .default({}),
  expect: z.enum(['allow', 'deny']).optional(),
  /** A policy id that must be among those that decided. */
  policy: z.string().optional(),
  /** For a list: the exact row filter expected. */
  where: z.array(z.record(z.string(), z.unknown())).optional(),
});

const admissionCase = z.strictObject({
  name: z.string().optional(),
  manifest: z.unknown(),
  action: z.enum(['approve', 'deploy']).optional(),
  approved: z.boolean().optional(),
  /** A bundle scan summary (`gatehouse scan --json` → summary); absent: not scanned. */
  scan: z
    .strictObject({
      critical: z.number().int().min(0).default(0),
      high: z.number().int().min(0).default(0),
      medium: z.number().int().min(0).default(0),
      low: z.number().int().min(0).default(0),
      bypass: z.boolean().default(false),
      unpinned: z.number().int().min(0).default(0),
      lockfile_missing: z.boolean().default(false),
      unscanned: z.number().int().min(0).default(0),
    })
    .optional(),
  expect: z.enum(['approve', 'review', 'deny', 'invalid']).optional(),
  /** Rule ids that must all be among those that decided. */
  rules: z.array(z.string()).optional(),
});

export type PolicyCase = z.infer<typeof runtimeCase> | z.infer<typeof admissionCase>;

export function parseCases(input: unknown): PolicyCase[] {
  const list = Array.isArray(input) ? input : (input as { cases?: unknown } | null)?.cases;
  if (!Array.isArray(list))
    throw new InputError('a policy test file holds a list of cases, or { cases: [...] }');
  return list.map((item, i) => {
    const kind = item && typeof item === 'object' && 'manifest' in item ? admissionCase : runtimeCase;
    const parsed = kind.safeParse(item);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue?.path.join('.') || 'case';
      throw new InputError(`case ${i + 1}: ${path}: ${issue?.message ?? 'invalid'}`, { case: i + 1 });
    }
    return parsed.data;
  });
}

/** Cases from the text of a JSON or YAML file (YAML 1.2 is a superset of JSON); 422 naming the file. */
export function parseCaseFile(text: string, name: string): PolicyCase[] {
  let document: unknown;
  try {
    document = parseYaml(text, { prettyErrors: false, maxAliasCount: 100 });
  } catch (error) {
    const why = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
    throw new InputError(`${name} is not JSON or YAML: ${why}`, { file: name });
  }
  try {
    return parseCases(document);
  } catch (error) {
    if (error instanceof InputError) throw new InputError(`${name}: ${error.message}`, { file: name });
    throw error;
  }
}

/** What a case decided, in a form that compares across policy versions. */
export interface CaseOutcome {
  readonly name: string;
  readonly decision: string;
  readonly policyIds: readonly string[];
  readonly where?: readonly RowCondition[];
}

export function evaluateCase(
  policies: PolicySet,
  testCase: PolicyCase,
  index: number,
  context: AdmissionContext,
  caches: PolicyCaches,
): CaseOutcome {
  if ('manifest' in testCase) {
    const name = testCase.name ?? `case ${index + 1}`;
    const result = judgeManifest(policies, testCase.manifest, {
      ...context,
      ...(testCase.action ? { action: testCase.action } : {}),
      ...(testCase.approved !== undefined ? { approved: testCase.approved } : {}),
      ...(testCase.scan ? { scan: testCase.scan } : {}),
    });
    return {
      name,
      decision: result.decision,
      policyIds: result.decision === 'invalid' ? result.errors : result.rules.map((r) => r.id),
    };
  }
  const c = testCase;
  const name = c.name ?? `case ${index + 1}: ${c.principal.id} ${c.action} ${c.resource.object}`;
  const principal: Principal = {
    userId: c.principal.id,
    email: c.principal.email ?? c.principal.id,
    role: c.principal.role,
    territory: c.principal.territory,
    appId: c.principal.app,
    clientId: c.principal.app,
    scopes: c.principal.scopes,
  };
  const { id, territory, owner, account } = c.resource;
  const list = id === undefined && territory === undefined && owner === undefined && account === undefined;
  const result: AuthorizeResult = authorizeRequest(
    policies,
    {
      principal,
      action: c.action,
      object: c.resource.object,
      ...(list
        ? {}
        : {
            resource: {
              id: id ?? 'test-record',
              territory: territory ?? '',
              owner: owner ?? '',
              account: account ?? '',
            },
          }),
      context: {
        ...(c.context.fields ? { fields: c.context.fields } : {}),
        ...(c.context.field_classes ? { fieldClasses: c.context.field_classes } : {}),
        ...(c.context.record_count !== undefined ? { recordCount: c.context.record_count } : {}),
        ...(c.context.ip ? { ip: c.context.ip } : {}),
        ...(c.context.time ? { time: new Date(c.context.time) } : {}),
      },
    },
    caches,
  );
  return {
    name,
    decision: result.allowed ? 'allow' : 'deny',
    policyIds: result.policyIds,
    ...(result.where ? { where: result.where } : {}),
  };
}

export interface CaseResult extends CaseOutcome {
  readonly passed: boolean;
  readonly problems: readonly string[];
}

export function runPolicyTests(
  policies: PolicySet,
  cases: readonly PolicyCase[],
  context: AdmissionContext = {},
): CaseResult[] {
  // A run's own caches: its cases must not evict, nor be answered from, what live requests decided.
  const caches = createPolicyCaches();
  return cases.map((testCase, i) => {
    const outcome = evaluateCase(policies, testCase, i, context, caches);
    const problems: string[] = [];
    if (testCase.expect && outcome.decision !== testCase.expect) {
      problems.push(`expected ${testCase.expect}, got ${outcome.decision}`);
    }
    const wanted = 'manifest' in testCase ? (testCase.rules ?? []) : testCase.policy ? [testCase.policy] : [];
    for (const id of wanted) {
      if (!outcome.policyIds.includes(id))
        problems.push(`expected ${id} among [${outcome.policyIds.join(', ')}]`);
    }
    if (!('manifest' in testCase) && testCase.where) {
      if (JSON.stringify(outcome.where ?? null) !== JSON.stringify(testCase.where)) {
        problems.push(
          `expected where ${JSON.stringify(testCase.where)}, got ${JSON.stringify(outcome.where ?? null)}`,
        );
      }
    }
    return { ...outcome, passed: problems.length === 0, problems };
  });
}

export interface SimulationChange {
  readonly name: string;
  readonly before: CaseOutcome;
  readonly after: CaseOutcome;
}

/** Replays requests against the current and a candidate library; lists those whose outcome changes. */
export function simulatePolicies(
  current: PolicySet,
  candidate: PolicySet,
  requests: readonly PolicyCase[],
  context: AdmissionContext = {},
): { total: number; changed: SimulationChange[] } {
  const changed: SimulationChange[] = [];
  const caches = createPolicyCaches();
  requests.forEach((request, i) => {
    const before = evaluateCase(current, request, i, context, caches);
    const after = evaluateCase(candidate, request, i, context, caches);
    const same =
      before.decision === after.decision &&
      JSON.stringify(before.where ?? null) === JSON.stringify(after.where ?? null);
    if (!same) changed.push({ name: before.name, before, after });
  });
  return { total: requests.length, changed };
}

/**
 * Runs the cases of each test file of a library (`tests/*.yaml`) against `policies`. Other tools keep
 * their own cases beside the policies (detection playbooks); a file none of whose cases names a
 * principal or a manifest is theirs and is left out.
 */
export function runTestFiles(
  policies: PolicySet,
  files: readonly { readonly path: string; readonly text: string }[],
  context: AdmissionContext = {},
): { file: string; results: CaseResult[] }[] {
  return files
    .filter((file) => holdsPolicyCases(file.text))
    .map((file) => ({
      file: file.path,
      results: runPolicyTests(policies, parseCaseFile(file.text, file.path), context),
    }));
}

function holdsPolicyCases(text: string): boolean {
  let document: unknown;
  try {
    document = parseYaml(text, { prettyErrors: false, maxAliasCount: 100 });
  } catch {
    return true; // a broken file is reported by parseCaseFile, not skipped
  }
  const list = Array.isArray(document) ? document : (document as { cases?: unknown } | null)?.cases;
  if (!Array.isArray(list) || list.length === 0) return true;
  return list.some((item) => item && typeof item === 'object' && ('principal' in item || 'manifest' in item));
}
