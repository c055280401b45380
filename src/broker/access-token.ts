import { createHash, randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { TokenError } from '../errors/index.js';
import { VerifiedTokenCache } from './cache.js';
import { accessTokenAlg, type BrokerKey } from './keys.js';

/** The claims of a Gatehouse access token (RFC 9068), as `verifyAccessToken` answers them. */
export interface AccessTokenClaims {
  readonly iss: string;
  readonly aud: string | string[];
  /** The user's subject at the IdP. */
  readonly sub: string;
  readonly client_id: string;
  readonly app_id: string;
  /** Granted scopes, space-separated. */
  readonly scope: string;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  readonly role: string;
  readonly email?: string;
  readonly territory?: string;
}

export type AccessTokenInput = Pick<
  AccessTokenClaims,
  'sub' | 'client_id' | 'app_id' | 'scope' | 'role' | 'email' | 'territory'
>;

export const accessTokenType = 'at+jwt';
const clockToleranceSeconds = 5;
const maxTokenLength = 8192;

/** Signs an access token; answers it with its claims. */
export async function signAccessToken(
  key: BrokerKey,
  options: { issuer: string; audience: string; ttlSeconds: number; now: Date },
  input: AccessTokenInput,
): Promise<{ token: string; claims: AccessTokenClaims }> {
  const iat = Math.floor(options.now.getTime() / 1000);
  const claims: AccessTokenClaims = {
    iss: options.issuer,
    aud: options.audience,
    sub: input.sub,
    client_id: input.client_id,
    app_id: input.app_id,
    scope: input.scope,
    jti: randomBytes(18).toString('base64url'),
    iat,
    exp: iat + options.ttlSeconds,
    role: input.role,
    ...(input.email === undefined ? {} : { email: input.email }),
    ...(input.territory === undefined ? {} : { territory: input.territory }),
  };
  const token = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: accessTokenAlg, typ: accessTokenType, kid: key.kid })
    .sign(key.privateKey);
  return { token, claims };
}

export interface AccessTokenVerifier {
  verify(token: string): Promise<AccessTokenClaims>;
  /** Evicts a cached token by `jti` so its next use is verified again (revocation). */
  forget(jti: string): void;
}

/**
 * Verifies access tokens for the gateway: EdDSA only, `typ` at+jwt (an ID token never passes), our
 * key, `iss`, `aud`, `exp` with 5 s of tolerance, and every claim of the right type. Verified claims are
 * cached by SHA-256 of the token until `exp`. Errors are TOKEN_INVALID or TOKEN_EXPIRED with a generic
 * message; the reason is in `cause` and the token is never part of either.
 */
export function createAccessTokenVerifier(options: {
  key: BrokerKey;
  issuer: string;
  audience: string;
  now: () => Date;
  cacheSize?: number;
}): AccessTokenVerifier {
  const { key, issuer, audience, now } = options;
  const cache = new VerifiedTokenCache<AccessTokenClaims>(options.cacheSize);

  return {
    async verify(token) {
      if (typeof token !== 'string') throw new TypeError('token must be a string');
      if (token.length > maxTokenLength) throw invalid(new Error('token too long'));
      const currentDate = now();
      const digest = createHash('sha256').update(token).digest('base64url');
      const cached = cache.get(digest, currentDate.getTime() / 1000);
      if (cached) return cached;

      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, key.publicKey, {
          algorithms: [accessTokenAlg],
          typ: accessTokenType,
          issuer,
          audience,
          clockTolerance: clockToleranceSeconds,
          requiredClaims: ['sub', 'jti', 'iat', 'exp'],
          currentDate,
        }));
      } catch (cause) {
        if (cause instanceof errors.JWTExpired) {
          throw new TokenError('TOKEN_EXPIRED', 'the access token has expired', { cause });
        }
        throw invalid(cause);
      }
      const claims = Object.freeze(claimsOf(payload));
      cache.set(digest, claims);
      return claims;
    },
    forget: (jti) => cache.forget(jti),
  };
}

function invalid(cause: unknown): TokenError {
  return new TokenError('TOKEN_INVALID', 'the access token is not valid', { cause });
}

/** Signed by us, yet checked field by field: a claim of the wrong type is a bug or a forgery. */
function claimsOf(payload: JWTPayload): AccessTokenClaims {
  const text = (name: string): string => {
    const value = payload[name];
    if (typeof value !== 'string' || value === '')
      throw invalid(new Error(`claim ${name} is missing or empty`));
    return value;
  };
  const optionalText = (name: string): { [name]: string } | undefined => {
    const value = payload[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw invalid(new Error(`claim ${name} is not a string`));
    return { [name]: value };
  };
  const { iat, exp, aud } = payload;
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) {
    throw invalid(new Error('iat or exp is not an integer'));
  }
  return {
    iss: text('iss'),
    aud: aud as string | string[],
    sub: text('sub'),
    client_id: text('client_id'),
    app_id: text('app_id'),
    scope: text('scope'),
    jti: text('jti'),
    iat: iat as number,
    exp: exp as number,
    role: text('role'),
    ...optionalText('email'),
    ...optionalText('territory'),
  };
}
