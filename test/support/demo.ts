import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config/index.js';
import {
  clientInfoFromApp,
  createBroker,
  jwtBearerAssertionType,
  platformScopes,
} from '../../src/broker/index.js';
import { createCatalog } from '../../src/catalog/index.js';
import { mintDevIdToken, signInAtDevIdp } from '../../src/devidp/index.js';
import { openSecretService, type SecretStore } from '../../src/secrets/index.js';
import { openGatehouseStore } from '../../src/database/index.js';
import { startGatehouse, type Gatehouse, type StartOptions } from '../../src/server/index.js';
import { dropTestDatabase, onPostgres, testDatabase } from './database.js';
import { testRedisConfig } from './redis.js';

export const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const idTokenType = 'urn:ietf:params:oauth:token-type:id_token';

export interface Demo {
  gatehouse: Gatehouse;
  url: string;
  config: Config;
  dataDir: string;
  /**
   * A development-IdP ID token for `user`, issued to `app`'s own IdP client (what token exchange at that
   * app accepts), or to Gatehouse's client at the IdP when no app is named.
   */
  idToken(user: string, app?: string): Promise<string>;
  /**
   * Exchanges the user's ID token for an access token at `clientId`; answers the raw response. The ID
   * token is issued to `clientId`'s IdP client unless `idTokenFor` names another app (or `null`:
   * Gatehouse's own client), as an attacker replaying someone else's sign-in would;
   * `authorizationDetails` is sent as RFC 9396 `authorization_details` (a capability token).
   */
  exchange(
    user: string,
    clientId: string,
    scope: string,
    options?: { idTokenFor?: string | null; authorizationDetails?: unknown; clientAssertion?: string },
  ): Promise<Response>;
  /**
   * An access token: by token exchange for an app's CRM scopes; through the console client's
   * authorization code flow (the user signing in at the development IdP) for `console` and its
   * platform scopes, which no exchange grants.
   */
  accessToken(user: string, clientId: string, scope: string): Promise<string>;
  /** A token minted by a broker whose clock is an hour behind: real key, long expired. */
  expiredAccessToken(user: string, clientId: string, scope: string): Promise<string>;
  get(path: string, token?: string): Promise<Response>;
  /** Any request; `json` is sent as an application/json body. */
  send(
    method: string,
    path: string,
    token: string | undefined,
    init?: { json?: unknown; body?: string; headers?: Record<string, string> },
  ): Promise<Response>;
  /** The server's secret store (in its database), for tests that read its keys. */
  secrets: SecretStore;
  stop(): Promise<void>;
}

/**
 * A real demo server on loopback: real SQLite (or PostgreSQL, see ./database.ts), the real development
 * IdP, real HTTP.
 */
export async function startDemo(
  options: {
    dataDir?: string;
    keepDataDir?: boolean;
    /** Config keys to set, by dotted path (`'gateway.consent.mode': 'mask'`). */
    config?: Record<string, unknown>;
    /** Options of startGatehouse, such as a wrapped connector for fault injection. */
    start?: StartOptions;
    /** The CRM behind the gateway: the embedded one (default) or a vendor's fake on loopback. */
    crm?: 'embedded' | 'salesforce' | 'hubspot';
  } = {},
): Promise<Demo> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
  const config = loadConfig({
    env: {},
    overrides: {
      // On PostgreSQL (GATEHOUSE_TEST_DATABASE_URL), the data dir's own database, and a short sequencer
      // lease: while a test blocks this process in a synchronous CLI run, the CLI can take the role over.
      ...(await testDatabase(dataDir)),
      ...(onPostgres ? { 'database.sequencerLeaseMs': 2000 } : {}),
      // With GATEHOUSE_TEST_REDIS_URL, limits, revocation notices and DPoP replays live in Redis.
      ...testRedisConfig(),
      // Detection contains (revokes, suspends, throttles) by itself: off unless a test is about it
      // (`'detect.enabled': true`), so other tests' heavy reads and probes are not contained midway.
      'detect.enabled': false,
      ...(options.crm ? { 'crm.kind': options.crm } : {}),
      ...options.config,
      dataDir,
      demo: true,
      logLevel: 'silent',
      'server.port': 0,
    },
  });
  const gatehouse = await startGatehouse(config, options.start);
  const url = gatehouse.url;
  const store = await openGatehouseStore(config);
  // The node's own key service (local, Vault or KMS as configured) over the secrets in its database.
  const { secrets, keys } = await openSecretService(config, store.db);
  const demo: Demo = {
    gatehouse,
    url,
    config,
    dataDir,
    secrets,
    idToken: (user, app) => mintDevIdToken({ config, secrets, user, issuer: `${url}/idp`, audience: app }),
    async exchange(user, clientId, scope, options = {}) {
      const app = options.idTokenFor === undefined ? clientId : (options.idTokenFor ?? undefined);
      return fetch(`${url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: tokenExchangeGrant,
          subject_token: await demo.idToken(user, app),
          subject_token_type: idTokenType,
          client_id: clientId,
          scope,
          ...(options.authorizationDetails === undefined
            ? {}
            : { authorization_details: JSON.stringify(options.authorizationDetails) }),
          ...(options.clientAssertion === undefined
            ? {}
            : { client_assertion_type: jwtBearerAssertionType, client_assertion: options.clientAssertion }),
        }),
      });
    },
    async accessToken(user, clientId, scope) {
      if (clientId === 'console' || scope.split(' ').some((s) => platformScopes.includes(s))) {
        const app = await createCatalog(store.db).findAppByClientId(clientId);
        const redirectUri = clientInfoFromApp(app)?.redirectUris?.[0] ?? '';
        const body = await signInAtDevIdp({ base: url, clientId, redirectUri, scope, user });
        return body.access_token as string;
      }
      const response = await demo.exchange(user, clientId, scope);
      const body = (await response.json()) as { access_token?: string };
      if (!response.ok || !body.access_token) {
        throw new Error(`exchange for ${user} at ${clientId} (${scope}) failed: ${JSON.stringify(body)}`);
      }
      return body.access_token;
    },
    async expiredAccessToken(user, clientId, scope) {
      const hourAgo = new Date(Date.now() - 3_600_000);
      const client = (await createCatalog(store.db).findAppByClientId(clientId))!;
      const broker = await createBroker({
        config,
        secrets,
        db: store.db,
        issuer: url,
        now: () => hourAgo,
        lookupClient: async () => ({ ...client, appId: client.id }),
        // Grants are audited or refused: this helper's past-dated mint is recorded nowhere.
        audit: { append: async () => undefined },
      });
      const subjectToken = await mintDevIdToken({
        config,
        secrets,
        user,
        issuer: `${url}/idp`,
        audience: clientId,
        now: hourAgo,
      });
      const response = await broker.exchangeToken({
        grant_type: tokenExchangeGrant,
        subject_token: subjectToken,
        subject_token_type: idTokenType,
        client_id: clientId,
        scope,
      });
      return response.access_token;
    },
    get: (path, token) =>
      fetch(`${url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {}),
    send(method, path, token, init = {}) {
      const headers: Record<string, string> = { ...(token ? { authorization: `Bearer ${token}` } : {}) };
      let body = init.body;
      if (init.json !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(init.json);
      }
      return fetch(`${url}${path}`, { method, headers: { ...headers, ...init.headers }, body });
    },
    async stop() {
      await gatehouse.close();
      await store.close();
      await keys.close();
      if (!options.keepDataDir) {
        rmSync(dataDir, { recursive: true, force: true });
        await dropTestDatabase(dataDir);
      }
    },
  };
  return demo;
}

/**
 * The secret store of the servers on `config`'s database (secrets live there), for tests that mint with
 * the development IdP's key or read a signing key of servers they spawned; close it after.
 */
export async function serverSecrets(
  config: Config,
): Promise<{ secrets: SecretStore; close(): Promise<void> }> {
  const store = await openGatehouseStore(config);
  const { secrets, keys } = await openSecretService(config, store.db);
  return {
    secrets,
    close: async () => {
      await keys.close();
      await store.close();
    },
  };
}
