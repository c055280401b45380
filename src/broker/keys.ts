import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
} from 'jose';
import { GatehouseError } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';

export const signingKeyName = 'broker/signing-key';
export const accessTokenAlg = 'EdDSA';

export interface BrokerKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** The public JWK as the JWKS publishes it. */
  readonly publicJwk: Readonly<JWK>;
}

/**
 * The broker's Ed25519 signing key (kid = RFC 7638 thumbprint), created at first start and kept in the
 * secret store; every node on the same store signs with the same key.
 */
export async function loadSigningKey(secrets: SecretStore): Promise<BrokerKey> {
  const bytes =
    (await secrets.get(signingKeyName)) ?? (await secrets.putIfAbsent(signingKeyName, await newKey()));
  const jwk = parseKey(bytes);
  const publicJwk = Object.freeze({
    kty: jwk.kty,
    crv: jwk.crv,
    x: jwk.x,
    kid: jwk.kid,
    alg: accessTokenAlg,
    use: 'sig',
  });
  const [privateKey, publicKey] = await Promise.all([
    importJWK(jwk, accessTokenAlg) as Promise<CryptoKey>,
    importJWK(publicJwk, accessTokenAlg) as Promise<CryptoKey>,
  ]);
  return { kid: jwk.kid as string, privateKey, publicKey, publicJwk };
}

async function newKey(): Promise<Uint8Array> {
  const { privateKey, publicKey } = await generateKeyPair(accessTokenAlg, {
    crv: 'Ed25519',
    extractable: true,
  });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  return Buffer.from(
    JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: accessTokenAlg, use: 'sig' }),
  );
}

function parseKey(bytes: Uint8Array): JWK {
  let jwk: JWK | undefined;
  try {
    jwk = JSON.parse(Buffer.from(bytes).toString('utf8')) as JWK;
  } catch {
    jwk = undefined;
  }
  const valid =
    jwk?.kty === 'OKP' &&
    jwk.crv === 'Ed25519' &&
    [jwk.d, jwk.x, jwk.kid].every((part) => typeof part === 'string' && part.length > 0);
  if (!valid || !jwk) {
    throw new GatehouseError('CONFIG_INVALID', `secrets: ${signingKeyName} is not an Ed25519 private key`);
  }
  return jwk;
}
