import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { demoSeedOwners, type Config } from '../../config/index.js';
import { ConfigError } from '../../errors/index.js';
import type { SecretStore } from '../../secrets/index.js';
import type { Store } from '../../store/index.js';
import { isCrmEmpty, seedCrm } from '../seed/seed.js';
import { crmDispatcher } from '../tls.js';
import { createSalesforceClient } from './client.js';
import { createSalesforceCrm, type SalesforceConnector } from './connector.js';
import { startSalesforceFake, type SalesforceFake } from './fake.js';
import { createIdentityDirectory } from './identity.js';

/**
 * The Salesforce connector from configuration: the connected app's consumer key and integration user
 * from `crm.salesforce`, its private key from the secret store. In demo mode without a connected app
 * configured the org is the fake on loopback, with a key pair made for it on first start and kept in
 * the secret store like a real one.
 */

export { createSalesforceClient, type SalesforceClient } from './client.js';
export { createSalesforceCrm, type SalesforceConnector } from './connector.js';
export { startSalesforceFake, type SalesforceFake, type SalesforceFakeOptions } from './fake.js';
export { soqlLiteral } from './soql.js';
export { createIdentityDirectory, type IdentityDirectory } from './identity.js';

/** The demo org's connected app and integration user (the bench calls the fake directly as them). */
export const demoConnectedApp = {
  clientId: 'gatehouse-demo-connected-app',
  username: 'gatehouse-integration@example.com',
} as const;
const { clientId: demoClientId, username: demoUsername } = demoConnectedApp;
/** A demo is not a developer org: its allowance leaves room for the bench and the simulated day. */
const demoDailyLimit = 5_000_000;

export async function connectSalesforce(
  config: Config,
  secrets: SecretStore,
  options: {
    /** Opens the demo org's own store (ConnectDeps.openStore). */
    openStore: (config: Config) => Promise<Store>;
    onIdentityError?: (error: unknown) => void;
  },
): Promise<{ connector: SalesforceConnector; fake?: SalesforceFake; close(): Promise<void> }> {
  const settings = config.crm.salesforce;
  const keyName = settings.privateKeySecret;
  const dispatcher = crmDispatcher(config.crm.caFile);
  let fake: SalesforceFake | undefined;
  let closeFake = async () => undefined as void;
  let login = { loginUrl: settings.loginUrl, clientId: settings.clientId, username: settings.username };
  // A demo with a connected app configured talks to that org; otherwise to the fake.
  if (config.demo && !settings.clientId) {
    const pem = await secrets.putIfAbsent(keyName, Buffer.from(demoKeyPem()));
    const started = await startDemoOrg(
      config,
      createPublicKey(createPrivateKey(Buffer.from(pem))),
      options.openStore,
    );
    fake = started.fake;
    closeFake = started.close;
    login = { loginUrl: fake.url, clientId: demoClientId, username: demoUsername };
  }
  if (!login.clientId || !login.username) {
    throw new ConfigError(
      'config: crm.salesforce.clientId and crm.salesforce.username are required for crm.kind salesforce',
    );
  }
  const client = createSalesforceClient({
    loginUrl: login.loginUrl,
    apiVersion: settings.apiVersion,
    clientId: login.clientId,
    username: login.username,
    timeoutMs: settings.timeoutMs,
    dailyReservePercent: settings.dailyReservePercent,
    ...(dispatcher ? { dispatcher } : {}),
    async privateKey() {
      const pem = await secrets.get(keyName);
      if (!pem) {
        throw new ConfigError(
          `the connected app's private key is not in the secret store as ${keyName}; run gatehouse crm key import`,
        );
      }
      return createPrivateKey(Buffer.from(pem));
    },
  });
  const directory = createIdentityDirectory(client, {
    match: settings.identityMatch,
    refreshSeconds: settings.identityRefreshSeconds,
    ...(options.onIdentityError ? { onError: options.onIdentityError } : {}),
  });
  const close = async () => {
    directory.stop();
    await closeFake();
  };
  try {
    await directory.refresh();
    const connector = await createSalesforceCrm(client, config.crm, directory);
    return { connector, ...(fake ? { fake } : {}), close };
  } catch (error) {
    await close();
    throw error;
  }
}

function demoKeyPem(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The demo org: its own SQLite store next to Gatehouse's, seeded like the embedded CRM. */
async function startDemoOrg(
  config: Config,
  publicKey: ReturnType<typeof createPublicKey>,
  openStore: (config: Config) => Promise<Store>,
): Promise<{ fake: SalesforceFake; close(): Promise<void> }> {
  const store = await openStore({
    ...config,
    dataDir: join(config.dataDir, 'salesforce-fake'),
    database: { ...config.database, url: undefined },
  });
  try {
    const owners = demoSeedOwners(config);
    if (await isCrmEmpty(store.db)) await seedCrm(store.db, { owners });
    const fake = await startSalesforceFake({
      db: store.db,
      clientId: demoClientId,
      username: demoUsername,
      publicKey,
      dailyLimit: demoDailyLimit,
      users: Object.values(config.demoUsers).map((user) => ({
        email: user.email,
        ...(user.territory ? { territory: user.territory } : {}),
      })),
    });
    return {
      fake,
      async close() {
        await fake.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
