import type { FastifyRequest } from 'fastify';
import type { AuditEvent, AuditLog } from '../audit/index.js';
import { AccessDenied, DependencyUnavailable, GatehouseError } from '../errors/index.js';
import type { Principal } from '../policy/index.js';
import { bearerToken, identify, type TokenClaims } from './stages.js';

export interface PipelineDeps {
  audit: AuditLog;
  verifyAccessToken(token: string): Promise<TokenClaims>;
  /** Called once per request with its outcome, for metrics. */
  onDecision?(request: FastifyRequest, outcome: AuditEvent['outcome'], appId: string): void;
}

/** What one request did, filled in by the stages as they run and recorded whatever the outcome. */
export interface Trail {
  principal?: Principal;
  action: string;
  resourceType: string;
  resourceId: string;
  scopes: readonly string[];
  reason: string;
}

/**
 * Runs the stages of one request and records its audit event before anything is sent, allowed or
 * denied. If the event cannot be made durable the caller gets 503 and no data (fail closed).
 */
export async function governed(
  deps: PipelineDeps,
  request: FastifyRequest,
  action: string,
  run: (trail: Trail) => Promise<unknown>,
): Promise<unknown> {
  const trail: Trail = { action, resourceType: '', resourceId: '', scopes: [], reason: '' };
  let body: unknown;
  let failure: unknown;
  try {
    body = await run(trail);
  } catch (error) {
    failure = error;
  }
  const outcome = outcomeOf(failure);
  const reason = failure instanceof GatehouseError ? failure.code : failure ? 'INTERNAL' : trail.reason;
  const event = auditEvent(request, trail, outcome, reason);
  try {
    await deps.audit.append(event);
  } catch (cause) {
    request.log.error({ err: cause, request_id: request.id }, 'audit append failed; request refused');
    throw new DependencyUnavailable('AUDIT_UNAVAILABLE', 'the audit trail cannot record this request, so it was refused; retry shortly', { cause });
  }
  deps.onDecision?.(request, outcome, event.app_id);
  if (failure) throw failure;
  return body;
}

export async function authenticate(deps: PipelineDeps, request: FastifyRequest, trail: Trail): Promise<Principal> {
  const claims = await deps.verifyAccessToken(bearerToken(request.headers.authorization));
  trail.principal = identify(claims);
  return trail.principal;
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

function auditEvent(request: FastifyRequest, trail: Trail, outcome: AuditEvent['outcome'], reason: string): AuditEvent {
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
  };
}

/** The W3C traceparent's trace id when the caller sent a valid one, else the request id. */
function traceIdOf(request: FastifyRequest): string {
  const header = request.headers.traceparent;
  const match = typeof header === 'string' ? /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(header) : null;
  return match?.[1] ?? request.id;
}
