import type { JWK } from 'jose';
import type { Config } from '../config/index.js';
import { OAuthError } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';
import { createAccessTokenVerifier, signAccessToken, type AccessTokenClaims } from './access-token.js';
import { loadSigningKey } from './keys.js';
import { grantScopes, parseScope } from './scopes.js';
import { createSubjectTokenVerifier, idTokenAlgorithms } from './subject-token.js';

export const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const idTokenType = 'urn:ietf:params:oauth:token-type:id_token';
export const accessTokenTokenType = 'urn:ietf:params:oauth:token-type:access_token';

/** A microapp's OAuth client as the catalog knows it. */
export interface ClientInfo {
  appId: string;
  clientId: string;
  name: string;
  /** Only `approved` clients get tokens. */
  status: string;
  /** Scopes approved for the app. */
  scopes: readonly string[];
}

export type LookupClient = (clientId: string) => Promise<ClientInfo | undefined>;

export interface CreateBrokerOptions {
  config: Config;
  secrets: SecretStore;
  /** This node's public URL: the `iss` of its access tokens and the base of its endpoints. */
  issuer: string;
  lookupClient: LookupClient;
  /** The clock; tests freeze it. */
  now?: () => Date;
  /** Largest number of verified access tokens kept in memory (10 000 by default). */
  verifiedTokenCacheSize?: number;
}

/** RFC 8693 §2.2.1. */
export interface TokenResponse {
  access_token: string;
  issued_token_type: typeof accessTokenTokenType;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
}

export interface Broker {
  readonly issuer: string;
  /** RFC 8414 authorization server metadata. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** The public signing keys. */
  readonly jwks: { readonly keys: readonly Readonly<JWK>[] };
  /** Token exchange (RFC 8693) from the parameters of a token request; throws OAuthError. */
  exchangeToken(params: Readonly<Record<string, unknown>>): Promise<TokenResponse>;
  /** For the gateway; throws TokenError TOKEN_INVALID or TOKEN_EXPIRED. */
  verifyAccessToken(token: string): Promise<AccessTokenClaims>;
  /** Drops a verified token from the cache by `jti` (revocation). */
  forget(jti: string): void;
}

export async function createBroker(options: CreateBrokerOptions): Promise<Broker> {
  const { config, secrets, lookupClient } = options;
  if (!URL.canParse(options.issuer)) throw new TypeError('createBroker: issuer must be an absolute URL');
  const issuer = options.issuer.replace(/\/$/, '');
  const now = options.now ?? (() => new Date());
  const key = await loadSigningKey(secrets);
  const verifySubjectToken = createSubjectTokenVerifier({
    config,
    issuer: (config.idp.issuer ?? `${issuer}/idp`).replace(/\/$/, ''),
    now,
  });
  const accessTokens = createAccessTokenVerifier({
    key,
    issuer,
    audience: config.broker.audience,
    now,
    cacheSize: options.verifiedTokenCacheSize,
  });
  const metadata = Object.freeze(authorizationServerMetadata(config, issuer));
  const jwks = Object.freeze({ keys: Object.freeze([key.publicJwk]) });

  async function exchangeToken(params: Readonly<Record<string, unknown>>): Promise<TokenResponse> {
    const param = (name: string): string | undefined => {
      const value = Object.hasOwn(params, name) ? params[name] : undefined;
      if (value === undefined || typeof value === 'string') return value === '' ? undefined : value;
      throw new OAuthError('OAUTH_INVALID_REQUEST', `parameter ${name} must appear once`);
    };
    const grantType = param('grant_type');
    if (grantType === undefined) throw new OAuthError('OAUTH_INVALID_REQUEST', 'grant_type is required');
    if (grantType !== tokenExchangeGrant) {
      throw new OAuthError('OAUTH_UNSUPPORTED_GRANT_TYPE', 'this grant type is not supported');
    }
    const clientId = param('client_id');
    const client = clientId === undefined ? undefined : await lookupClient(clientId);
    if (!client || client.status !== 'approved') {
      throw new OAuthError('OAUTH_INVALID_CLIENT', 'unknown client, or the app is not approved');
    }
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
    const requested = parseScope(param('scope'));

    const identity = await verifySubjectToken(subjectToken);
    const role = Object.hasOwn(config.roles, identity.role) ? config.roles[identity.role] : undefined;
    const granted = grantScopes(requested, client.scopes, role?.scopes ?? []);
    const ttlSeconds = config.broker.accessTokenTtlSeconds;
    const { token } = await signAccessToken(
      key,
      { issuer, audience: config.broker.audience, ttlSeconds, now: now() },
      {
        sub: identity.sub,
        client_id: client.clientId,
        app_id: client.appId,
        scope: granted.join(' '),
        role: identity.role,
        email: identity.email,
        territory: identity.territory,
      },
    );
    return {
      access_token: token,
      issued_token_type: accessTokenTokenType,
      token_type: 'Bearer',
      expires_in: ttlSeconds,
      scope: granted.join(' '),
    };
  }

  return {
    issuer,
    metadata,
    jwks,
    exchangeToken,
    verifyAccessToken: (token) => accessTokens.verify(token),
    forget: (jti) => accessTokens.forget(jti),
  };
}

/** RFC 8414: only what is served today; endpoints join the list as their issues land. */
function authorizationServerMetadata(config: Config, issuer: string): Record<string, unknown> {
  const scopes = new Set([
    ...Object.keys(config.scopes),
    ...Object.values(config.roles).flatMap((role) => role.scopes),
  ]);
  return {
    issuer,
    token_endpoint: `${issuer}/oauth/token`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    grant_types_supported: [tokenExchangeGrant],
    // Required by RFC 8414; empty until the authorization endpoint (code + PKCE) is served.
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ['none'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: [...scopes].sort(),
    subject_token_types_supported: [idTokenType],
    subject_token_signing_alg_values_supported: idTokenAlgorithms,
    access_token_signing_alg_values_supported: ['EdDSA'],
  };
}
