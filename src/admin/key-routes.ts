import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { governed, recordRefusalsBeforeHandler, type PipelineDeps, type Trail } from '../gateway/index.js';
import { callerWithScope } from './caller.js';
import { Closed, Open, Page, Reason, rejectInvalid, type AdminTypeProvider } from './shapes.js';

/** What the key routes need from the broker (its Broker fits it). */
export interface SigningKeysPort {
  listKeys(): unknown[];
  /** Publishes a new key now; it signs after the publish lead (`broker.keyPublishLeadSeconds`). */
  rotateKeys(): Promise<string>;
  revokeKey(
    kid: string,
    how: { reason: string; actor: string; requestId?: string },
  ): Promise<{ kid: string; signing_kid: string }>;
}

export interface KeyRouteDeps extends PipelineDeps {
  keys: SigningKeysPort;
}

const kidParams = Closed({
  // An RFC 7638 thumbprint (base64url SHA-256).
  kid: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: 'kid is not a key id' }),
});
const revokeReason = 'say why the key is revoked: reason, 1 to 500 characters';
const revokeBody = Open({ reason: Reason(revokeReason) }, { description: revokeReason });
const rotateReason = 'say why the key is rotated now: reason, 1 to 500 characters';
const rotateBody = Open({ reason: Reason(rotateReason) }, { description: rotateReason });
const keyRecord = Open({ kid: Type.String(), state: Type.String() });

/**
 * The broker's signing keys (CONTRACT.md "Admin"), `admin` scope only, every call audited:
 *   GET  /admin/v1/keys                  { records: [{ kid, state, created_at, sign_at, retire_at }] }
 *   POST /admin/v1/keys/rotate           { reason }  publishes a new key now, ahead of the schedule
 *   POST /admin/v1/keys/:kid/revoke      { reason }  cuts the key off on every node; answers the new signer
 */
export function registerKeyRoutes(app: FastifyInstance, deps: KeyRouteDeps): void {
  const admin = (request: FastifyRequest, trail: Trail) =>
    callerWithScope(deps, request, trail, 'signing_key', 'admin');

  void app.register(async (plain) => {
    const scope = plain.withTypeProvider<AdminTypeProvider>();
    recordRefusalsBeforeHandler(scope, deps, () => ({ action: 'admin.keys', resourceType: 'signing_key' }));

    const listShape = { tags: ['keys'], response: { 200: Page(keyRecord) } };
    scope.get('/admin/v1/keys', { schema: listShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.keys.list', async (trail) => {
        await admin(request, trail);
        const records = deps.keys.listKeys();
        trail.reason = `${records.length} keys listed`;
        return { records, next_cursor: null };
      }),
    );

    // An early rotation (a staff change, a suspicion short of a leak): the old key keeps verifying
    // its tokens until they expire, unlike a revocation.
    const rotateShape = {
      tags: ['keys'],
      body: rotateBody,
      response: { 200: Open({ kid: Type.String() }) },
    };
    scope.post('/admin/v1/keys/rotate', { schema: rotateShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.keys.rotate', async (trail) => {
        await admin(request, trail);
        rejectInvalid(request);
        const kid = await deps.keys.rotateKeys();
        trail.resourceId = kid;
        trail.reason = `key rotated: ${request.body.reason.trim()}`;
        return { kid };
      }),
    );

    const revokeShape = {
      tags: ['keys'],
      params: kidParams,
      body: revokeBody,
      response: { 200: Open({ kid: Type.String(), signing_kid: Type.String() }) },
    };
    scope.post('/admin/v1/keys/:kid/revoke', { schema: revokeShape }, (request, reply) =>
      governed(deps, request, reply, 'admin.keys.revoke', async (trail) => {
        const principal = await admin(request, trail);
        rejectInvalid(request);
        const { kid } = request.params;
        trail.resourceId = kid;
        const reason = request.body.reason.trim();
        const result = await deps.keys.revokeKey(kid, {
          reason,
          actor: principal.email,
          requestId: request.id,
        });
        trail.reason = `key revoked: ${reason}`;
        return result;
      }),
    );
  });
}
