import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config/index.js';
import { DependencyUnavailable, OAuthError } from '../errors/index.js';

/** Who an ID token says the user is, in the terms the broker needs. */
export interface SubjectIdentity {
  /** The IdP's issuer: with `sub`, the user's immutable key. Absent in grants stored before it was recorded. */
  readonly issuer?: string;
  readonly sub: string;
  readonly role: string;
  readonly email?: string;
  readonly territory?: string;
  /**
   * When the IdP asserted this identity (the ID token's `iat`, IdP seconds): a user revocation refuses
   * sign-ins asserted at or before it. Absent in grants stored before it was recorded.
   */
  readonly authTime?: number;
}

export type SubjectTokenVerifier = (
  idToken: string,
  options?: { nonce?: string; audience?: string },
) => Promise<SubjectIdentity>;

/** The parts of the IdP's OpenID Provider metadata the broker uses. */
export interface IdpMetadata {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly authorization_endpoint?: string;
  readonly token_endpoint?: string;
}

export interface IdpConnection {
  verifyIdToken: SubjectTokenVerifier;
  /** OIDC discovery, once; again after a failure. */
  metadata(): Promise<IdpMetadata>;
}

/** Asymmetric algorithms only: a symmetric one would let anyone holding a public key sign. */
export const idTokenAlgorithms = [
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'EdDSA',
  'Ed25519',
];
const clockToleranceSeconds = 5;
const maxTokenLength = 16_384;

/** jose codes that mean the IdP (not the token) is at fault: its JWKS cannot be fetched or read. */
const idpFailureCodes = new Set(['ERR_JOSE_GENERIC', 'ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID']);

/**
 * Verifies subject ID tokens against the IdP found by OIDC discovery at `issuer`: keys from its
 * `jwks_uri` (fetched once and cached by jose, refetched on an unknown kid), `iss` = issuer, `aud` =
 * `idp.audience`, `exp`, and an `iat` no older than `idp.maxIdTokenAgeSeconds`. Discovery runs at the
 * first exchange (the built-in IdP only answers once the server listens) and again after a failure.
 */
export function connectIdp(options: { config: Config; issuer: string; now: () => Date }): IdpConnection {
  const { config, issuer, now } = options;
  const { audience, claims, maxIdTokenAgeSeconds, requireVerifiedEmail } = config.idp;
  let discovered: Promise<{ metadata: IdpMetadata; keys: JWTVerifyGetKey }> | undefined;
  const discovery = () =>
    (discovered ??= discover(issuer).catch((error: unknown) => {
      discovered = undefined;
      throw error;
    }));

  async function verifySubjectToken(
    idToken: string,
    check: { nonce?: string; audience?: string } = {},
  ): Promise<SubjectIdentity> {
    // Gatehouse's own client at the IdP (its sign-in), or the app's client (token exchange).
    const expected = check.audience ?? audience;
    if (idToken.length > maxTokenLength) throw invalidGrant();
    const getKey = (await discovery()).keys;
    let payload: JWTPayload;
    let typ: string | undefined;
    try {
      ({
        payload,
        protectedHeader: { typ },
      } = await jwtVerify(idToken, getKey, {
        algorithms: idTokenAlgorithms,
        issuer,
        audience: expected,
        maxTokenAge: maxIdTokenAgeSeconds,
        clockTolerance: clockToleranceSeconds,
        requiredClaims: ['sub', 'iat', 'exp'],
        currentDate: now(),
      }));
    } catch (cause) {
      if (!(cause instanceof errors.JOSEError) || idpFailureCodes.has(cause.code)) {
        throw new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', 'the identity provider cannot be reached', {
          cause,
        });
      }
      throw invalidGrant(cause);
    }
    // An access token of the same IdP is no identity assertion (RFC 9068 §4).
    if (typ !== undefined && /^(application\/)?at\+jwt$/i.test(typ)) throw invalidGrant();
    // The nonce of the sign-in this ID token answers (OIDC Core §3.1.3.7 step 11).
    if (check.nonce !== undefined && payload.nonce !== check.nonce) throw invalidGrant();
    // OIDC Core §3.1.3.7 steps 4–5: with several audiences, `azp` names the party it was issued to,
    // and that must be the client expected (the app asking); another client's token that merely lists
    // it is not the app's to use.
    const several = Array.isArray(payload.aud) && payload.aud.length > 1;
    if ((several || payload.azp !== undefined) && payload.azp !== expected) {
      throw invalidGrant(new Error('the ID token was issued to another client (azp)'));
    }
    // The sign-in itself, not only the token, must be recent enough (OIDC Core §3.1.2.1 max_age).
    if (
      payload.auth_time !== undefined &&
      (typeof payload.auth_time !== 'number' ||
        Math.floor(now().getTime() / 1000) - payload.auth_time > maxIdTokenAgeSeconds + clockToleranceSeconds)
    ) {
      throw invalidGrant(new Error('the sign-in is older than the largest accepted age'));
    }
    // Verified but still the IdP's data: check the shape of every claim we use.
    const role = payload[claims.role];
    const email = payload.email;
    const territory = payload[claims.territory];
    if (typeof payload.sub !== 'string' || payload.sub === '' || typeof role !== 'string' || role === '') {
      throw invalidGrant();
    }
    if (
      (email !== undefined && typeof email !== 'string') ||
      (territory !== undefined && typeof territory !== 'string')
    ) {
      throw invalidGrant();
    }
    // An e-mail the IdP has not verified may be anyone's: refuse it (strict) or ignore it.
    const verified = payload.email_verified === true;
    if (email !== undefined && !verified && requireVerifiedEmail) {
      throw invalidGrant(new Error('the e-mail of the ID token is not verified'));
    }
    return {
      issuer: payload.iss as string,
      sub: payload.sub,
      role,
      ...(email !== undefined && verified ? { email } : {}),
      territory,
      authTime: payload.iat as number,
    };
  }

  return { verifyIdToken: verifySubjectToken, metadata: async () => (await discovery()).metadata };
}

/** The ID-token verifier alone (token exchange). */
export function createSubjectTokenVerifier(options: {
  config: Config;
  issuer: string;
  now: () => Date;
}): SubjectTokenVerifier {
  return connectIdp(options).verifyIdToken;
}

function invalidGrant(cause?: unknown): OAuthError {
  return new OAuthError('OAUTH_INVALID_GRANT', 'the subject token is not a valid ID token for Gatehouse', {
    cause,
  });
}

async function discover(issuer: string): Promise<{ metadata: IdpMetadata; keys: JWTVerifyGetKey }> {
  const url = `${issuer}/.well-known/openid-configuration`;
  let metadata: Record<string, unknown>;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'error' });
    if (!response.ok) throw new Error(`OIDC discovery at ${url} answered ${response.status}`);
    metadata = (await response.json()) as typeof metadata;
  } catch (cause) {
    throw new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', 'the identity provider cannot be reached', {
      cause,
    });
  }
  // OpenID Connect Discovery §4.3: the issuer in the document must be exactly the one we asked.
  if (
    metadata.issuer !== issuer ||
    typeof metadata.jwks_uri !== 'string' ||
    !URL.canParse(metadata.jwks_uri)
  ) {
    throw new DependencyUnavailable(
      'DEPENDENCY_UNAVAILABLE',
      'the identity provider metadata is not usable',
      {
        cause: new Error(`OIDC discovery at ${url} names another issuer or no valid jwks_uri`),
      },
    );
  }
  const endpoint = (name: string) => {
    const value = metadata[name];
    return typeof value === 'string' && URL.canParse(value) ? { [name]: value } : {};
  };
  return {
    metadata: {
      issuer,
      jwks_uri: metadata.jwks_uri,
      ...endpoint('authorization_endpoint'),
      ...endpoint('token_endpoint'),
    },
    keys: createRemoteJWKSet(new URL(metadata.jwks_uri)),
  };
}
