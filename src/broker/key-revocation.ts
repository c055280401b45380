import type { SecretStore } from '../secrets/index.js';
import type { Db } from '../store/index.js';
import { maxTokenLifetimeSeconds, openKeyRing } from './keys.js';
import { databaseSeconds, recordRevocation, type AuditSink } from './revocation.js';
import { brokerDb, type BrokerDb } from './tables.js';

export interface RevokeKeyResult {
  readonly kid: string;
  /** The key that signs from now on (a new one when the revoked key was signing). */
  readonly signing_kid: string;
}

/**
 * Cuts off a signing key that may have leaked, without a running server (the CLI) or from the admin
 * API: it leaves the schedule (no longer signs, verifies or shows in JWKS), and a `kid` revocation
 * tells every node, whose cached verifications of its tokens stop within the revocation bound. A new
 * key signs at once when the revoked one was signing. Audited as `key.revoke`; an audit that fails
 * after the key is cut off leaves it cut off and throws.
 */
export async function revokeSigningKey(options: {
  db: Db | BrokerDb;
  secrets: SecretStore;
  kid: string;
  reason: string;
  actor: string;
  audit?: AuditSink;
  requestId?: string;
}): Promise<RevokeKeyResult> {
  const { kid, reason } = options;
  if (typeof reason !== 'string' || reason.trim() === '')
    throw new TypeError('revokeSigningKey needs a reason');
  const db = brokerDb(options.db);
  const now = await databaseSeconds(db);
  const ring = await openKeyRing({ db, secrets: options.secrets, publishLeadSeconds: 0, rotationDays: 0 });
  const signingKid = await ring.revoke(kid, now);
  await recordRevocation(db, {
    kind: 'kid',
    value: kid,
    expiresAt: now + maxTokenLifetimeSeconds,
    reason,
    now,
  });
  await options.audit?.append({
    timestamp: new Date(now * 1000).toISOString(),
    actor_id: options.actor,
    actor_role: 'admin',
    app_id: '',
    action: 'key.revoke',
    resource_type: 'signing_key',
    resource_id: kid.slice(0, 64),
    scope: '',
    request_id: options.requestId ?? `key-revoke-${now}`,
    trace_id: '',
    outcome: 'allow',
    reason: `${reason.slice(0, 400)}; now signing: ${signingKid}`,
  });
  return { kid, signing_kid: signingKid };
}
