import { randomFillSync } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditEvent, AuditLog } from '../audit/index.js';
import { DependencyUnavailable, GatehouseError, RateLimited, type ErrorCode } from '../errors/index.js';
import { retryAfterSeconds, type AppPlan, type Limits } from '../limits/index.js';
import type { Principal, Residency } from '../policy/index.js';
import type { CrmIdentity } from '../crm/index.js';
import type { RuntimePolicy } from './policy.js';
import { asCrmKnowsThem, identify, type TokenClaims } from './stages.js';

export interface PipelineDeps {
  audit: AuditLog;
  limits: Limits;
  policy: RuntimePolicy;
  /** The verified access token of the request (Bearer or DPoP-bound); throws TokenError otherwise. */
  authenticateCaller(request: FastifyRequest): Promise<TokenClaims>;
  /** With a vendor CRM: who it says a user is (its territory is the one row filters use). */
  crmUser?: (user: { email: string }) => CrmIdentity | undefined;
  /** The app's approved constraints (quota, rate), which narrow the configured limits; none for demo apps. */
  appPlan?(appId: string): Promise<ApprovedPlan | undefined>;
  /** The app's residency from its plan (home region when it declares none); no residency rules when absent. */
  residencyOf?(plan: ApprovedPlan | undefined): Residency;
  /** How the audit event names the transfers the app's residency allows; none when it allows none. */
  transferOf?(residency: Residency): string | undefined;
  /** Called once per request with its outcome, for metrics. */
  onDecision?(request: FastifyRequest, outcome: AuditEvent['outcome'], appId: string): void;
  /** The time events are stamped with (a simulated clock in `gatehouse simulate`); real time by default. */
  now?: () => Date;
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
  /** The plan's `residency`: where the app runs, and the regions whose records it may receive. */
  residency?: { region: string; transfers: readonly string[] };
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
  /** The cross-border transfer the app's plan allows, recorded on the event of an allowed request. */
  transfer?: string;
  /** Further events this request raises for detection (a `bulk_export`), appended before its own. */
  events: Array<Pick<AuditEvent, 'action' | 'reason'>>;
  /** The caller's address, read once (behind a trusted proxy Fastify derives it on every read). */
  readonly ip: string | undefined;
  /** The caller's network as the audit event records it (networkOf of `ip`). */
  readonly network: string;
}

/**
 * One request on its way through a declared pipeline (routes.ts): the request, its trail, and what the
 * stages have found so far — who asks, through which app plan, the one policy ask, the caller's view
 * and plan, the records and the answer. Each stage reads what earlier stages set and sets its own part;
 * nothing else carries state between them.
 */
export interface Context<D extends PipelineDeps = PipelineDeps> {
  readonly deps: D;
  readonly request: FastifyRequest;
  readonly trail: Trail;
  /** authenticate: the principal behind the token, with its app plan's purpose and residency. */
  principal?: Principal;
  /** authenticate: the app's approved plan, looked up once per request. */
  appPlan?: ApprovedPlan;
  /** What the last stage answers the caller. */
  answer?: unknown;
}

/** A named step of a pipeline; a synchronous stage returns nothing and the next runs at once. */
export type Stage<C> = (context: C) => void | Promise<void>;

/**
 * Runs stages in order over one context, awaiting only the stages that return a promise, and answers
 * what the last one left in `answer`.
 */
export function runStages<C extends Context<PipelineDeps>>(
  stages: readonly Stage<C>[],
  context: C,
  from = 0,
): unknown {
  for (let i = from; i < stages.length; i++) {
    const pending = (stages[i] as Stage<C>)(context);
    if (pending) return pending.then(() => runStages(stages, context, i + 1));
  }
  return context.answer;
}

/** Requests whose audit event is being or has been recorded by governed(). */
const governedRequests = new WeakSet<FastifyRequest>();

/**
 * Who each governed request was for, so that its log line (src/server/http.ts) names the app and user,
 * never the token. Kept beside the request rather than in a pino child logger per request, which cost
 * as much as the rest of the audit event's construction.
 */
const callers = new WeakMap<FastifyRequest, Pick<Principal, 'appId' | 'userId'>>();

/** The app and user a governed request was for; undefined before authentication or without a token. */
export function callerOf(request: FastifyRequest): Pick<Principal, 'appId' | 'userId'> | undefined {
  return callers.get(request);
}

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
  run: (trail: Trail) => unknown,
): Promise<unknown> {
  governedRequests.add(request);
  const ip = request.ip;
  const trail: Trail = {
    ip,
    network: networkOf(ip),
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
  const event = auditEvent(request, trail, outcome, reason, deps.policy.version, deps.now);
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
  if (trail.principal) callers.set(request, trail.principal);
  deps.onDecision?.(request, outcome, event.app_id);
  if (failure) throw failure;
  return body;
}

/**
 * A write's intent, made durable before the CRM changes (DESIGN.md "a write records its intent durably
 * before the change and its outcome after it"): `<action>.intent` under the request's id, with the
 * fields and record it is about to write. governed() then records the outcome under the same id. If
 * the intent cannot be recorded nothing is changed (503); if the outcome cannot, the intent stays as
 * the record of a change whose outcome is unknown, and `gatehouse audit verify` reports it.
 */
export async function recordIntent(
  deps: PipelineDeps,
  request: FastifyRequest,
  trail: Trail,
  fields: readonly string[],
): Promise<void> {
  const event = auditEvent(
    request,
    { ...trail, fields, action: `${trail.action}${intentSuffix}` },
    'allow',
    'intent: the change follows, and its outcome under this request_id',
    deps.policy.version,
    deps.now,
  );
  try {
    await deps.audit.append(event);
  } catch (cause) {
    request.log.error({ err: cause, request_id: request.id }, 'audit append failed; write not made');
    throw new DependencyUnavailable(
      'AUDIT_UNAVAILABLE',
      'the audit trail cannot record this write, so nothing was changed; retry shortly',
      { cause },
    );
  }
}

/** The action suffix of a write's intent event (`crm.create.intent`); audit verify pairs it with the outcome. */
export const intentSuffix = '.intent';

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

const refusalMessages: Partial<Record<ErrorCode, string>> = {
  PAYLOAD_TOO_LARGE: 'the request body is larger than this server accepts',
  UNSUPPORTED_MEDIA_TYPE: 'this endpoint does not accept that content type; send application/json',
  INVALID_INPUT: 'the body is not valid JSON',
};

/** Fastify's refusals before a handler (body size, media type, JSON syntax) as Gatehouse errors. */
export function asGatehouseError(error: FastifyError): unknown {
  if (error instanceof GatehouseError) return error;
  const byStatus: Record<number, ErrorCode> = { 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE' };
  const status = error.statusCode ?? 500;
  if (status >= 500) return error;
  const code = byStatus[status] ?? (error.code?.startsWith('FST_ERR_CTP_') ? 'INVALID_INPUT' : 'BAD_REQUEST');
  // Fastify's messages can quote the input (a media type); the answer never echoes what was sent.
  return new GatehouseError(code, refusalMessages[code] ?? 'the request could not be read', { cause: error });
}

/** authenticate + identify + limit: the principal behind the bearer token, within its rate limits. */
export async function authenticate(
  deps: PipelineDeps,
  request: FastifyRequest,
  trail: Trail,
): Promise<Principal> {
  const context: Context = { deps, request, trail };
  await authenticateCaller(context);
  await limitCaller(context);
  return context.principal as Principal;
}

/**
 * authenticate + identify (stage): the verified token's principal as the CRM knows them, with the app
 * plan's consent purpose and residency; the plan is looked up once and kept for the later stages.
 */
export async function authenticateCaller(context: Context): Promise<void> {
  const { deps, trail } = context;
  const claims = await deps.authenticateCaller(context.request);
  let principal = identify(claims);
  if (deps.crmUser) principal = asCrmKnowsThem(principal, deps.crmUser({ email: principal.email }));
  trail.principal = principal;
  const appPlan = await deps.appPlan?.(principal.appId);
  if (appPlan?.consentPurpose !== undefined) principal = withPurpose(principal, appPlan.consentPurpose);
  if (deps.residencyOf) {
    const { residency, transfer } = residencyOfPlan(deps, appPlan);
    principal = withResidency(principal, residency);
    trail.transfer = transfer;
  }
  trail.principal = principal;
  context.principal = principal;
  context.appPlan = appPlan;
}

/** limit (stage): see limit below. */
export function limitCaller(context: Context): Promise<void> {
  return limit(context.deps.limits, need(context.principal), context.appPlan, context.trail);
}

/** A finding an earlier stage must have made; its absence is a pipeline declared out of order. */
export function need<T>(value: T | undefined): T {
  if (value === undefined) throw new GatehouseError('INTERNAL', 'a gateway stage ran out of order');
  return value;
}

/** A plan's residency and the transfer its events name, worked out once per plan (and per server). */
const residencies = new WeakMap<
  NonNullable<PipelineDeps['residencyOf']>,
  WeakMap<object, { residency: Residency; transfer?: string }>
>();
/** The key of "no approved plan" (a demo app) in residencies. */
const noPlan = {};

function residencyOfPlan(
  deps: PipelineDeps,
  appPlan: ApprovedPlan | undefined,
): { residency: Residency; transfer?: string } {
  const residencyOf = deps.residencyOf as NonNullable<PipelineDeps['residencyOf']>;
  let byPlan = residencies.get(residencyOf);
  if (!byPlan) residencies.set(residencyOf, (byPlan = new WeakMap()));
  let found = byPlan.get(appPlan ?? noPlan);
  if (!found) {
    const residency = residencyOf(appPlan);
    found = { residency, transfer: deps.transferOf?.(residency) };
    byPlan.set(appPlan ?? noPlan, found);
  }
  return found;
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

/** Principals with their app's residency, kept per principal and residency, as withPurpose does. */
const resident = new WeakMap<Principal, Map<string, Principal>>();

function withResidency(principal: Principal, residency: Residency): Principal {
  let byResidency = resident.get(principal);
  if (!byResidency) {
    byResidency = new Map();
    resident.set(principal, byResidency);
  }
  const key = JSON.stringify(residency);
  let found = byResidency.get(key);
  if (!found) {
    found = Object.freeze({ ...principal, residency });
    byResidency.set(key, found);
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
  now: () => Date = () => new Date(),
): AuditEvent {
  const principal = trail.principal;
  return {
    timestamp: now().toISOString(),
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
    client_network: trail.network,
    ...(outcome === 'allow' && trail.transfer !== undefined && { transfer: trail.transfer }),
  };
}

/**
 * The event of a request refused before any route's pipeline ran (a bad URL, oversized headers, load
 * shed): anonymous, and naming the refusal's code, never what was sent.
 */
export function refusalEvent(refusal: {
  requestId: string;
  code: string;
  ip: string | undefined;
  policyVersion: string;
}): AuditEvent {
  return {
    timestamp: new Date().toISOString(),
    actor_id: 'anonymous',
    actor_role: 'none',
    app_id: 'unknown',
    action: 'http.refused',
    resource_type: 'http',
    resource_id: '',
    scope: '',
    request_id: refusal.requestId,
    trace_id: '',
    outcome: 'deny',
    reason: refusal.code,
    policy_version: refusal.policyVersion,
    client_network: networkOf(refusal.ip),
  };
}

/** The caller's network, not its address: IPv4 /24, IPv6 /48 (enough to notice a new range). */
export function networkOf(ip: string | undefined): string {
  if (ip === undefined) return 'unknown';
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

const traceparent = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/**
 * The trace id of a W3C `traceparent` (Trace Context §3.2), or undefined when the header is invalid:
 * version ff, or an all-zero trace or parent id, is no trace at all.
 */
export function traceIdFromParent(header: unknown): string | undefined {
  const match = typeof header === 'string' ? traceparent.exec(header) : null;
  if (!match) return undefined;
  const [, version, traceId = '', parentId = ''] = match;
  if (version !== '00' || /^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  return traceId;
}

/** One trace id per request, so every event of a request names the same trace. */
const traceIds = new WeakMap<FastifyRequest, string>();

/** The caller's trace id when it sent a valid traceparent, else a new W3C trace id. */
function traceIdOf(request: FastifyRequest): string {
  let traceId = traceIds.get(request);
  if (traceId === undefined) {
    traceId = traceIdFromParent(request.headers.traceparent) ?? newTraceId();
    traceIds.set(request, traceId);
  }
  return traceId;
}

/**
 * Trace ids cut from one CSPRNG fill of 256: a fill per request (randomBytes) cost as much as building
 * the rest of the audit event.
 */
const traceIdPool = Buffer.alloc(16 * 256);
let traceIdAt = traceIdPool.length;

/** A new random W3C trace id (16 bytes, hex); all zeros, which means none, has odds of 2^-128. */
function newTraceId(): string {
  if (traceIdAt === traceIdPool.length) {
    randomFillSync(traceIdPool);
    traceIdAt = 0;
  }
  traceIdAt += 16;
  return traceIdPool.toString('hex', traceIdAt - 16, traceIdAt);
}
