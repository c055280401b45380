import { hash, randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { TokenError } from '../errors/index.js';
import { VerifiedTokenCache } from './cache.js';
import { accessTokenAlg, type BrokerKey, type KeyRing } from './keys.js';

/** The claims of a Gatehouse access token (RFC 9068), as `verifyAccessToken` answers them. */
export interface AccessTokenClaims {
  readonly iss: string;
  readonly aud: string | string[];
  /** The user's subject at the IdP. */
  readonly sub: string;
  /** The issuer of the IdP that asserted `sub`: with it, the user's immutable key. */
  readonly idp?: string;
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
  /** The sign-in (refresh-token family) the token comes from; revoking the family revokes it. */
  readonly sid?: string;
  /** RFC 9449 confirmation: the token is bound to the DPoP key with this RFC 7638 thumbprint. */
  readonly cnf?: { readonly jkt: string };
  /**
   * Capability: the token reaches only these CRM accounts (and records under them), whatever its
   * scopes say. Absent = no narrowing beyond scopes and policy.
   */
  readonly cap?: { readonly account_ids: readonly string[] };
  /** The approved just-in-time elevation this token carries. */
  readonly elev?: string;
  /**
   * Revocation epoch: the last revocation entry the issuing node had read. Entries after it cover the
   * token; no clock is compared.
   */
  readonly rev?: number;
}

export type AccessTokenInput = Pick<
  AccessTokenClaims,
  | 'sub'
  | 'idp'
  | 'client_id'
  | 'app_id'
  | 'scope'
  | 'role'
  | 'email'
  | 'territory'
  | 'sid'
  | 'cnf'
  | 'cap'
  | 'elev'
  | 'rev'
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
    ...(input.idp === undefined ? {} : { idp: input.idp }),
    client_id: input.client_id,
    app_id: input.app_id,
    scope: input.scope,
    jti: randomBytes(18).toString('base64url'),
    iat,
    exp: iat + options.ttlSeconds,
    role: input.role,
    ...(input.email === undefined ? {} : { email: input.email }),
    ...(input.territory === undefined ? {} : { territory: input.territory }),
    ...(input.sid === undefined ? {} : { sid: input.sid }),
    ...(input.cnf === undefined ? {} : { cnf: { jkt: input.cnf.jkt } }),
    ...(input.cap === undefined ? {} : { cap: { account_ids: [...input.cap.account_ids] } }),
    ...(input.elev === undefined ? {} : { elev: input.elev }),
    ...(input.rev === undefined ? {} : { rev: input.rev }),
  };
  const token = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: accessTokenAlg, typ: accessTokenType, kid: key.kid })
    .sign(key.privateKey);
  return { token, claims };
}

export interface AccessTokenVerifier {
  verify(token: string): Promise<AccessTokenClaims>;
  /** verify, answering the kid of the key that signed it too (a revoked key stops its tokens). */
  verifyKeyed(token: string): Promise<{ claims: AccessTokenClaims; kid: string }>;
  /** Evicts a cached token by `jti` so its next use is verified again (revocation). */
  forget(jti: string): void;
}

/**
 * Verifies access tokens for the gateway. Discipline, in order: a size cap before any parsing; the
 * compact JWS form only (a JWE has five parts and is refused); EdDSA only, fixed here, whatever the
 * header says (no `none`, no HMAC keyed with a public key); `typ` at+jwt (an ID token never passes);
 * `kid` used only to look a key up in our own key ring (an embedded `jwk`, a `jku` or an `x5u` is never
 * read); jose refuses any `crit` header it does not implement; `iss`, `aud`, `exp` and `nbf` with 5 s of
 * tolerance; every claim of the right type. Verified claims are cached by SHA-256 of the token until
 * `exp`; revocation is checked by the caller on every use, cached or not. Errors are TOKEN_INVALID or
 * TOKEN_EXPIRED with a generic message; the reason is in `cause` and the token is never part of either.
 */
export function createAccessTokenVerifier(options: {
  keys: Pick<KeyRing, 'verificationKey' | 'reload'>;
  issuer: string;
  audience: string;
  now: () => Date;
  cacheSize?: number;
}): AccessTokenVerifier {
  const { keys, issuer, audience, now } = options;
  const cache = new VerifiedTokenCache<{ jti: string; exp: number; claims: AccessTokenClaims; kid: string }>(
    options.cacheSize,
  );
  // An unknown kid may be a key another node just published: reload the ring, at most once a second.
  let lastReload = 0;
  const getKey =
    (nowSeconds: number): JWTVerifyGetKey =>
    async (header) => {
      const found = keys.verificationKey(header.kid, nowSeconds);
      if (found) return found;
      if (typeof header.kid === 'string' && performance.now() - lastReload > 1000) {
        lastReload = performance.now();
        await keys.reload();
        const reloaded = keys.verificationKey(header.kid, nowSeconds);
        if (reloaded) return reloaded;
      }
      throw new errors.JWKSNoMatchingKey();
    };

  async function verifyKeyed(token: string): Promise<{ claims: AccessTokenClaims; kid: string }> {
    if (typeof token !== 'string') throw new TypeError('token must be a string');
    if (token.length > maxTokenLength) throw invalid(new Error('token too long'));
    if (token.split('.').length !== 3) throw invalid(new Error('not a compact JWS'));
    const currentDate = now();
    const digest = hash('sha256', token, 'base64url');
    const cached = cache.get(digest, currentDate.getTime() / 1000);
    if (cached) return cached;

    let payload: JWTPayload;
    let kid: unknown;
    try {
      ({
        payload,
        protectedHeader: { kid },
      } = await jwtVerify(token, getKey(currentDate.getTime() / 1000), {
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
        throw new TokenError('expired', 'the access token has expired', { cause });
      }
      throw invalid(cause);
    }
    const claims = Object.freeze(claimsOf(payload));
    const verified = Object.freeze({ jti: claims.jti, exp: claims.exp, claims, kid: String(kid) });
    cache.set(digest, verified);
    return verified;
  }

  return {
    verify: async (token) => (await verifyKeyed(token)).claims,
    verifyKeyed,
    forget: (jti) => cache.forget(jti),
  };
}

function invalid(cause: unknown): TokenError {
  return new TokenError('invalid', 'the access token is not valid', { cause });
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
    ...optionalText('idp'),
    client_id: text('client_id'),
    app_id: text('app_id'),
    scope: text('scope'),
    jti: text('jti'),
    iat: iat as number,
    exp: exp as number,
    role: text('role'),
    ...optionalText('email'),
    ...optionalText('territory'),
    ...optionalText('sid'),
    ...optionalText('elev'),
    ...revOf(payload.rev),
    ...cnfOf(payload.cnf),
    ...capOf(payload.cap),
  };
}

function revOf(value: unknown): { rev: number } | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < 0)
    throw invalid(new Error('claim rev is malformed'));
  return { rev: value as number };
}

function cnfOf(value: unknown): { cnf: { jkt: string } } | undefined {
  if (value === undefined) return undefined;
  const jkt = (value as { jkt?: unknown } | null)?.jkt;
  if (typeof jkt !== 'string' || jkt === '') throw invalid(new Error('claim cnf has no jkt'));
  return { cnf: Object.freeze({ jkt }) };
}

function capOf(value: unknown): { cap: { account_ids: readonly string[] } } | undefined {
  if (value === undefined) return undefined;
  const ids = (value as { account_ids?: unknown } | null)?.account_ids;
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) {
    throw invalid(new Error('claim cap is malformed'));
  }
  return { cap: Object.freeze({ account_ids: Object.freeze([...(ids as string[])]) }) };
}
