import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { demoSeedOwners, type Config } from '../../config/index.js';
import { ConfigError } from '../../errors/index.js';
import type { ConnectDeps, ConnectedCrm } from '../connect.js';
import { createEmbeddedCrm } from '../embedded.js';
import { isCrmEmpty, seedCrm } from '../seed/seed.js';
import { crmDispatcher } from '../tls.js';
import { createHubSpotConnector, type HubSpotOptions } from './connector.js';
import { seedHubSpotFake } from './demo.js';
import { startHubSpotFake, type HubSpotFake } from './fake.js';

/**
 * HubSpot from configuration: `crm.hubspot` and `crm.mapping`, the private app's token from the secret
 * store. In demo mode the portal is the fake on loopback with a token made on first start (kept in the
 * secret store like a real one), filled from the synthetic seed of its own SQLite store next to
 * Gatehouse's; the fake keeps changes in memory, so a restart starts from the seed again.
 */
export async function connectHubSpot(config: Config, deps: ConnectDeps): Promise<ConnectedCrm> {
  const settings = config.crm.hubspot;
  const dispatcher = crmDispatcher(config.crm.caFile);
  const options: Omit<HubSpotOptions, 'baseUrl'> = {
    dailyReserve: settings.dailyReserve,
    ownerRefreshSeconds: settings.ownerRefreshSeconds,
    timeoutMs: settings.timeoutMs,
    ...(dispatcher ? { dispatcher } : {}),
    ...(deps.onBackgroundError ? { onRefreshError: deps.onBackgroundError } : {}),
    ...mappingOptions(config),
    async token() {
      const token = await deps.secrets.get(settings.tokenSecret);
      if (!token) {
        throw new ConfigError(
          `the HubSpot private-app token is not in the secret store as ${settings.tokenSecret}; store it there (README "Connecting HubSpot")`,
        );
      }
      return Buffer.from(token).toString('utf8').trim();
    },
  };
  if (!config.demo) {
    const connector = await createHubSpotConnector({ ...options, baseUrl: settings.baseUrl });
    return { connector, close: async () => connector.close() };
  }
  const token = await deps.secrets.putIfAbsent(
    settings.tokenSecret,
    Buffer.from(`pat-demo-${randomBytes(24).toString('base64url')}`),
  );
  const fake = await startDemoPortal(config, Buffer.from(token).toString('utf8'), deps.openStore);
  try {
    const connector = await createHubSpotConnector({ ...options, baseUrl: fake.url });
    return {
      connector,
      vendorUrl: fake.url,
      async close() {
        connector.close();
        await fake.close();
      },
    };
  } catch (error) {
    await fake.close();
    throw error;
  }
}

/** `crm.mapping` as the connector's options: property names, object types and data classes per object. */
function mappingOptions(config: Config): Pick<HubSpotOptions, 'properties' | 'objects' | 'dataClasses'> {
  const entries = Object.entries(config.crm.mapping);
  return {
    properties: Object.fromEntries(entries.map(([object, m]) => [object, m?.fields ?? {}])),
    objects: Object.fromEntries(entries.flatMap(([object, m]) => (m?.object ? [[object, m.object]] : []))),
    dataClasses: Object.fromEntries(entries.map(([object, m]) => [object, m?.dataClasses ?? {}])),
  };
}

/** The demo portal: the fake, filled from a seeded SQLite store of its own. */
async function startDemoPortal(
  config: Config,
  token: string,
  openStore: ConnectDeps['openStore'],
): Promise<HubSpotFake> {
  const store = await openStore({
    ...config,
    dataDir: join(config.dataDir, 'hubspot-fake'),
    database: { ...config.database, url: undefined },
  });
  const fake = await startHubSpotFake({ token });
  try {
    const owners = demoSeedOwners(config);
    if (await isCrmEmpty(store.db)) await seedCrm(store.db, { owners });
    await seedHubSpotFake(fake, createEmbeddedCrm(store.db), owners);
    return fake;
  } catch (error) {
    await fake.close();
    throw error;
  } finally {
    await store.close();
  }
}
