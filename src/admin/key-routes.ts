import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AccessDenied, InputError } from '../errors/index.js';
import {
  authenticate,
  governed,
  recordRefusalsBeforeHandler,
  type PipelineDeps,
  type Trail,
} from '../gateway/index.js';

/** What the key routes need from the broker (its Broker fits it). */
export interface SigningKeysPort {
  listKeys(): unknown[];
  revokeKey(
    kid: string,
    how: { reason: string; actor: string; requestId?: string },
  ): Promise<{ kid: string; signing_kid: string }>;
}

export interface KeyRouteDeps extends PipelineDeps {
  keys: SigningKeysPort;
}

/** An RFC 7638 thumbprint (base64url SHA-256). */
const kidPattern = /^[A-Za-z0-9_-]{43}$/;

/**
 * The broker's signing keys (CONTRACT.md "Admin"), `admin` scope only, every call audited:
 *   GET  /admin/v1/keys                  { records: [{ kid, state, created_at, sign_at, retire_at }] }
 *   POST /admin/v1/keys/:kid/revoke      { reason }  cuts the key off on every node; answers the new signer
 */
export function registerKeyRoutes(app: FastifyInstance, deps: KeyRouteDeps): void {
  const admin = async (request: FastifyRequest, trail: Trail) => {
    trail.resourceType = 'signing_key';
    const principal = await authenticate(deps, request, trail);
    if (!principal.scopes.includes('admin')) {
      throw new AccessDenied('SCOPE_MISSING', 'this call needs the admin scope', { scope: 'admin' });
    }
    trail.scopes = ['admin'];
    return principal;
  };

  void app.register(async (scope) => {
    recordRefusalsBeforeHandler(scope, deps, () => ({ action: 'admin.keys', resourceType: 'signing_key' }));

    scope.get('/admin/v1/keys', (request, reply) =>
      governed(deps, request, reply, 'admin.keys.list', async (trail) => {
        await admin(request, trail);
        const records = deps.keys.listKeys();
        trail.reason = `${records.length} keys listed`;
        return { records, next_cursor: null };
      }),
    );

    scope.post<{ Params: { kid: string } }>('/admin/v1/keys/:kid/revoke', (request, reply) =>
      governed(deps, request, reply, 'admin.keys.revoke', async (trail) => {
        const principal = await admin(request, trail);
        const { kid } = request.params;
        if (!kidPattern.test(kid)) throw new InputError('kid is not a key id', { parameter: 'kid' });
        trail.resourceId = kid;
        const body = request.body as { reason?: unknown } | undefined;
        const reason = typeof body?.reason === 'string' ? body.reason.trim() : '';
        if (reason === '' || reason.length > 500) {
          throw new InputError('say why the key is revoked: reason, 1 to 500 characters', {
            parameter: 'reason',
          });
        }
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
