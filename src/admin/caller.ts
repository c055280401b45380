import type { FastifyRequest } from 'fastify';
import { AccessDenied } from '../errors/index.js';
import { authenticate, type PipelineDeps, type Trail } from '../gateway/index.js';
import type { Principal } from '../policy/index.js';

/**
 * The authenticated caller of an admin route, who must hold one of `anyOf`: the trail names the
 * resource type before authentication (so a refused token is recorded against it) and the scopes the
 * caller holds among `anyOf`; holding none is 403 SCOPE_MISSING naming them all.
 */
export async function callerWithScope(
  deps: PipelineDeps,
  request: FastifyRequest,
  trail: Trail,
  resourceType: string,
  ...anyOf: readonly string[]
): Promise<Principal> {
  trail.resourceType = resourceType;
  const principal = await authenticate(deps, request, trail);
  const held = anyOf.filter((scope) => principal.scopes.includes(scope));
  if (held.length === 0) {
    throw new AccessDenied('SCOPE_MISSING', `this call needs the ${anyOf.join(' or ')} scope`, {
      scope: anyOf.join(' '),
    });
  }
  trail.scopes = held;
  return principal;
}
