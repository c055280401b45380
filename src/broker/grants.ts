import { normaliseEmail } from '../catalog/index.js';
import { GatehouseError, OAuthError, RateLimited } from '../errors/index.js';
import type { AccessTokenClaims } from './access-token.js';
import {
  approvedClient,
  audit,
  issueAccessToken,
  nowSeconds,
  paramsOf,
  randomToken,
  roleScopes,
  safeEqual,
  sha256,
  tokenRequestDpop,
  type BrokerContext,
  type ClientInfo,
  type RequestContext,
} from './context.js';
import { authenticateClient } from './client-assertion.js';
import { maxTokenLifetimeSeconds } from './keys.js';
import { recordRevocation } from './revocation.js';
import { rememberSubject } from './subjects.js';
import { grantScopes, parseScope, platformScopes } from './scopes.js';
import type { SubjectIdentity } from './subject-token.js';

export const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const idTokenType = 'urn:ietf:params:oauth:token-type:id_token';
export const accessTokenTokenType = 'urn:ietf:params:oauth:token-type:access_token';
export const capabilityType = 'crm_accounts';
const maxCapabilityIds = 100;
const accountId = /^[A-Za-z0-9_.:-]{1,64}$/;
/** RFC 7636 §4.1: 43–128 unreserved characters. */
const codeVerifier = /^[A-Za-z0-9\-._~]{43,128}$/;

/** The token endpoint's answer (RFC 6749 §5.1, RFC 8693 §2.2.1). */
export interface TokenResponse {
  access_token: string;
  issued_token_type?: typeof accessTokenTokenType;
  /** `DPoP` when the token is bound to a DPoP key. */
  token_type: 'Bearer' | 'DPoP';
  expires_in: number;
  scope: string;
  refresh_token?: string;
  authorization_details?: Array<{ type: string; account_ids: string[] }>;
}

export type Capability = { account_ids: string[] };

/** What a grant has learnt of its request so far: the audit event of its outcome says it. */
interface GrantTrail {
  grantType: string;
  clientId?: string;
  appId?: string;
  subject?: string;
  role?: string;
  scope?: string;
}

/**
 * One POST /oauth/token, any grant. Throws OAuthError. Every grant, issued or refused, appends a
 * `token.grant` audit event (client, app, subject, scopes, grant type, reason code, network; never a
 * token); a token whose issuance cannot be audited is not handed out (503 AUDIT_UNAVAILABLE).
 */
export async function tokenRequest(
  ctx: BrokerContext,
  params: Readonly<Record<string, unknown>>,
  request: RequestContext = {},
): Promise<TokenResponse> {
  const trail: GrantTrail = { grantType: 'unknown' };
  let answer: TokenResponse;
  try {
    const param = paramsOf(params);
    trail.clientId = param('client_id');
    const limited = await ctx.limitTokenRequests?.({
      client: trail.clientId ?? 'none',
      network: request.network ?? 'unknown',
    });
    if (limited && !limited.allowed) {
      throw new RateLimited(
        'RATE_LIMITED',
        `token endpoint per-${limited.limit ?? 'client'}`,
        limited.retryAfterSeconds ?? 1,
        limited.incident,
      );
    }
    const grantType = param('grant_type');
    if (grantType === undefined) throw new OAuthError('OAUTH_INVALID_REQUEST', 'grant_type is required');
    trail.grantType = grantType === tokenExchangeGrant ? 'token-exchange' : grantType;
    // No grant while revocations are unknown: a revoked user could otherwise sign in again.
    await ctx.revocations.ready();
    if (grantType === tokenExchangeGrant) answer = await exchange(ctx, param, request, trail);
    else if (grantType === 'authorization_code') answer = await redeemCode(ctx, param, request, trail);
    else if (grantType === 'refresh_token') answer = await refresh(ctx, param, request, trail);
    else throw new OAuthError('OAUTH_UNSUPPORTED_GRANT_TYPE', 'this grant type is not supported');
  } catch (error) {
    await audit(ctx, grantEvent(trail, request, 'deny', refusalReason(error)), false);
    throw error;
  }
  await audit(ctx, grantEvent(trail, request, 'allow', 'granted'), true);
  return answer;
}

/** The reason code of a refusal: the error's code, or INTERNAL; never its details. */
function refusalReason(error: unknown): string {
  if (error instanceof OAuthError) return `${error.code}: ${error.message}`;
  return error instanceof GatehouseError ? error.code : 'INTERNAL';
}

function grantEvent(
  trail: GrantTrail,
  request: RequestContext,
  outcome: 'allow' | 'deny',
  reason: string,
): Parameters<typeof audit>[1] {
  return {
    // Without a known user, the client (or, failing that, the caller's network) is who asked.
    actor: trail.subject ?? 'anonymous',
    role: trail.role ?? 'client',
    appId: trail.appId ?? trail.clientId?.slice(0, 64) ?? 'unknown',
    action: 'token.grant',
    resourceType: 'token',
    resourceId: `${trail.grantType.slice(0, 64)} client:${(trail.clientId ?? 'none').slice(0, 64)}`,
    scope: trail.scope,
    requestId: request.requestId,
    outcome,
    reason: reason.slice(0, 300),
    network: request.network,
  };
}

type Param = (name: string) => string | undefined;

async function exchange(
  ctx: BrokerContext,
  param: Param,
  request: RequestContext,
  trail: GrantTrail,
): Promise<TokenResponse> {
  const { config } = ctx;
  const client = await approvedClient(ctx, param('client_id'));
  trail.appId = client.appId;
  await authenticateClient(ctx, client, param);
  const subjectToken = param('subject_token');
  if (subjectToken === undefined || param('subject_token_type') !== idTokenType) {
    throw new OAuthError(
      'OAUTH_INVALID_REQUEST',
      `subject_token with subject_token_type ${idTokenType} is required`,
    );
  }
  if (param('actor_token') !== undefined || param('actor_token_type') !== undefined) {
    throw new OAuthError('OAUTH_INVALID_REQUEST', 'delegation (actor_token) is not supported');
  }
  const requestedType = param('requested_token_type');
  if (requestedType !== undefined && requestedType !== accessTokenTokenType) {
    throw new OAuthError('OAUTH_INVALID_REQUEST', `only ${accessTokenTokenType} can be issued`);
  }
  const audience = param('audience');
  if (param('resource') !== undefined || (audience !== undefined && audience !== config.broker.audience)) {
    throw new OAuthError(
      'OAUTH_INVALID_REQUEST',
      `access tokens are issued for ${config.broker.audience} only`,
    );
  }
  trail.scope = param('scope')?.slice(0, 500);
  const requested = parseScope(param('scope'));
  const platform = requested.filter((scope) => platformScopes.includes(scope));
  if (platform.length > 0) {
    throw new OAuthError(
      'OAUTH_INVALID_SCOPE',
      `${platform.join(' ')} is granted only through the console's sign-in (authorization code flow), never by token exchange`,
    );
  }
  const capability = parseCapability(param('authorization_details'));
  const jkt = await tokenRequestDpop(ctx, request, { required: client.requireDpop === true });

  // Bound to the app asking: the ID token must have been issued to this app's own client at the IdP.
  const identity = await ctx.idp.verifyIdToken(subjectToken, {
    audience: client.idpClientId ?? client.clientId,
  });
  trail.subject = identity.email ?? identity.sub;
  trail.role = identity.role;
  ctx.revocations.checkSubject(identity, client.appId);
  await rememberSubject(ctx.db, identity, nowSeconds(ctx));
  const granted = grantScopes(requested, client.scopes, roleScopes(ctx, identity.role));
  trail.scope = granted.join(' ');
  if (capability) await checkCapability(ctx, identity, capability);
  const { token, expiresIn } = await issueAccessToken(ctx, {
    ...identityClaims(identity),
    client_id: client.clientId,
    app_id: client.appId,
    scope: granted.join(' '),
    ...(jkt === undefined ? {} : { cnf: { jkt } }),
    ...(capability ? { cap: capability } : {}),
  });
  return {
    access_token: token,
    issued_token_type: accessTokenTokenType,
    token_type: jkt === undefined ? 'Bearer' : 'DPoP',
    expires_in: expiresIn,
    scope: granted.join(' '),
    ...(capability ? { authorization_details: [{ type: capabilityType, ...capability }] } : {}),
  };
}

/**
 * RFC 9396 `authorization_details` with one entry of type `crm_accounts`:
 * `[{"type":"crm_accounts","account_ids":["acc_1","acc_2"]}]` (1–100 ids).
 */
export function parseCapability(value: string | undefined): Capability | undefined {
  if (value === undefined) return undefined;
  const refuse = () =>
    new OAuthError(
      'OAUTH_INVALID_AUTHORIZATION_DETAILS',
      `authorization_details must be [{"type":"${capabilityType}","account_ids":[...]}] with 1 to ${maxCapabilityIds} ids`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw refuse();
  }
  if (!Array.isArray(parsed) || parsed.length !== 1) throw refuse();
  const [entry] = parsed as [Record<string, unknown>];
  if (typeof entry !== 'object' || entry === null || entry.type !== capabilityType) throw refuse();
  const keys = Object.keys(entry).filter((key) => key !== 'type' && key !== 'account_ids');
  const ids = entry.account_ids;
  if (
    keys.length > 0 ||
    !Array.isArray(ids) ||
    ids.length === 0 ||
    ids.length > maxCapabilityIds ||
    !ids.every((id) => typeof id === 'string' && accountId.test(id))
  ) {
    throw refuse();
  }
  return { account_ids: [...new Set(ids as string[])].sort() };
}

/** Whether the user may be given a capability over these accounts (the same check for every grant). */
export async function checkCapability(
  ctx: BrokerContext,
  identity: SubjectIdentity,
  cap: Capability,
): Promise<void> {
  if (ctx.checkAccounts && !(await ctx.checkAccounts(identity, cap.account_ids))) {
    throw new OAuthError(
      'OAUTH_INVALID_AUTHORIZATION_DETAILS',
      'the capability names accounts this user may not be given',
    );
  }
}

export function identityClaims(identity: SubjectIdentity) {
  return {
    sub: identity.sub,
    ...(identity.issuer === undefined ? {} : { idp: identity.issuer }),
    role: identity.role,
    ...(identity.email === undefined ? {} : { email: identity.email }),
    ...(identity.territory === undefined ? {} : { territory: identity.territory }),
  };
}

async function redeemCode(
  ctx: BrokerContext,
  param: Param,
  request: RequestContext,
  trail: GrantTrail,
): Promise<TokenResponse> {
  const client = await approvedClient(ctx, param('client_id'));
  trail.appId = client.appId;
  const code = param('code');
  const verifier = param('code_verifier');
  const redirectUri = param('redirect_uri');
  if (code === undefined || redirectUri === undefined) {
    throw new OAuthError('OAUTH_INVALID_REQUEST', 'code and redirect_uri are required');
  }
  if (verifier === undefined || !codeVerifier.test(verifier)) {
    throw new OAuthError('OAUTH_INVALID_REQUEST', 'a PKCE code_verifier of 43 to 128 characters is required');
  }
  const now = nowSeconds(ctx);
  const codeHash = sha256(code);
  const row = await ctx.db
    .selectFrom('broker_codes')
    .selectAll()
    .where('code_hash', '=', codeHash)
    .executeTakeFirst();
  const invalid = (reason: string) =>
    new OAuthError('OAUTH_INVALID_GRANT', 'the authorization code is not valid', {
      cause: new Error(reason),
    });
  if (!row) throw invalid('unknown code');
  // The user the code was issued to: a replay is theirs to answer for, not the app's.
  const identity = JSON.parse(row.identity) as SubjectIdentity;
  trail.subject = identity.email ?? identity.sub;
  trail.role = identity.role;
  trail.scope = row.scope;
  // Any attempt uses the code up, so a wrong verifier cannot be retried (no guessing).
  const claimed = await ctx.db
    .updateTable('broker_codes')
    .set({ used_at: now })
    .where('code_hash', '=', codeHash)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  if (Number(claimed.numUpdatedRows) !== 1) {
    // RFC 6749 §4.1.2: a replayed code revokes what was issued from it.
    await revokeFamily(ctx, row.family_id, 'authorization code replayed', request, {
      appId: client.appId,
      actor: trail.subject,
      role: identity.role,
    });
    throw invalid('code replayed');
  }
  if (row.client_id !== client.clientId) throw invalid('code of another client');
  if (Number(row.expires_at) <= now) throw invalid('code expired');
  if (row.redirect_uri !== redirectUri) throw invalid('redirect_uri differs');
  if (!safeEqual(sha256(verifier), row.code_challenge)) throw invalid('PKCE verifier does not match');

  const jkt = await tokenRequestDpop(ctx, request, { required: client.requireDpop === true });
  ctx.revocations.checkSubject(identity, client.appId);
  await rememberSubject(ctx.db, identity, nowSeconds(ctx));
  const scope = narrowToCurrent(ctx, client, identity, row.scope.split(' '));
  trail.scope = scope.join(' ');
  const cap = row.cap === null ? undefined : (JSON.parse(row.cap) as Capability);
  // Checked again at issuance: an account may have been reassigned since the user consented.
  if (cap) await checkCapability(ctx, identity, cap);
  const familyExpires = now + ctx.config.broker.refreshTokenAbsoluteSeconds;
  return issueWithRefresh(ctx, client, identity, {
    scope,
    familyId: row.family_id,
    familyExpires,
    jkt,
    cap,
  });
}

/** The scopes of a stored grant that the app and the user's role still allow today. */
function narrowToCurrent(
  ctx: BrokerContext,
  client: ClientInfo,
  identity: SubjectIdentity,
  scopes: readonly string[],
): string[] {
  const allowed = roleScopes(ctx, identity.role);
  const kept = scopes.filter((scope) => client.scopes.includes(scope) && allowed.includes(scope));
  if (kept.length === 0)
    throw new OAuthError('OAUTH_INVALID_GRANT', 'nothing of this grant is allowed any more');
  return kept;
}

async function issueWithRefresh(
  ctx: BrokerContext,
  client: ClientInfo,
  identity: SubjectIdentity,
  grant: { scope: string[]; familyId: string; familyExpires: number; jkt?: string; cap?: Capability },
): Promise<TokenResponse> {
  const now = nowSeconds(ctx);
  const refreshToken = `ghr_${randomToken()}`;
  await ctx.db
    .insertInto('broker_refresh_tokens')
    .values({
      token_hash: sha256(refreshToken),
      family_id: grant.familyId,
      client_id: client.clientId,
      app_id: client.appId,
      sub: identity.sub,
      email: identity.email === undefined ? null : normaliseEmail(identity.email),
      identity: JSON.stringify({
        ...identityClaims(identity),
        ...(identity.authTime === undefined ? {} : { authTime: identity.authTime }),
      }),
      scope: grant.scope.join(' '),
      cap: grant.cap ? JSON.stringify(grant.cap) : null,
      jkt: grant.jkt ?? null,
      created_at: now,
      expires_at: Math.min(now + ctx.config.broker.refreshTokenIdleSeconds, grant.familyExpires),
      family_expires_at: grant.familyExpires,
      used_at: null,
      revoked_at: null,
    })
    .execute();
  const { token, expiresIn } = await issueAccessToken(ctx, {
    ...identityClaims(identity),
    client_id: client.clientId,
    app_id: client.appId,
    scope: grant.scope.join(' '),
    sid: grant.familyId,
    ...(grant.jkt === undefined ? {} : { cnf: { jkt: grant.jkt } }),
    ...(grant.cap ? { cap: grant.cap } : {}),
  });
  return {
    access_token: token,
    token_type: grant.jkt === undefined ? 'Bearer' : 'DPoP',
    expires_in: expiresIn,
    scope: grant.scope.join(' '),
    refresh_token: refreshToken,
    ...(grant.cap ? { authorization_details: [{ type: capabilityType, ...grant.cap }] } : {}),
  };
}

async function refresh(
  ctx: BrokerContext,
  param: Param,
  request: RequestContext,
  trail: GrantTrail,
): Promise<TokenResponse> {
  const client = await approvedClient(ctx, param('client_id'));
  trail.appId = client.appId;
  const refreshToken = param('refresh_token');
  if (refreshToken === undefined) throw new OAuthError('OAUTH_INVALID_REQUEST', 'refresh_token is required');
  const invalid = (reason: string) =>
    new OAuthError('OAUTH_INVALID_GRANT', 'the refresh token is not valid', { cause: new Error(reason) });
  const now = nowSeconds(ctx);
  const tokenHash = sha256(refreshToken);
  const row = await ctx.db
    .selectFrom('broker_refresh_tokens')
    .selectAll()
    .where('token_hash', '=', tokenHash)
    .executeTakeFirst();
  if (!row || row.client_id !== client.clientId) throw invalid('unknown refresh token');
  const identity = JSON.parse(row.identity) as SubjectIdentity;
  trail.subject = identity.email ?? identity.sub;
  trail.role = identity.role;
  trail.scope = row.scope;
  if (row.revoked_at !== null) throw invalid('revoked');
  if (Number(row.expires_at) <= now || Number(row.family_expires_at) <= now) throw invalid('expired');
  // Proof of possession before the token is used up: a thief without the key cannot burn it.
  const jkt = await tokenRequestDpop(ctx, request, {
    required: client.requireDpop === true,
    jkt: row.jkt ?? undefined,
  });
  const reused = () =>
    revokeFamily(ctx, row.family_id, 'refresh token reused', request, {
      appId: row.app_id,
      actor: identity.email ?? identity.sub,
      role: identity.role,
    });
  if (row.used_at !== null) {
    // Someone used this token before: either the client or a thief holds a copy. Revoke the sign-in.
    await reused();
    throw invalid('refresh token reused');
  }
  // Everything that can refuse a request refuses it before the token is used up: a refused refresh
  // (a wider scope, say) must not burn the token and make the next honest refresh look like theft.
  ctx.revocations.checkSubject(identity, client.appId);
  await rememberSubject(ctx.db, identity, nowSeconds(ctx));
  let scope = narrowToCurrent(ctx, client, identity, row.scope.split(' '));
  const asked = param('scope');
  if (asked !== undefined) {
    const requested = parseScope(asked);
    if (!requested.every((s) => scope.includes(s))) {
      throw new OAuthError('OAUTH_INVALID_SCOPE', 'a refresh can only narrow the granted scopes');
    }
    scope = requested;
  }
  trail.scope = scope.join(' ');
  // RFC 9396 §6: a refresh may narrow the grant to named accounts (within any capability it has).
  let cap = row.cap === null ? undefined : (JSON.parse(row.cap) as Capability);
  const narrowed = parseCapability(param('authorization_details'));
  if (narrowed) {
    const held = cap?.account_ids;
    if (held && !narrowed.account_ids.every((id) => held.includes(id))) {
      throw new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', 'a refresh can only narrow the capability');
    }
    await checkCapability(ctx, identity, narrowed);
    cap = narrowed;
  }
  const claimed = await ctx.db
    .updateTable('broker_refresh_tokens')
    .set({ used_at: now })
    .where('token_hash', '=', tokenHash)
    .where('used_at', 'is', null)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (Number(claimed.numUpdatedRows) !== 1) {
    // Used up by a request racing this one: the same reuse, caught at the last moment.
    await reused();
    throw invalid('refresh token reused');
  }
  return issueWithRefresh(ctx, client, identity, {
    scope,
    familyId: row.family_id,
    familyExpires: Number(row.family_expires_at),
    jkt: row.jkt ?? jkt,
    cap,
  });
}

/** Revokes a sign-in: its refresh tokens, and (via `sid`) its access tokens on every node. */
export async function revokeFamily(
  ctx: BrokerContext,
  familyId: string,
  reason: string,
  request: RequestContext,
  who: { appId: string; actor: string; role: string },
): Promise<void> {
  const now = nowSeconds(ctx);
  await ctx.db
    .updateTable('broker_refresh_tokens')
    .set({ revoked_at: now })
    .where('family_id', '=', familyId)
    .where('revoked_at', 'is', null)
    .execute();
  await recordRevocation(ctx.db, {
    kind: 'family',
    value: familyId,
    expiresAt: now + Math.max(ctx.config.broker.refreshTokenAbsoluteSeconds, 0) + maxTokenLifetimeSeconds,
    reason,
    now,
  });
  await ctx.revocations.sync();
  await audit(
    ctx,
    {
      actor: who.actor,
      role: who.role,
      appId: who.appId,
      action: 'token.family_revoked',
      resourceType: 'token_family',
      resourceId: familyId,
      requestId: request.requestId,
      outcome: 'deny',
      reason,
      network: request.network,
    },
    false,
  );
}

/** Claims of a token, for introspection (RFC 7662 §2.2). */
export function introspectionOf(claims: AccessTokenClaims): Record<string, unknown> {
  return { active: true, token_type: 'access_token', ...claims };
}
