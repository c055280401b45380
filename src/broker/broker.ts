import type { JWK } from 'jose';
import type { App } from '../catalog/index.js';
import type { Config } from '../config/index.js';
import { OAuthError, TokenError } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';
import type { Db } from '../store/index.js';
import { createAccessTokenVerifier, type AccessTokenClaims } from './access-token.js';
import { authorize, callback, consent, type BrowserAnswer } from './authorize.js';
import { assertionAlgorithms } from './client-assertion.js';
import {
  approvedClient,
  audit,
  nowSeconds,
  paramsOf,
  requireScope,
  sha256,
  type BrokerContext,
  type CheckAccounts,
  type ClientInfo,
  type LimitTokenRequests,
  type LookupClient,
  type RequestContext,
} from './context.js';
import { dpopAlgorithms, DpopProofError, DpopVerifier, type ReplayStore } from './dpop.js';
import { createElevations, type Elevations } from './elevation.js';
import {
  accessTokenTokenType,
  capabilityType,
  idTokenType,
  revokeFamily,
  tokenExchangeGrant,
  tokenRequest,
  type TokenResponse,
} from './grants.js';
import { revokeSigningKey, type RevokeKeyResult } from './key-revocation.js';
import { openKeyRing, type KeyState } from './keys.js';
import {
  recordRevocation,
  revokeAll,
  RevocationList,
  type AuditSink,
  type RevocationFanout,
  type RevocationStatus,
  type RevokeAllOptions,
  type RevokeAllResult,
} from './revocation.js';
import { connectIdp, idTokenAlgorithms } from './subject-token.js';
import { brokerDb } from './tables.js';

export { accessTokenTokenType, idTokenType, tokenExchangeGrant, type TokenResponse };
export type { ClientInfo, LookupClient, CheckAccounts, RequestContext, BrowserAnswer, LimitTokenRequests };

export interface CreateBrokerOptions {
  config: Config;
  secrets: SecretStore;
  /** The store: grants, refresh tokens, revocations, elevations and the key schedule live there. */
  db: Db;
  /** This node's public URL: the `iss` of its access tokens and the base of its endpoints. */
  issuer: string;
  lookupClient: LookupClient;
  /** Where refresh-token reuse, revocations and every elevation step are recorded. */
  audit?: AuditSink;
  /** Checks capability requests against what the user may see; without it a capability only narrows. */
  checkAccounts?: CheckAccounts;
  /** The clock; tests freeze it. */
  now?: () => Date;
  /** Largest number of verified access tokens kept in memory (10 000 by default). */
  verifiedTokenCacheSize?: number;
  /** Tells every node of a revocation at once (Redis pub/sub); without it nodes learn by polling. */
  revocationFanout?: RevocationFanout;
  /** Where DPoP proof jtis are remembered; per node unless given (Redis, shared by every node). */
  dpopReplay?: ReplayStore;
  /** Rate limit of POST /oauth/token per client and per network; unlimited without it. */
  limitTokenRequests?: LimitTokenRequests;
}

/** What the gateway passes to verifyDpop for one request. */
export interface DpopRequest {
  /** The verified claims of the presented access token. */
  claims: AccessTokenClaims;
  /** The `DPoP` request header, if any. */
  dpopHeader: string | string[] | undefined;
  method: string;
  /** The request URL: absolute, or a path (resolved against the broker's public URL). */
  url: string;
  /** The access token exactly as presented (for `ath`). */
  accessToken: string;
}

export interface Broker {
  readonly issuer: string;
  /** RFC 8414 authorization server metadata. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** The public signing keys: every key that signs now, will sign soon, or signed unexpired tokens. */
  readonly jwks: { readonly keys: readonly Readonly<JWK>[] };
  /** POST /oauth/token, any supported grant, from the request's parameters; throws OAuthError. */
  exchangeToken(params: Readonly<Record<string, unknown>>, request?: RequestContext): Promise<TokenResponse>;
  /**
   * For the gateway: signature, claims, then revocation (jti, sign-in, app, user) on every call, cached
   * or not. Throws TokenError TOKEN_INVALID, TOKEN_EXPIRED or TOKEN_REVOKED, or DEPENDENCY_UNAVAILABLE
   * (503) when revocations could not be read recently.
   */
  verifyAccessToken(token: string): Promise<AccessTokenClaims>;
  /**
   * For the gateway, after verifyAccessToken: the DPoP proof of a bound token (cnf.jkt), or the
   * refusal of an unbound token of an app that requires DPoP. Throws TokenError TOKEN_DPOP_INVALID.
   */
  verifyDpop(request: DpopRequest): Promise<void>;
  /** Drops a verified token from the cache by `jti`. */
  forget(jti: string): void;
  /** GET /oauth/authorize, GET /oauth/callback, POST /oauth/consent. */
  authorize(query: Readonly<Record<string, unknown>>): Promise<BrowserAnswer>;
  callback(query: Readonly<Record<string, unknown>>, browser: string | undefined): Promise<BrowserAnswer>;
  consent(form: Readonly<Record<string, unknown>>, browser: string | undefined): Promise<BrowserAnswer>;
  /**
   * RFC 7009. `caller` (an admin's verified token) may revoke any token; a client only its own. A
   * revocation, and a refusal to revoke another client's token, is audited.
   */
  revoke(
    params: Readonly<Record<string, unknown>>,
    caller?: AccessTokenClaims,
    request?: RequestContext,
  ): Promise<void>;
  /** RFC 7662; the caller's token must carry `admin` or `audit:read`. */
  introspect(
    params: Readonly<Record<string, unknown>>,
    caller: AccessTokenClaims,
  ): Promise<Record<string, unknown>>;
  /** Every token of an app, a user, or one user in one app; holds on every node within a second. */
  revokeAll(options: RevokeAllOptions): Promise<RevokeAllResult>;
  readonly elevations: Elevations;
  /** For /readyz: whether this node's revocation list is known and fresh. */
  revocationStatus(): RevocationStatus;
  /** Publishes a new signing key now; it signs after `broker.keyPublishLeadSeconds`. Answers its kid. */
  rotateKeys(): Promise<string>;
  /** The key schedule (admin API). */
  listKeys(): KeyState[];
  /** Cuts off a signing key at once, on every node within the revocation bound; audited. */
  revokeKey(
    kid: string,
    how: { reason: string; actor: string; requestId?: string },
  ): Promise<RevokeKeyResult>;
  /** Reads the key schedule again (the node's control snapshot moved: a key rotated or revoked elsewhere). */
  reloadKeys(): Promise<void>;
  /** Stops polling. */
  close(): void;
}

/** The catalog's app as the broker's client: approved scopes, redirect URIs and `require_dpop`. */
export function clientInfoFromApp(app: App | undefined): ClientInfo | undefined {
  if (!app) return undefined;
  const uris = app.manifest.redirect_uris;
  return {
    appId: app.id,
    clientId: app.clientId,
    name: app.name,
    owner: app.owner,
    ...(typeof app.manifest.purpose === 'string' && { purpose: app.manifest.purpose }),
    status: app.status,
    scopes: keepsCopiesInGatehouse(app.manifest) ? [...app.scopes, 'app:store'] : app.scopes,
    redirectUris: Array.isArray(uris) ? uris.filter((uri): uri is string => typeof uri === 'string') : [],
    requireDpop: app.manifest.require_dpop === true,
    idpClientId: typeof app.manifest.idp_client_id === 'string' ? app.manifest.idp_client_id : app.clientId,
    ...(isJwks(app.manifest.client_jwks) && { jwks: app.manifest.client_jwks }),
  };
}

/** A plan that keeps copies of CRM data in the governed app store is approved for its scope, `app:store`. */
function keepsCopiesInGatehouse(manifest: Readonly<Record<string, unknown>>): boolean {
  const copies = manifest.keeps_copies;
  return (
    typeof copies === 'object' && copies !== null && (copies as { where?: unknown }).where === 'gatehouse'
  );
}

function isJwks(value: unknown): value is { keys: Record<string, unknown>[] } {
  return typeof value === 'object' && value !== null && Array.isArray((value as { keys?: unknown }).keys);
}

const keyScheduleCheckMs = 5_000;

export async function createBroker(options: CreateBrokerOptions): Promise<Broker> {
  const { config, secrets } = options;
  if (!URL.canParse(options.issuer)) throw new TypeError('createBroker: issuer must be an absolute URL');
  if (!options.db) throw new TypeError('createBroker: db is required');
  const issuer = options.issuer.replace(/\/$/, '');
  const idpIssuer = (config.idp.issuer ?? `${issuer}/idp`).replace(/\/$/, '');
  const now = options.now ?? (() => new Date());
  const db = brokerDb(options.db);
  const keys = await openKeyRing({
    db,
    secrets,
    publishLeadSeconds: config.broker.keyPublishLeadSeconds,
    rotationDays: config.broker.keyRotationDays,
  });
  const revocations = new RevocationList(db, {
    pollMs: config.broker.revocationPollMs,
    maxStalenessMs: config.broker.revocationMaxStalenessSeconds * 1000,
    fanout: options.revocationFanout,
  });
  // Read now, so that /readyz knows the list before the first token arrives (a failure retries).
  revocations.ready().catch(() => undefined);
  // Clients change rarely and the gateway asks per request: a short cache keeps the DB off the hot path,
  // short enough that a suspended app's tokens are refused within a second.
  // One lookup per expiry, shared by the requests that arrive while it runs (not one each); its age
  // counts from when it was asked. A failed lookup is not kept.
  const clientCache = new Map<string, { at: number; client: Promise<ClientInfo | undefined> }>();
  const lookupClient: LookupClient = (clientId) => {
    const cached = clientCache.get(clientId);
    if (cached && performance.now() - cached.at < 500) return cached.client;
    const client = options.lookupClient(clientId);
    const entry = { at: performance.now(), client };
    if (clientCache.size > 10_000) clientCache.clear();
    clientCache.set(clientId, entry);
    client.catch(() => {
      if (clientCache.get(clientId) === entry) clientCache.delete(clientId);
    });
    return client;
  };
  const ctx: BrokerContext = {
    config,
    secrets,
    db,
    issuer,
    audience: config.broker.audience,
    keys,
    idp: connectIdp({ config, issuer: idpIssuer, now }),
    dpop: new DpopVerifier({
      windowSeconds: config.broker.dpopProofWindowSeconds,
      now,
      replay: options.dpopReplay,
    }),
    revocations,
    audit: options.audit,
    lookupClient,
    checkAccounts: options.checkAccounts,
    limitTokenRequests: options.limitTokenRequests,
    now,
  };
  const accessTokens = createAccessTokenVerifier({
    keys,
    issuer,
    audience: config.broker.audience,
    now,
    cacheSize: options.verifiedTokenCacheSize,
  });
  const metadata = Object.freeze(authorizationServerMetadata(config, issuer));
  // Key schedule: every node reloads it every few seconds (so a key rotated by the CLI or another node is
  // published well within its lead time) and rotates when due (a no-op when another node did).
  let keyCheck: Promise<unknown> = Promise.resolve();
  const keyTimer = setInterval(() => {
    keyCheck = keyCheck
      .then(() => keys.rotateIfDue(nowSeconds(ctx)).then(() => keys.reload()))
      .catch(() => undefined);
  }, keyScheduleCheckMs);
  keyTimer.unref();

  async function verifyAccessToken(token: string): Promise<AccessTokenClaims> {
    await revocations.ready();
    const { claims, kid } = await accessTokens.verifyKeyed(token);
    revocations.check(claims, kid);
    // A token outlives nothing of its app: suspended, retired or with a lapsed approval, it stops.
    const client = await lookupClient(claims.client_id);
    if (!client || client.status !== 'approved') {
      throw new TokenError(
        'app_not_approved',
        "the access token's app is not approved (suspended, retired or due for review)",
      );
    }
    return claims;
  }

  async function verifyDpop(request: DpopRequest): Promise<void> {
    const { claims } = request;
    const refuse = (cause?: unknown) =>
      new TokenError('dpop_invalid', 'a valid DPoP proof for this request is required', { cause });
    if (claims.cnf === undefined) {
      const client = await lookupClient(claims.client_id);
      if (client?.requireDpop) throw refuse(new Error('the app requires DPoP-bound tokens'));
      return;
    }
    const header = request.dpopHeader;
    if (typeof header !== 'string') throw refuse(new Error('no single DPoP header'));
    try {
      await ctx.dpop.verify({
        proof: header,
        method: request.method,
        url: request.url.startsWith('/') ? `${issuer}${request.url}` : request.url,
        accessToken: request.accessToken,
        jkt: claims.cnf.jkt,
      });
    } catch (cause) {
      if (cause instanceof DpopProofError) throw refuse(cause);
      throw cause;
    }
  }

  async function revoke(
    params: Readonly<Record<string, unknown>>,
    caller?: AccessTokenClaims,
    request: RequestContext = {},
  ): Promise<void> {
    const param = paramsOf(params);
    const token = param('token');
    if (token === undefined) throw new OAuthError('OAUTH_INVALID_REQUEST', 'token is required');
    const admin = caller?.scope.split(' ').includes('admin') === true;
    const client = admin ? undefined : await approvedClient(ctx, param('client_id'));
    const mayRevoke = (clientId: string) => admin || clientId === client?.clientId;
    const at = nowSeconds(ctx);
    if (token.split('.').length === 3) {
      let claims: AccessTokenClaims;
      try {
        claims = await accessTokens.verify(token);
      } catch {
        return; // RFC 7009 §2.2: an invalid token needs no revoking.
      }
      const event = {
        actor: caller === undefined ? `client ${client?.clientId ?? ''}` : (caller.email ?? caller.sub),
        role: admin ? 'admin' : 'client',
        appId: claims.app_id,
        action: 'token.revoke',
        resourceType: 'token',
        resourceId: `jti:${claims.jti}`,
        scope: claims.scope,
        requestId: request.requestId,
        network: request.network,
      };
      if (!mayRevoke(claims.client_id)) {
        await audit(ctx, { ...event, outcome: 'deny', reason: 'the token belongs to another client' }, false);
        return;
      }
      await recordRevocation(db, {
        kind: 'jti',
        value: claims.jti,
        expiresAt: claims.exp + 60,
        reason: 'revoked',
        now: at,
      });
      accessTokens.forget(claims.jti);
      await revocations.sync();
      await audit(ctx, { ...event, outcome: 'allow', reason: 'revoked (RFC 7009)' }, true);
      return;
    }
    const row = await db
      .selectFrom('broker_refresh_tokens')
      .select(['family_id', 'client_id', 'app_id', 'sub', 'email'])
      .where('token_hash', '=', sha256(token))
      .executeTakeFirst();
    if (!row || !mayRevoke(row.client_id)) return;
    await revokeFamily(ctx, row.family_id, 'revoked', request, {
      appId: row.app_id,
      actor: row.email ?? row.sub,
      role: 'client',
    });
  }

  async function introspect(
    params: Readonly<Record<string, unknown>>,
    caller: AccessTokenClaims,
  ): Promise<Record<string, unknown>> {
    requireScope(caller, 'admin', 'audit:read');
    const token = paramsOf(params)('token');
    if (token === undefined) throw new OAuthError('OAUTH_INVALID_REQUEST', 'token is required');
    if (token.split('.').length === 3) {
      try {
        const claims = await verifyAccessToken(token);
        // RFC 7662 §2.2: the token type of RFC 6749 §7.1, which is how the token must be presented.
        return { ...claims, active: true, token_type: claims.cnf === undefined ? 'Bearer' : 'DPoP' };
      } catch (error) {
        if (error instanceof TokenError) return { active: false };
        throw error;
      }
    }
    const at = nowSeconds(ctx);
    const row = await db
      .selectFrom('broker_refresh_tokens')
      .selectAll()
      .where('token_hash', '=', sha256(token))
      .executeTakeFirst();
    if (
      !row ||
      row.used_at !== null ||
      row.revoked_at !== null ||
      Number(row.expires_at) <= at ||
      Number(row.family_expires_at) <= at
    ) {
      return { active: false };
    }
    return {
      active: true,
      token_type: 'refresh_token',
      client_id: row.client_id,
      app_id: row.app_id,
      sub: row.sub,
      scope: row.scope,
      iat: Number(row.created_at),
      exp: Number(row.expires_at),
      sid: row.family_id,
      ...(row.jkt === null ? {} : { cnf: { jkt: row.jkt } }),
    };
  }

  return {
    issuer,
    metadata,
    get jwks() {
      const published = keys.jwks(nowSeconds(ctx)).keys;
      // A revoked key leaves the set on every node as soon as its revocation is read.
      const kept = published.filter((key) => !revocations.keyRevoked(String(key.kid)));
      return Object.freeze({ keys: Object.freeze(kept) });
    },
    exchangeToken: (params, request) => tokenRequest(ctx, params, request),
    verifyAccessToken,
    verifyDpop,
    forget: (jti) => accessTokens.forget(jti),
    authorize: (query) => authorize(ctx, query),
    callback: (query, browser) => callback(ctx, query, browser),
    consent: (form, browser) => consent(ctx, form, browser),
    revoke,
    introspect,
    async revokeAll(revokeOptions) {
      const result = await revokeAll(db, {
        audit: options.audit,
        now: now(),
        issuer: idpIssuer,
        ...revokeOptions,
      });
      await revocations.sync();
      return result;
    },
    elevations: createElevations(ctx),
    revocationStatus: () => revocations.status(),
    async rotateKeys() {
      return (await keys.rotate(nowSeconds(ctx))).kid;
    },
    listKeys: () => keys.list(nowSeconds(ctx)),
    async revokeKey(kid, how) {
      const result = await revokeSigningKey({ db, secrets, kid, audit: options.audit, ...how });
      await keys.reload();
      await revocations.sync();
      return result;
    },
    reloadKeys: () => keys.reload(),
    close() {
      clearInterval(keyTimer);
      revocations.close();
    },
  };
}

/** RFC 8414. */
function authorizationServerMetadata(config: Config, issuer: string): Record<string, unknown> {
  const scopes = new Set([
    ...Object.keys(config.scopes),
    ...Object.values(config.roles).flatMap((role) => role.scopes),
  ]);
  return {
    issuer,
    authorization_endpoint: `${issuer}/oauth/authorize`,
    token_endpoint: `${issuer}/oauth/token`,
    revocation_endpoint: `${issuer}/oauth/revoke`,
    introspection_endpoint: `${issuer}/oauth/introspect`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    grant_types_supported: [tokenExchangeGrant, 'authorization_code', 'refresh_token'],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: assertionAlgorithms,
    revocation_endpoint_auth_methods_supported: ['none'],
    introspection_endpoint_auth_methods_supported: ['bearer'],
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
    scopes_supported: [...scopes].sort(),
    subject_token_types_supported: [idTokenType],
    subject_token_signing_alg_values_supported: idTokenAlgorithms,
    access_token_signing_alg_values_supported: ['EdDSA'],
    dpop_signing_alg_values_supported: dpopAlgorithms,
    authorization_details_types_supported: [capabilityType],
  };
}
