import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/index.js';
import { AccessDenied, DependencyUnavailable, OAuthError } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';
import { signAccessToken, type AccessTokenClaims, type AccessTokenInput } from './access-token.js';
import type { DpopVerifier } from './dpop.js';
import { DpopProofError } from './dpop.js';
import type { KeyRing } from './keys.js';
import type { AuditSink } from './revocation.js';
import { RevocationList } from './revocation.js';
import type { IdpConnection, SubjectIdentity } from './subject-token.js';
import type { BrokerDb } from './tables.js';

/** A microapp's OAuth client as the catalog knows it. */
export interface ClientInfo {
  appId: string;
  clientId: string;
  name: string;
  /** The manifest's owner and purpose, shown on the consent screen. */
  owner?: string;
  purpose?: string;
  /** Only `approved` clients get tokens. */
  status: string;
  /** Scopes approved for the app. */
  scopes: readonly string[];
  /** The manifest's `redirect_uris`: the authorization code flow matches them exactly. */
  redirectUris?: readonly string[];
  /** The manifest's `require_dpop`: tokens of this app must be DPoP-bound. */
  requireDpop?: boolean;
  /**
   * The app's own client at the IdP (manifest `idp_client_id`, else its client id): a subject ID token
   * is exchanged only when it was issued to this client (its `aud`, and `azp` when present).
   */
  idpClientId?: string;
  /** The manifest's `client_jwks`: a confidential app authenticates with private_key_jwt against them. */
  jwks?: { readonly keys: readonly Record<string, unknown>[] };
}

export type LookupClient = (clientId: string) => Promise<ClientInfo | undefined>;

/** Rate limit of the token endpoint per client and per caller network (src/limits createEndpointLimiter). */
export type LimitTokenRequests = (key: {
  client: string;
  network: string;
}) => Promise<{ allowed: boolean; limit?: string; retryAfterSeconds?: number; incident?: string }>;

/**
 * Decides whether a user may be given a capability over these accounts (e.g. they are in the user's
 * territory, or assigned to them). Without one, a capability only narrows: the gateway still applies
 * every other filter, so a capability can never widen access.
 */
export type CheckAccounts = (identity: SubjectIdentity, accountIds: readonly string[]) => Promise<boolean>;

/** What the HTTP layer knows about a token request, for DPoP (RFC 9449 §5). */
export interface RequestContext {
  /** The `DPoP` header, when sent. */
  dpop?: string;
  /** The request id, for audit events. */
  requestId?: string;
  /** The caller's network (IPv4 /24, IPv6 /48), for audit events and rate limits. */
  network?: string;
}

/** Everything the parts of the broker share. */
export interface BrokerContext {
  readonly config: Config;
  readonly secrets: SecretStore;
  readonly db: BrokerDb;
  readonly issuer: string;
  readonly audience: string;
  readonly keys: KeyRing;
  readonly idp: IdpConnection;
  readonly dpop: DpopVerifier;
  readonly revocations: RevocationList;
  readonly audit?: AuditSink;
  readonly lookupClient: LookupClient;
  readonly checkAccounts?: CheckAccounts;
  readonly limitTokenRequests?: LimitTokenRequests;
  readonly now: () => Date;
}

export const nowSeconds = (ctx: Pick<BrokerContext, 'now'>) => Math.floor(ctx.now().getTime() / 1000);
export const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');
export const randomToken = (bytes = 32) => randomBytes(bytes).toString('base64url');

export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** The parameters of a request as strings; a repeated parameter is invalid_request (RFC 6749 §3.1). */
export function paramsOf(params: Readonly<Record<string, unknown>>) {
  return (name: string): string | undefined => {
    const value = Object.hasOwn(params, name) ? params[name] : undefined;
    if (value === undefined || typeof value === 'string') return value === '' ? undefined : value;
    throw new OAuthError('OAUTH_INVALID_REQUEST', `parameter ${name} must appear once`);
  };
}

export async function approvedClient(ctx: BrokerContext, clientId: string | undefined): Promise<ClientInfo> {
  const client = clientId === undefined ? undefined : await ctx.lookupClient(clientId);
  if (!client || client.status !== 'approved') {
    throw new OAuthError('OAUTH_INVALID_CLIENT', 'unknown client, or the app is not approved');
  }
  return client;
}

export function roleScopes(ctx: BrokerContext, role: string): readonly string[] {
  return (Object.hasOwn(ctx.config.roles, role) ? ctx.config.roles[role]?.scopes : undefined) ?? [];
}

/** The role's duties beyond its scopes: what it may be elevated to, and whose elevations it reviews. */
export function roleDuties(
  ctx: BrokerContext,
  role: string,
): { elevate: readonly string[]; reviews: readonly string[] } {
  const config = Object.hasOwn(ctx.config.roles, role) ? ctx.config.roles[role] : undefined;
  return { elevate: config?.elevate ?? [], reviews: config?.reviews ?? [] };
}

/**
 * The DPoP key a token request proves possession of (RFC 9449 §5), or undefined without a proof;
 * a bad proof, or none when the app or the grant requires one, is invalid_dpop_proof.
 */
export async function tokenRequestDpop(
  ctx: BrokerContext,
  request: RequestContext,
  options: { required: boolean; jkt?: string },
): Promise<string | undefined> {
  if (request.dpop === undefined) {
    if (options.required || options.jkt !== undefined) {
      throw new OAuthError('OAUTH_INVALID_DPOP_PROOF', 'this app requires a DPoP proof');
    }
    return undefined;
  }
  try {
    return await ctx.dpop.verify({
      proof: request.dpop,
      method: 'POST',
      url: `${ctx.issuer}/oauth/token`,
      jkt: options.jkt,
    });
  } catch (cause) {
    if (!(cause instanceof DpopProofError)) throw cause;
    throw new OAuthError('OAUTH_INVALID_DPOP_PROOF', 'the DPoP proof is not valid', { cause });
  }
}

export async function issueAccessToken(
  ctx: BrokerContext,
  input: AccessTokenInput,
  ttlSeconds = ctx.config.broker.accessTokenTtlSeconds,
): Promise<{ token: string; claims: AccessTokenClaims; expiresIn: number }> {
  const now = ctx.now();
  const at = Math.floor(now.getTime() / 1000);
  let key = ctx.keys.signingKey(at);
  if (ctx.revocations.keyRevoked(key.kid)) {
    // Another node revoked this key: its replacement is in the schedule already.
    await ctx.keys.reload();
    key = ctx.keys.signingKey(at);
    if (ctx.revocations.keyRevoked(key.kid)) {
      throw new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', 'no unrevoked signing key is available yet');
    }
  }
  const { token, claims } = await signAccessToken(
    key,
    { issuer: ctx.issuer, audience: ctx.audience, ttlSeconds, now },
    { ...input, rev: ctx.revocations.epoch },
  );
  return { token, claims, expiresIn: ttlSeconds };
}

/** Appends an audit event; `required` events refuse the operation when they cannot be recorded. */
export async function audit(
  ctx: BrokerContext,
  event: {
    actor: string;
    role: string;
    appId: string;
    action: string;
    resourceType: string;
    resourceId: string;
    scope?: string;
    requestId?: string;
    outcome: 'allow' | 'deny' | 'error';
    reason: string;
    network?: string;
  },
  required: boolean,
): Promise<void> {
  if (!ctx.audit) {
    if (required) throw new DependencyUnavailable('AUDIT_UNAVAILABLE', 'the audit trail is not available');
    return;
  }
  try {
    await ctx.audit.append({
      timestamp: ctx.now().toISOString(),
      actor_id: event.actor,
      actor_role: event.role,
      app_id: event.appId,
      action: event.action,
      resource_type: event.resourceType,
      resource_id: event.resourceId,
      scope: event.scope ?? '',
      request_id: event.requestId ?? randomToken(12),
      trace_id: '',
      outcome: event.outcome,
      reason: event.reason,
      ...(event.network === undefined ? {} : { client_network: event.network }),
    });
  } catch (cause) {
    if (required) {
      throw new DependencyUnavailable('AUDIT_UNAVAILABLE', 'the audit trail cannot record this', { cause });
    }
  }
}

export function requireScope(claims: AccessTokenClaims, ...anyOf: string[]): void {
  const held = claims.scope.split(' ');
  if (!anyOf.some((scope) => held.includes(scope))) {
    throw new AccessDenied('SCOPE_MISSING', `this call needs the ${anyOf.join(' or ')} scope`, {
      scope: anyOf.join(' '),
    });
  }
}
