import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { ConfigError } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';

export const signingKeyName = 'devidp/signing-key';
export const cookieKeyName = 'devidp/cookie-key';
/** ES256: every OIDC relying party library verifies it. */
export const signingAlg = 'ES256';

export interface DevIdpKey {
  /** The private JWK with kid, alg and use, as oidc-provider's `jwks` configuration takes it. */
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
  readonly kid: string;
}

/**
 * The IdP's signing key, created at first use and kept in the secret store. Two processes starting at
 * once agree on one key: putIfAbsent answers whichever was stored first.
 */
export async function loadSigningKey(secrets: SecretStore): Promise<DevIdpKey> {
  const bytes =
    (await secrets.get(signingKeyName)) ?? (await secrets.putIfAbsent(signingKeyName, await newKey()));
  const jwk = parseKey(bytes);
  const { kty, crv, x, y, kid, alg, use } = jwk;
  return { privateJwk: jwk, publicJwk: { kty, crv, x, y, kid, alg, use }, kid: jwk.kid as string };
}

/** Keys of the IdP's session and interaction cookies, created at first use like the signing key. */
export async function loadCookieKey(secrets: SecretStore): Promise<string> {
  const bytes =
    (await secrets.get(cookieKeyName)) ?? (await secrets.putIfAbsent(cookieKeyName, randomBytes(32)));
  return Buffer.from(bytes).toString('base64url');
}

async function newKey(): Promise<Uint8Array> {
  const { privateKey, publicKey } = await generateKeyPair(signingAlg, { extractable: true });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: signingAlg, use: 'sig' };
  return Buffer.from(JSON.stringify(jwk));
}

function parseKey(bytes: Uint8Array): JWK {
  let jwk: JWK | undefined;
  try {
    jwk = JSON.parse(Buffer.from(bytes).toString('utf8')) as JWK;
  } catch {
    jwk = undefined;
  }
  const valid =
    jwk?.kty === 'EC' &&
    jwk.crv === 'P-256' &&
    jwk.alg === signingAlg &&
    [jwk.d, jwk.x, jwk.y, jwk.kid].every((part) => typeof part === 'string' && part.length > 0);
  if (!valid || !jwk) {
    throw new ConfigError(`secrets: ${signingKeyName} is not an ${signingAlg} private key`);
  }
  return jwk;
}
