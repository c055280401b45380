import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { OAuthError } from '../errors/index.js';
import { nowSeconds, type BrokerContext, type ClientInfo } from './context.js';
import { MemoryReplayStore } from './dpop.js';

export const jwtBearerAssertionType = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Asymmetric algorithms only: a shared-secret (HS*) assertion is not private_key_jwt. */
export const assertionAlgorithms = ['ES256', 'ES384', 'EdDSA', 'PS256', 'RS256'];
/** An assertion is single-use and short-lived; a longer one is refused rather than remembered. */
const maxAssertionSeconds = 300;

/** The jtis of accepted assertions, per broker (per node, like DPoP's default store). */
const seenAssertions = new WeakMap<BrokerContext, MemoryReplayStore>();

/**
 * RFC 7523 §2.2 / OIDC Core §9 `private_key_jwt`: a confidential app (one whose plan registers
 * `client_jwks`) proves it is the client with a JWT signed by one of those keys, `iss` = `sub` = its
 * client id, `aud` = the token endpoint (or the issuer), a `jti` never seen before and at most five
 * minutes of life. A public app sends none. Every failure is invalid_client, without the reason on the wire.
 */
export async function authenticateClient(
  ctx: BrokerContext,
  client: ClientInfo,
  param: (name: string) => string | undefined,
): Promise<void> {
  const assertion = param('client_assertion');
  const type = param('client_assertion_type');
  if (client.jwks === undefined) {
    if (assertion !== undefined || type !== undefined) {
      throw new OAuthError(
        'OAUTH_INVALID_CLIENT',
        'this app is a public client: it sends no client_assertion',
      );
    }
    return;
  }
  if (assertion === undefined || type !== jwtBearerAssertionType) {
    throw new OAuthError(
      'OAUTH_INVALID_CLIENT',
      `this app authenticates with private_key_jwt: send client_assertion_type=${jwtBearerAssertionType} and a client_assertion`,
    );
  }
  // Attacker-controlled: verified against the app's registered public keys only, with every claim bounded.
  const payload = await jwtVerify(assertion, createLocalJWKSet(client.jwks as JSONWebKeySet), {
    algorithms: assertionAlgorithms,
    issuer: client.clientId,
    subject: client.clientId,
    audience: [`${ctx.issuer}/oauth/token`, ctx.issuer],
    requiredClaims: ['exp', 'jti'],
    currentDate: ctx.now(),
  }).then(
    (verified) => verified.payload,
    (cause: unknown) => {
      throw new OAuthError('OAUTH_INVALID_CLIENT', 'the client assertion is not valid for this app', {
        cause,
      });
    },
  );
  const now = nowSeconds(ctx);
  const exp = payload.exp as number;
  const jti = payload.jti as string;
  if (exp - now > maxAssertionSeconds || jti.length > 200) {
    throw new OAuthError(
      'OAUTH_INVALID_CLIENT',
      `a client assertion lives at most ${maxAssertionSeconds} seconds`,
    );
  }
  let seen = seenAssertions.get(ctx);
  if (seen === undefined) {
    seen = new MemoryReplayStore();
    seenAssertions.set(ctx, seen);
  }
  if (!(await seen.remember(`${client.clientId} ${jti}`, exp, now))) {
    throw new OAuthError('OAUTH_INVALID_CLIENT', 'the client assertion was used before');
  }
}
