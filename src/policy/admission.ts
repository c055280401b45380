import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { ManifestInvalid } from './errors.js';
import type { PolicySet } from './library.js';
import { enrichManifest, parseManifest, type Enrichment, type ManifestContext } from './manifest.js';

/**
 * Admission: the registration (approve) and deploy gates. The manifest is validated, enriched and
 * judged by the admission policies. Every admission rule is a Cedar forbid with `@severity("deny")` or
 * `@severity("review")`: Cedar's deny diagnostics name every satisfied forbid, and the worst severity
 * among them is the decision. A policy that fails to evaluate counts as a deny (Cedar itself would skip
 * it, which for a forbid would mean approving).
 */

export interface AdmissionRule {
  readonly id: string;
  readonly effect: 'approve' | 'review' | 'deny';
  readonly reason: string;
}

export type AdmissionResult =
  | {
      readonly decision: 'approve' | 'review' | 'deny';
      /** The rules that decided: every satisfied deny and review rule, or the permit that approved. */
      readonly rules: readonly AdmissionRule[];
      readonly enrichment: Enrichment;
      readonly version: string;
      readonly errors?: undefined;
    }
  | {
      /** Not a valid manifest: nothing was judged. */
      readonly decision: 'invalid';
      readonly rules: readonly [];
      readonly enrichment: undefined;
      readonly version: string;
      /** `field: what is wrong`, one per problem. */
      readonly errors: readonly string[];
    };

export interface AdmissionContext extends ManifestContext {
  /** `approve` (registration, the default) or `deploy`. */
  readonly action?: 'approve' | 'deploy';
  /** Whether the app was already approved (a reviewer's approval satisfies the review rules). */
  readonly approved?: boolean;
  /**
   * Whether the app's audit hook answered Gatehouse's signed challenge; an unverified hook is no
   * telemetry, so it cannot stand in for `telemetry: true`.
   */
  readonly auditHookVerified?: boolean;
  /** What a scan of the app's bundle found (the scan module's `scanSummary`); absent when not scanned. */
  readonly scan?: AdmissionScan;
}

/** Counts of a bundle scan, as policies/admission/scan.cedar reads them (`context.scan`). */
export interface AdmissionScan {
  readonly critical: number;
  readonly high: number;
  readonly medium: number;
  readonly low: number;
  readonly bypass: boolean;
  readonly unpinned: number;
  readonly lockfile_missing: boolean;
  readonly unscanned: number;
}

export function judgeManifest(
  policies: PolicySet,
  manifest: unknown,
  context: AdmissionContext = {},
): AdmissionResult {
  let parsed;
  try {
    parsed = parseManifest(manifest, context);
  } catch (error) {
    if (error instanceof ManifestInvalid) {
      return {
        decision: 'invalid',
        rules: [],
        enrichment: undefined,
        version: policies.version,
        errors: error.errors,
      };
    }
    throw error;
  }
  const enrichment = enrichManifest(parsed, context);
  const action = context.action ?? 'approve';
  const principal = { type: 'Gatehouse::User', id: parsed.owner };
  const resource = { type: 'Gatehouse::App', id: parsed.name };
  const answer = cedar.statefulIsAuthorized({
    principal,
    action: { type: 'Gatehouse::Action', id: action },
    resource,
    context: {
      approved: context.approved ?? false,
      ...(context.scan ? { scan: scanContext(context.scan) } : {}),
    },
    preparsedPolicySetId: policies.preparsed.admission,
    preparsedSchemaName: policies.preparsed.schema,
    validateRequest: true,
    entities: [
      {
        uid: principal,
        attrs: { email: parsed.owner, role: 'maker' },
        parents: [{ type: 'Gatehouse::Role', id: 'maker' }],
      },
      {
        uid: resource,
        attrs: {
          name: parsed.name,
          owner: parsed.owner,
          purpose: parsed.purpose.toLowerCase(),
          scopes: parsed.scopes,
          read_objects: enrichment.read_objects,
          write_objects: enrichment.write_objects,
          data_classes: enrichment.data_classes,
          retention_days: parsed.retention_days,
          expected_users: parsed.expected_users,
          telemetry:
            parsed.telemetry || (parsed.audit_hook !== undefined && context.auditHookVerified === true),
          sso: parsed.sso,
          insecure_redirect_uris: enrichment.insecure_redirect_uris,
          sensitive_reads: enrichment.sensitive_reads,
          sensitive_table_size: enrichment.sensitive_table_size,
          risk_score: enrichment.risk_score,
        },
        parents: [],
      },
    ],
  });
  const version = policies.version;

  if (answer.type === 'failure') {
    const message = answer.errors.map((e) => e.message).join('; ');
    return {
      decision: 'deny',
      rules: [evaluationError('admission.evaluation-error', message)],
      enrichment,
      version,
    };
  }
  const { decision, diagnostics } = answer.response;
  const errored = diagnostics.errors.map((e) => evaluationError(e.policyId, e.error.message));
  const rules: AdmissionRule[] = [...errored];
  for (const id of diagnostics.reason) {
    const info = policies.policies.get(id);
    const reason = info?.reason ?? id;
    if (decision === 'allow') rules.push({ id, effect: 'approve', reason });
    else rules.push({ id, effect: info?.severity ?? 'deny', reason });
  }
  if (decision === 'deny' && rules.length === 0) {
    rules.push({ id: 'default-deny', effect: 'deny', reason: 'no admission policy approves this app' });
  }
  const outcome = rules.some((r) => r.effect === 'deny')
    ? 'deny'
    : rules.some((r) => r.effect === 'review')
      ? 'review'
      : 'approve';
  const order = { deny: 0, review: 1, approve: 2 } as const;
  rules.sort((a, b) => order[a.effect] - order[b.effect] || (a.id < b.id ? -1 : 1));
  return { decision: outcome, rules, enrichment, version };
}

/** Exactly the attributes of the schema's ScanSummary: strict validation refuses any other. */
function scanContext(scan: AdmissionScan): Record<string, number | boolean> {
  const { critical, high, medium, low, bypass, unpinned, lockfile_missing, unscanned } = scan;
  return { critical, high, medium, low, bypass, unpinned, lockfile_missing, unscanned };
}

function evaluationError(id: string, message: string): AdmissionRule {
  return { id, effect: 'deny', reason: `the rule failed to evaluate, which counts as a deny: ${message}` };
}
