import { importJWK, SignJWT } from 'jose';
import type { Config } from '../config/index.js';
import type { SecretStore } from '../secrets/index.js';
import { demoUserClaims } from './claims.js';
import { loadSigningKey, signingAlg } from './keys.js';

export interface MintDevIdTokenOptions {
  config: Config;
  secrets: SecretStore;
  /** A demo user's name, e.g. `alice`; anything else is USER_UNKNOWN. */
  user: string;
  /** The development IdP's issuer, `<publicUrl>/idp`. */
  issuer: string;
  /**
   * The IdP client the token is issued to (`aud` and `azp`): an app's own client for token exchange;
   * Gatehouse's (`idp.audience`) when absent.
   */
  audience?: string;
  now?: Date;
}

/** ID tokens minted here live as long as the IdP's own. */
export const idTokenTtlSeconds = 600;

/**
 * An ID token for a demo user, signed with the key the development IdP publishes in its JWKS; it
 * needs only the secret store, so it works whether or not a server is running.
 */
export async function mintDevIdToken(options: MintDevIdTokenOptions): Promise<string> {
  const { config, secrets, user, issuer } = options;
  const claims = demoUserClaims(config, user);
  const key = await loadSigningKey(secrets);
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const azp = options.audience === undefined ? {} : { azp: options.audience };
  return new SignJWT({ ...claims, ...azp, auth_time: iat })
    .setProtectedHeader({ alg: signingAlg, kid: key.kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setAudience(options.audience ?? config.idp.audience)
    .setSubject(user)
    .setIssuedAt(iat)
    .setExpirationTime(iat + idTokenTtlSeconds)
    .sign(await importJWK(key.privateJwk, signingAlg));
}
