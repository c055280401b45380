import type { FastifyInstance } from 'fastify';
import { Provider } from 'oidc-provider';
import type { Config } from '../config/index.js';
import type { SecretStore } from '../secrets/index.js';
import { demoUserClaims } from './claims.js';
import { loadCookieKey, loadSigningKey, signingAlg } from './keys.js';
import { idTokenTtlSeconds, mintDevIdToken } from './mint.js';
import { mountProvider } from './mount.js';

export interface CreateDevIdpOptions {
  config: Config;
  secrets: SecretStore;
  /** `<publicUrl>/idp`; the provider is served under this URL's path. */
  issuer: string;
  /** Redirect URIs of the `gatehouse` client; `<publicUrl>/oauth/callback` when absent. */
  redirectUris?: readonly string[];
}

export interface DevIdp {
  readonly issuer: string;
  /** Serves the provider under the issuer's path (e.g. `/idp/*`) in `app`; call before `listen`. */
  mount(app: FastifyInstance): void;
  /** An ID token for a demo user, signed with the key in this IdP's JWKS. */
  mintDevIdToken(options: { user: string; now?: Date }): Promise<string>;
  close(): Promise<void>;
}

/**
 * The development IdP: a real OpenID provider (oidc-provider) whose accounts are the demo users of the
 * configuration. Its one client is Gatehouse itself (client id = `idp.audience`), a public client
 * using the authorization code flow with PKCE. Sessions and grants live in memory.
 */
export async function createDevIdp(options: CreateDevIdpOptions): Promise<DevIdp> {
  const { config, secrets } = options;
  const issuer = options.issuer.replace(/\/$/, '');
  const publicBase = issuer.replace(/\/idp$/, '');
  const [key, cookieKey] = await Promise.all([loadSigningKey(secrets), loadCookieKey(secrets)]);
  const { role, territory } = config.idp.claims;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: config.idp.audience,
        client_name: 'Gatehouse',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [...(options.redirectUris ?? [`${publicBase}/oauth/callback`])],
        id_token_signed_response_alg: signingAlg,
      },
    ],
    jwks: { keys: [key.privateJwk] },
    cookies: { keys: [cookieKey] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      gatehouse: [role, territory],
    },
    scopes: ['openid', 'email', 'profile', 'gatehouse'],
    // The broker reads role and territory from the ID token, so they go there and not only to userinfo.
    conformIdTokenClaims: false,
    enabledJWA: { idTokenSigningAlgValues: [signingAlg] },
    // Every lifetime the sign-in uses is set: oidc-provider prints a notice on stdout for a default one,
    // which would corrupt the --json output of a command that signs in in-process (simulate).
    ttl: {
      IdToken: idTokenTtlSeconds,
      AccessToken: idTokenTtlSeconds,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: 8 * 3600,
    },
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx: unknown, sub: string) {
      if (!Object.hasOwn(config.demoUsers, sub)) return undefined;
      const claims = demoUserClaims(config, sub);
      return { accountId: sub, claims: async () => claims };
    },
  });
  provider.proxy = true;

  return {
    issuer,
    mount: (app) => mountProvider(app, provider),
    mintDevIdToken: ({ user, now }) => mintDevIdToken({ config, secrets, user, issuer, now }),
    // Sessions and grants live in the in-memory adapter; nothing holds a socket or a timer.
    close: async () => undefined,
  };
}
