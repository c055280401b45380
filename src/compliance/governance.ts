import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** The verified caller of a compliance route: the app and user its access token names. */
export interface Caller {
  readonly appId: string;
  readonly userId: string;
  readonly email: string;
  readonly scopes: readonly string[];
}

/** What a call records in its audit event besides who, when and the outcome: never contents. */
export interface CallRecord {
  resourceId: string;
  reason: string;
  recordCount?: number;
}

/**
 * How the compliance routes are governed, wired by the composition root from the gateway's pipeline
 * (so this module does not depend on the gateway): token, limits, scope, and one audit event per call
 * appended before the answer, allowed or refused; 503 when it cannot be recorded. A call that changes
 * stored data awaits `beforeChange` first: its intent is made durable, or nothing is changed (503).
 */
export interface Governance {
  call<T>(
    request: FastifyRequest,
    reply: FastifyReply,
    what: { action: string; resourceType: string; scopes: readonly string[] },
    work: (caller: Caller, record: CallRecord, beforeChange: () => Promise<void>) => Promise<T>,
  ): Promise<T>;
  /** Audits what Fastify refuses before a handler runs (body too large, not JSON) in `scope`. */
  recordRefusals(scope: FastifyInstance, action: string, resourceType: string): void;
}
