import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { simulateRecorded, type DecisionLog } from '../decision-log/index.js';
import {
  buildCandidate,
  candidateFiles,
  parseCases,
  runPolicyTests,
  runTestFiles,
  sinceTime,
  type CaseResult,
  type PolicySet,
} from '../policy/index.js';
import {
  loadActivePolicySet,
  publishAuditEvent,
  publishedVersion,
  publishPolicyFiles,
  publishReason,
  readPolicyTestFiles,
  type PolicyVersions,
} from '../policy-library/index.js';
import { governed, recordRefusalsBeforeHandler, type PipelineDeps, type Trail } from '../gateway/index.js';
import { callerWithScope } from './caller.js';
import { Closed, Nullable, Open, rejectInvalid, type AdminTypeProvider } from './shapes.js';

export interface PolicyRouteDeps extends PipelineDeps {
  /** The library in force (reloaded within a second of a publish). */
  library(): PolicySet;
  /** Where published versions live (the store). */
  versions: PolicyVersions;
  decisions: DecisionLog;
  /** Scope → fieldset, for admission cases. */
  fieldsets: Readonly<Record<string, { readonly object: string; readonly fields: readonly string[] }>>;
  /** The consent purpose vocabulary, for admission cases naming a consent_purpose. */
  consentPurposes: readonly string[];
}

/** A candidate library is up to 64 files of up to 256 KiB each; the body is capped at 1 MiB. */
const bodyLimit = 1024 * 1024;

/** A candidate library: file name → its text, or null to remove the file. */
const candidate = Type.Record(Type.String(), Nullable(Type.String()));
const testBody = Closed({ files: Type.Optional(candidate), cases: Type.Optional(Type.Unknown()) });
const simulateBody = Closed({ files: candidate, since: Type.Optional(Type.String({ maxLength: 64 })) });
const publishBody = Closed({ files: candidate, reason: Type.String(), force: Type.Optional(Type.Boolean()) });
const libraryView = Open({
  version: Type.String(),
  validation: Open({ status: Type.String() }),
  policies: Type.Array(Open({ id: Type.String(), kind: Type.String(), effect: Type.String() })),
  files: Type.Unknown(),
});
const testReport = Open({
  version: Type.String(),
  passed: Type.Boolean(),
  total: Type.Number(),
  failed: Type.Number(),
  files: Type.Array(Open({ file: Type.String(), results: Type.Array(Open()) })),
});
const publication = Open({
  version: Type.String(),
  policies: Type.Number(),
  active_within_seconds: Type.Number(),
});

/**
 * The policy admin API (CONTRACT.md "Admin": read, test, simulate, publish), for callers holding the
 * `admin` scope (the console client). Every call runs in governed(), so it is in the audit trail, and a
 * publish also appends its own `policy.publish` event before the new version becomes active.
 */
export function registerPolicyRoutes(app: FastifyInstance, deps: PolicyRouteDeps): void {
  const admin = (request: FastifyRequest, trail: Trail) =>
    callerWithScope(deps, request, trail, 'policy_library', 'admin');

  void app.register(async (plain) => {
    const scope = plain.withTypeProvider<AdminTypeProvider>();
    // A body refused before the handler (too large, not JSON) is recorded like any other admin call.
    recordRefusalsBeforeHandler(scope, deps, () => ({
      action: 'admin.policies',
      resourceType: 'policy_library',
    }));

    const readShape = { tags: ['policies'], response: { 200: libraryView } };
    scope.get('/admin/v1/policies', { schema: readShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.policies.read', async (trail) => {
        await admin(request, trail);
        const active = deps.library();
        trail.resourceId = active.version;
        trail.reason = `policy library ${active.version} returned`;
        return {
          version: active.version,
          validation: await validationStatus(deps.versions, active),
          policies: [...active.policies.values()].map((p) => ({
            id: p.id,
            kind: p.kind,
            effect: p.effect,
            ...(p.severity && { severity: p.severity }),
            reason: p.reason,
            file: p.file,
            line: p.line,
          })),
          files: active.files,
        };
      }),
    );

    const testShape = { tags: ['policies'], body: testBody, response: { 200: testReport } };
    scope.post('/admin/v1/policies/test', { bodyLimit, schema: testShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.policies.test', async (trail) => {
        await admin(request, trail);
        rejectInvalid(request);
        const body = request.body;
        const policies = body.files ? buildCandidate(deps.library().files, body.files) : deps.library();
        trail.resourceId = policies.version;
        const context = { fieldsets: deps.fieldsets, consentPurposes: deps.consentPurposes };
        const files =
          body.cases !== undefined
            ? [{ file: '(posted)', results: runPolicyTests(policies, parseCases(body.cases), context) }]
            : runTestFiles(
                policies,
                deps.library().tests ?? (await readPolicyTestFiles(deps.library().dir)),
                context,
              );
        const results = files.flatMap((f) => f.results);
        const failed = results.filter((r) => !r.passed).length;
        trail.reason = `${results.length - failed}/${results.length} policy test cases passed`;
        return {
          version: policies.version,
          passed: failed === 0,
          total: results.length,
          failed,
          files: files.map((f) => ({ file: f.file, results: f.results.map(caseJson) })),
        };
      }),
    );

    const simulateShape = {
      tags: ['policies'],
      body: simulateBody,
      response: { 200: Open({ active: Type.String() }) },
    };
    scope.post('/admin/v1/policies/simulate', { bodyLimit, schema: simulateShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.policies.simulate', async (trail) => {
        await admin(request, trail);
        rejectInvalid(request);
        const body = request.body;
        const since = sinceTime(body.since ?? '7d');
        const candidateSet = buildCandidate(deps.library().files, body.files);
        trail.resourceId = candidateSet.version;
        // Decisions of requests answered a moment ago are still queued: replay them too.
        await deps.decisions.flush();
        const report = await simulateRecorded(candidateSet, deps.decisions, since);
        const changed = Object.values(report.changes).reduce((n, group) => n + group.count, 0);
        trail.reason = `${changed} of ${report.total} recorded decisions would change under ${candidateSet.version}`;
        return { active: deps.library().version, ...report };
      }),
    );

    const publishShape = { tags: ['policies'], body: publishBody, response: { 200: publication } };
    scope.post('/admin/v1/policies/publish', { bodyLimit, schema: publishShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.policies.publish', async (trail) => {
        const principal = await admin(request, trail);
        rejectInvalid(request);
        const body = request.body;
        const reason = publishReason(body.reason);
        const active = deps.library();
        const files = candidateFiles(active.files, body.files);
        const tests = active.tests ?? (await readPolicyTestFiles(active.dir));
        const gate = {
          context: { fieldsets: deps.fieldsets, consentPurposes: deps.consentPurposes },
          force: body.force === true,
        };
        const {
          set,
          previous,
          tests: tested,
        } = await publishPolicyFiles(files, tests, deps.versions, gate, async (publication) => {
          trail.resourceId = publication.set.version;
          await deps.audit.append(
            publishAuditEvent({
              actor: principal.email,
              role: principal.role,
              appId: principal.appId,
              requestId: request.id,
              previous: publication.previous,
              version: publication.set.version,
              reason,
              tests: publication.tests,
            }),
          );
        });
        trail.reason = `published policy version ${set.version} (was ${previous}): ${reason}`;
        return {
          version: set.version,
          previous,
          policies: set.policies.size,
          tests: tested,
          // The running servers reload the pointer every second.
          active_within_seconds: 1,
        };
      }),
    );
  });
}

/** A library that validates is in force; a published one that failed to load is reported, not hidden. */
async function validationStatus(
  versions: PolicyVersions,
  active: PolicySet,
): Promise<{ status: 'valid' | 'reloading' | 'invalid'; published?: string; error?: string }> {
  let published: string | undefined;
  try {
    published = await publishedVersion(versions);
    if (published === undefined || published === active.version) return { status: 'valid', published };
    await loadActivePolicySet(versions);
    return { status: 'reloading', published };
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return {
      status: 'invalid',
      ...(published && { published }),
      error: `the published library cannot be loaded, so ${active.version} stays in force: ${why}`,
    };
  }
}

function caseJson(result: CaseResult) {
  return {
    name: result.name,
    passed: result.passed,
    decision: result.decision,
    policy_ids: result.policyIds,
    ...(result.where && { where: result.where }),
    problems: result.problems,
  };
}
