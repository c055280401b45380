import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditEvent, AuditLog } from '../audit/index.js';
import {
  AccessDenied,
  DependencyUnavailable,
  GatehouseError,
  RateLimited,
  type ErrorCode,
} from '../errors/index.js';
import { retryAfterSeconds, type AppPlan, type Limits } from '../limits/index.js';
import type { Principal } from '../policy/index.js';
import type { RuntimePolicy } from './policy.js';
import { identify, type TokenClaims } from './stages.js';

export interface PipelineDeps {
  audit: AuditLog;
  limits: Limits;
  policy: RuntimePolicy;
  /** The verified access token of the request (Bearer or DPoP-bound); throws TokenError otherwise. */
  authenticateCaller(request: FastifyRequest): Promise<TokenClaims>;
  /** The app's approved constraints (quota, rate), which narrow the configured limits; none for demo apps. */
  appPlan?(appId: string): Promise<ApprovedPlan | undefined>;
  /** Called once per request with its outcome, for metrics. */
  onDecision?(request: FastifyRequest, outcome: AuditEvent['outcome'], appId: string): void;
}

/**
 * What the app's approved plan sets at run time: its limits, the purpose it processes contacts for and
 * the read volume it declared (its export budgets).
 */
export interface ApprovedPlan extends AppPlan {
  /** The plan's `consent_purpose`; absent when it names none (configuration decides then). */
  consentPurpose?: string;
  /** The plan's `expected_users` and `expected_reads` (records per user per day, by object). */
  reads?: { expectedUsers: number; expectedReads: Readonly<Partial<Record<string, number>>> };
}

/** What one request did, filled in by the stages as they run and recorded whatever the outcome. */
export interface Trail {
  principal?: Principal;
  action: string;
  resourceType: string;
  resourceId: string;
  scopes: readonly string[];
  /** The CRM fields read or written (names only) and how many records: facts for detection. */
  fields: readonly string[];
  recordCount?: number;
  reason: string;
  /** Added to the reason of a refusal (which is otherwise its code): what was found, never values. */
  detail: string;
  /** Response headers the stages decided (RateLimit-*, ETag), sent whatever the outcome. */
  headers: Record<string, string>;
  /** Further events this request raises for detection (a `bulk_export`), appended before its own. */
  events: Array<Pick<AuditEvent, 'action' | 'reason'>>;
}

/** Requests whose audit event is being or has been recorded by governed(). */
const governedRequests = new WeakSet<FastifyRequest>();

/** Whether governed() ran for this request; a failure before the handler (body parsing) has no event yet. */
export function wasGoverned(request: FastifyRequest): boolean {
  return governedRequests.has(request);
}

/**
 * Runs the stages of one request and records its audit event before anything is sent, allowed or
 * denied. If the event cannot be made durable the caller gets 503 and no data (fail closed).
 */
export async function governed(
  deps: PipelineDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  action: string,
  run: (trail: Trail) => Promise<unknown>,
): Promise<unknown> {
  governedRequests.add(request);
  const trail: Trail = {
    action,
    resourceType: '',
    resourceId: '',
    scopes: [],
    fields: [],
    reason: '',
    detail: '',
    headers: {},
    events: [],
  };
  let body: unknown;
  let failure: unknown;
  try {
    body = await run(trail);
  } catch (error) {
    failure = error;
  }
  reply.headers(trail.headers);
  const outcome = outcomeOf(failure);
  const code = failure instanceof GatehouseError ? failure.code : 'INTERNAL';
  const reason = failure ? (trail.detail ? `${code}: ${trail.detail}` : code) : trail.reason;
  const event = auditEvent(request, trail, outcome, reason, deps.policy.version);
  try {
    for (const extra of trail.events) await deps.audit.append({ ...event, ...extra, outcome: 'deny' });
    await deps.audit.append(event);
  } catch (cause) {
    request.log.error({ err: cause, request_id: request.id }, 'audit append failed; request refused');
    throw new DependencyUnavailable(
      'AUDIT_UNAVAILABLE',
      'the audit trail cannot record this request, so it was refused; retry shortly',
      { cause },
    );
  }
  deps.onDecision?.(request, outcome, event.app_id);
  if (failure) throw failure;
  return body;
}

/**
 * Records the refusals Fastify makes before a handler runs (body size, media type, JSON syntax) in the
 * audit trail like any other, attributed to the caller when the token is valid: governed() records
 * and rethrows, and the parent error handler answers with problem+json.
 */
export function recordRefusalsBeforeHandler(
  scope: FastifyInstance,
  deps: PipelineDeps,
  describe: (request: FastifyRequest) => { action: string; resourceType: string },
): void {
  scope.setErrorHandler(async (error: FastifyError, request, reply) => {
    if (wasGoverned(request)) throw error;
    const refused = asGatehouseError(error);
    const { action, resourceType } = describe(request);
    await governed(deps, request, reply, action, async (trail) => {
      trail.resourceType = resourceType;
      await identifyQuietly(deps, request, trail);
      throw refused;
    });
    throw refused;
  });
}

/** Fastify's refusals before a handler (body size, media type, JSON syntax) as Gatehouse errors. */
export function asGatehouseError(error: FastifyError): unknown {
  if (error instanceof GatehouseError) return error;
  const byStatus: Record<number, ErrorCode> = { 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE' };
  const status = error.statusCode ?? 500;
  if (status >= 500) return error;
  const code = byStatus[status] ?? (error.code?.startsWith('FST_ERR_CTP_') ? 'INVALID_INPUT' : 'BAD_REQUEST');
  return new GatehouseError(code, code === 'INVALID_INPUT' ? 'the body is not valid JSON' : error.message, {
    cause: error,
  });
}

/** authenticate + identify + limit: the principal behind the bearer token, within its rate limits. */
export async function authenticate(
  deps: PipelineDeps,
  request: FastifyRequest,
  trail: Trail,
): Promise<Principal> {
  const claims = await deps.authenticateCaller(request);
  trail.principal = identify(claims);
  const appPlan = await deps.appPlan?.(trail.principal.appId);
  if (appPlan?.consentPurpose !== undefined) {
    trail.principal = withPurpose(trail.principal, appPlan.consentPurpose);
  }
  await limit(deps.limits, trail.principal, appPlan, trail);
  return trail.principal;
}

/** Principals with their app's consent purpose, kept per principal and purpose (see identify). */
const purposed = new WeakMap<Principal, Map<string, Principal>>();

function withPurpose(principal: Principal, consentPurpose: string): Principal {
  let byPurpose = purposed.get(principal);
  if (!byPurpose) {
    byPurpose = new Map();
    purposed.set(principal, byPurpose);
  }
  let found = byPurpose.get(consentPurpose);
  if (!found) {
    found = Object.freeze({ ...principal, consentPurpose });
    byPurpose.set(consentPurpose, found);
  }
  return found;
}

/**
 * limit: one token from the user's, the app's and the global bucket and the app's daily quota. The
 * RateLimit fields go out on every answer, so a well-behaved client slows down before it is refused.
 */
async function limit(
  limits: Limits,
  principal: Principal,
  appPlan: AppPlan | undefined,
  trail: Trail,
): Promise<void> {
  const decision = await limits.consume({
    appId: principal.appId,
    userId: principal.userId,
    actor: principal.email,
    appPlan,
  });
  Object.assign(trail.headers, limits.rateLimitHeaders(decision));
  if (decision.allowed) return;
  const scope = decision.scope ?? 'global';
  const refusing = decision.limits.find((l) => l.scope === scope);
  trail.detail = refusing ? `${scope} limit of ${refusing.quota}` : `${scope} limit`;
  if (decision.incident !== undefined) trail.detail += ` (incident ${decision.incident})`;
  throw new RateLimited(
    scope === 'quota' ? 'QUOTA_EXCEEDED' : 'RATE_LIMITED',
    scope,
    retryAfterSeconds(decision),
    decision.incident,
  );
}

/**
 * The principal behind the bearer token if there is a valid one, without taking from its limits: used
 * to attribute a request refused before its handler ran (an oversized or non-JSON body).
 */
export async function identifyQuietly(
  deps: PipelineDeps,
  request: FastifyRequest,
  trail: Trail,
): Promise<void> {
  try {
    trail.principal = identify(await deps.authenticateCaller(request));
  } catch {
    // Unattributed: the event records the request as anonymous.
  }
}

/** authorize, for the APIs that one plain scope opens (audit:read, admin): 403 without it. */
export function requireScope(principal: Principal, scope: string, trail: Trail): void {
  if (!principal.scopes.includes(scope)) {
    throw new AccessDenied('SCOPE_MISSING', `this call needs the ${scope} scope`, { scope });
  }
  trail.scopes = [scope];
}

function outcomeOf(failure: unknown): AuditEvent['outcome'] {
  if (!failure) return 'allow';
  if (failure instanceof GatehouseError && failure.status < 500) return 'deny';
  return 'error';
}

function auditEvent(
  request: FastifyRequest,
  trail: Trail,
  outcome: AuditEvent['outcome'],
  reason: string,
  policyVersion: string,
): AuditEvent {
  const principal = trail.principal;
  return {
    timestamp: new Date().toISOString(),
    actor_id: principal?.email ?? 'anonymous',
    actor_role: principal?.role ?? 'none',
    app_id: principal?.appId ?? 'unknown',
    action: trail.action,
    resource_type: trail.resourceType,
    resource_id: trail.resourceId.slice(0, 64),
    scope: trail.scopes.join(' '),
    request_id: request.id,
    trace_id: traceIdOf(request),
    outcome,
    reason,
    policy_version: policyVersion,
    ...(trail.fields.length > 0 && { fields: [...trail.fields].sort().join(',') }),
    ...(trail.recordCount !== undefined && { record_count: trail.recordCount }),
    client_network: networkOf(request.ip),
  };
}

/** The caller's network, not its address: IPv4 /24, IPv6 /48 (enough to notice a new range). */
export function networkOf(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}$/i.exec(ip);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.0/24`;
  if (ip.includes(':')) {
    const groups = expandIpv6(ip);
    if (groups) return `${groups.slice(0, 3).join(':')}::/48`;
  }
  return 'unknown';
}

function expandIpv6(ip: string): string[] | undefined {
  const [head = '', tail, ...rest] = ip.split('::');
  if (rest.length > 0) return undefined;
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right];
  return groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))
    ? groups.map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    : undefined;
}

/** The W3C traceparent's trace id when the caller sent a valid one, else the request id. */
function traceIdOf(request: FastifyRequest): string {
  const header = request.headers.traceparent;
  const match =
    typeof header === 'string' ? /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(header) : null;
  return match?.[1] ?? request.id;
}
