import * as oauth from 'oauth4webapi';
import * as openid from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGatehouseStore } from '../src/database/index.js';
import type { Store } from '../src/store/index.js';
import { Browser, insertDpopApp, signIn } from './support/broker.js';
import { startDemo, type Demo } from './support/demo.js';

// Third-party OAuth clients (panva's oauth4webapi and openid-client) against the broker over loopback:
// they hold the server to the RFCs that fetch-based tests do not (content types, challenges, iss).
const redirectUri = 'http://localhost:5173/callback';
const scope = 'read:account.basic read:contact.basic';
const insecure = { [oauth.allowInsecureRequests]: true };

let demo: Demo;
let store: Store;
let as: oauth.AuthorizationServer;

beforeAll(async () => {
  demo = await startDemo();
  store = await openGatehouseStore(demo.config);
  await insertDpopApp(store.db, [redirectUri]);
  const issuer = new URL(demo.url);
  as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  );
});

afterAll(async () => {
  await store?.close();
  await demo?.stop();
});

/** The browser part of the code flow (dev IdP + consent); answers where the app is sent back. */
async function authorizationResponse(clientId: string, challenge: string, state: string): Promise<URL> {
  const { back } = await signIn(new Browser(), {
    base: demo.url,
    clientId,
    redirectUri,
    scope: clientId === 'dpop-notes' ? 'read:account.basic' : scope,
    user: 'alice',
    challenge,
    state,
  });
  return back;
}

async function codeFlow(client: oauth.Client, options: { DPoP?: oauth.DPoPHandle } = {}) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const back = await authorizationResponse(
    client.client_id,
    await oauth.calculatePKCECodeChallenge(verifier),
    state,
  );
  const params = oauth.validateAuthResponse(as, client, back, state);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.None(),
    params,
    redirectUri,
    verifier,
    { ...insecure, ...options },
  );
  return oauth.processAuthorizationCodeResponse(as, client, response);
}

describe('oauth4webapi against the broker', () => {
  const client: oauth.Client = { client_id: 'call-notes' };

  it('discovers the broker (RFC 8414) with the endpoints a client needs', () => {
    expect(as).toMatchObject({
      issuer: demo.url,
      authorization_endpoint: `${demo.url}/oauth/authorize`,
      token_endpoint: `${demo.url}/oauth/token`,
      revocation_endpoint: `${demo.url}/oauth/revoke`,
      introspection_endpoint: `${demo.url}/oauth/introspect`,
    });
    expect(as.code_challenge_methods_supported).toEqual(['S256']);
  });

  it('code + PKCE, then refresh rotation; a reused refresh token is an invalid_grant it can read', async () => {
    const first = await codeFlow(client);
    expect(first).toMatchObject({ token_type: 'bearer', scope });
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), first.refresh_token ?? '', insecure),
    );
    expect(refreshed.refresh_token).not.toBe(first.refresh_token);
    // The old refresh token again: RFC 6749 §5.2 error as application/json, readable by the library.
    const reuse = oauth.refreshTokenGrantRequest(
      as,
      client,
      oauth.None(),
      first.refresh_token ?? '',
      insecure,
    );
    const refused = await oauth.processRefreshTokenResponse(as, client, await reuse).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(oauth.ResponseBodyError);
    expect(refused).toMatchObject({ error: 'invalid_grant', status: 400 });
  });

  it('reads the token exchange answer, and its invalid_scope refusal, as RFC 6749 answers', async () => {
    const granted = await oauth.processGenericTokenEndpointResponse(
      as,
      client,
      await demo.exchange('alice', 'call-notes', 'read:account.basic'),
    );
    expect(granted).toMatchObject({ token_type: 'bearer', scope: 'read:account.basic' });
    const refused = await oauth
      .processGenericTokenEndpointResponse(as, client, await demo.exchange('alice', 'call-notes', 'admin'))
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(oauth.ResponseBodyError);
    expect((refused as oauth.ResponseBodyError).error).toBe('invalid_scope');
    expect((refused as oauth.ResponseBodyError).response.headers.get('content-type')).toMatch(
      /^application\/json/,
    );
  });

  it('revokes (RFC 7009) and introspects (RFC 7662) with token_type Bearer', async () => {
    const tokens = await codeFlow(client);
    const auditor = await demo.accessToken('carol', 'console', 'audit:read');
    const asAuditor: oauth.ClientAuth = (_as, _client, _body, headers) => {
      headers.set('authorization', `Bearer ${auditor}`);
    };
    const introspect = async (token: string) =>
      oauth.processIntrospectionResponse(
        as,
        client,
        await oauth.introspectionRequest(as, client, asAuditor, token, insecure),
      );
    expect(await introspect(tokens.access_token)).toMatchObject({
      active: true,
      token_type: 'Bearer',
      client_id: 'call-notes',
      sub: 'alice',
    });
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client, oauth.None(), tokens.refresh_token ?? '', insecure),
    );
    expect(await introspect(tokens.refresh_token ?? '')).toEqual({ active: false });
  });

  it('an introspection without a valid caller token is a 401 challenge, not a problem document', async () => {
    const response = await oauth.introspectionRequest(as, client, oauth.None(), 'x', insecure);
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const refused = await oauth.processIntrospectionResponse(as, client, response).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
  });

  it('DPoP (RFC 9449): a bound token from the code flow, presented with proofs at the gateway', async () => {
    const dpopClient: oauth.Client = { client_id: 'dpop-notes' };
    const DPoP = oauth.DPoP(dpopClient, await oauth.generateKeyPair('ES256'));
    const tokens = await codeFlow(dpopClient, { DPoP });
    expect(tokens.token_type).toBe('dpop');
    const url = new URL(`${demo.url}/crm/v1/accounts?limit=1`);
    const ok = await oauth.protectedResourceRequest(tokens.access_token, 'GET', url, new Headers(), null, {
      DPoP,
      ...insecure,
    });
    expect(ok.status).toBe(200);
    // Without its proof the bound token is refused with a challenge the library understands.
    const bare = await oauth
      .protectedResourceRequest(tokens.access_token, 'GET', url, new Headers(), null, insecure)
      .catch((e: unknown) => e);
    expect(bare).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    const challenges = (bare as oauth.WWWAuthenticateChallengeError).cause;
    expect(challenges.map((c) => c.scheme).sort()).toEqual(['bearer', 'dpop']);
  });
});

describe('openid-client against the broker', () => {
  it('signs in, refreshes, and learns from the gateway challenge that a revoked token is dead', async () => {
    const config = await openid.discovery(new URL(demo.url), 'call-notes', undefined, openid.None(), {
      algorithm: 'oauth2',
      execute: [openid.allowInsecureRequests],
    });
    const verifier = openid.randomPKCECodeVerifier();
    const state = openid.randomState();
    const back = await authorizationResponse(
      'call-notes',
      await openid.calculatePKCECodeChallenge(verifier),
      state,
    );
    const tokens = await openid.authorizationCodeGrant(config, back, {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.scope).toBe(scope);
    const refreshed = await openid.refreshTokenGrant(config, tokens.refresh_token ?? '');
    const url = new URL(`${demo.url}/crm/v1/accounts?limit=1`);
    expect((await openid.fetchProtectedResource(config, refreshed.access_token, url, 'GET')).status).toBe(
      200,
    );

    await openid.tokenRevocation(config, refreshed.access_token);
    let refused: unknown;
    for (let attempt = 0; attempt < 20 && refused === undefined; attempt++) {
      refused = await openid
        .fetchProtectedResource(config, refreshed.access_token, url, 'GET')
        .then(() => new Promise((resolve) => setTimeout(resolve, 50)))
        .catch((e: unknown) => e);
    }
    expect(refused).toBeInstanceOf(openid.WWWAuthenticateChallengeError);
    const [bearer] = (refused as openid.WWWAuthenticateChallengeError).cause;
    expect(bearer).toMatchObject({ scheme: 'bearer', parameters: { error: 'invalid_token' } });
  });
});
