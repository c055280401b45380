import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Broker,
  createCrmClient,
  FieldNotAllowed,
  RotatingTokens,
  TokenRevoked,
  type TokenSet,
} from '../packages/sdk/src/index.js';
import { redeemCodeFlow } from './support/broker.js';
import { startDemo, type Demo } from './support/demo.js';

// @gatehouse/sdk against a real demo: the broker's rotation, the gateway's refusals, typed.
const redirectUri = 'http://localhost:5173/callback';
const scope = 'read:account.basic read:contact.basic';

let demo: Demo;
let broker: Broker;

beforeAll(async () => {
  demo = await startDemo();
  broker = await Broker.discover({ issuer: demo.url, clientId: 'call-notes' });
});

afterAll(async () => {
  await demo?.stop();
});

async function signedIn(): Promise<TokenSet> {
  const response = await redeemCodeFlow({ base: demo.url, redirectUri, scope });
  const answer = (await response.json()) as { access_token: string; refresh_token: string };
  return {
    accessToken: answer.access_token,
    refreshToken: answer.refresh_token,
    expiresAt: Date.now() + 60_000,
  };
}

describe('@gatehouse/sdk against the demo', () => {
  it('a sign-in narrowed to accounts asks for a crm_accounts capability the broker accepts', async () => {
    const url = await broker.authorizationUrl({
      redirectUri,
      scope,
      state: 'state-1',
      codeVerifier: 'v'.repeat(43),
      accountIds: ['acc_1', 'acc_2'],
    });
    expect(JSON.parse(url.searchParams.get('authorization_details') ?? '')).toEqual([
      { type: 'crm_accounts', account_ids: ['acc_1', 'acc_2'] },
    ]);
    const answer = await fetch(url, { redirect: 'manual' });
    expect(answer.status).toBe(303);
    // On to the IdP's sign-in, not back to the app with an error.
    expect(new URL(answer.headers.get('location') ?? '').pathname).toMatch(/^\/idp\//);
  });

  it('concurrent calls with an expired token refresh once; the rotated family stays alive', async () => {
    const initial = await signedIn();
    let refreshes = 0;
    const tokens = new RotatingTokens({ ...initial, expiresAt: 0 }, async (refreshToken) => {
      refreshes += 1;
      return broker.refresh(refreshToken);
    });
    const crm = createCrmClient({ baseUrl: demo.url, tokens, request: broker.resourceOptions() });
    const pages = await Promise.all(
      Array.from({ length: 5 }, () => crm.GET('/crm/v1/accounts', { params: { query: { limit: 1 } } })),
    );
    for (const page of pages) expect(page.data?.records).toHaveLength(1);
    expect(refreshes).toBe(1);
    // Had the SDK used the first refresh token twice, the broker would have revoked the family.
    const next = await broker.refresh(tokens.current.refreshToken ?? '');
    expect(next.accessToken).toMatch(/^ey/);
  });

  it('a field outside the scopes is a FieldNotAllowed naming it', async () => {
    const tokens = new RotatingTokens(await signedIn(), (rt) => broker.refresh(rt));
    const crm = createCrmClient({ baseUrl: demo.url, tokens, request: broker.resourceOptions() });
    const refused = await crm
      .GET('/crm/v1/contacts', { params: { query: { fields: ['email'], limit: 1 } } })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(FieldNotAllowed);
    expect((refused as FieldNotAllowed).fields).toEqual(['email']);
    expect((refused as FieldNotAllowed).requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a revoked sign-in is a TokenRevoked, and the SDK does not try to refresh it', async () => {
    const initial = await signedIn();
    let refreshes = 0;
    const tokens = new RotatingTokens(initial, async (rt) => {
      refreshes += 1;
      return broker.refresh(rt);
    });
    const crm = createCrmClient({ baseUrl: demo.url, tokens, request: broker.resourceOptions() });
    await broker.revoke(initial.refreshToken ?? '');
    let refused: unknown;
    for (let attempt = 0; attempt < 20 && !(refused instanceof TokenRevoked); attempt++) {
      refused = await crm
        .GET('/crm/v1/accounts', { params: { query: { limit: 1 } } })
        .then(() => new Promise((resolve) => setTimeout(resolve, 50)))
        .catch((e: unknown) => e);
    }
    expect(refused).toBeInstanceOf(TokenRevoked);
    expect(refreshes).toBe(0);
  });
});
