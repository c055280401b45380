import type { Config } from '../config/index.js';
import { ConfigError } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';
import type { Db } from '../store/index.js';
import { randomBytes } from 'node:crypto';
import { demoSeedOwners } from '../config/index.js';
import { createEmbeddedCrm } from './embedded.js';
import { createHubSpotConnector } from './hubspot/connector.js';
import { seedHubSpotFake } from './hubspot/demo.js';
import { startHubSpotFake } from './hubspot/fake.js';
import { isCrmEmpty, seedCrm } from './seed/seed.js';
import type { CrmConnector } from './types.js';

/** The connector the gateway governs, and what must stop with the server (a vendor fake in demo mode). */
export interface ConnectedCrm {
  readonly connector: CrmConnector;
  /** In demo mode on a vendor's fake: where the fake answers, for the banner and for tests. */
  readonly vendorUrl?: string;
  close(): Promise<void>;
}

export interface ConnectDeps {
  /** The store: the embedded CRM's tables, and the data a demo's vendor fake is seeded from. */
  readonly db: Db;
  readonly secrets: SecretStore;
}

/**
 * The one place that picks the CRM behind the gateway, by `crm.kind`. In demo mode a vendor kind starts
 * that vendor's fake on loopback, seeded like the embedded CRM, and points the connector at it.
 */
export async function createCrmConnector(config: Config, deps: ConnectDeps): Promise<ConnectedCrm> {
  switch (config.crm.kind) {
    case 'embedded':
      return { connector: createEmbeddedCrm(deps.db), close: async () => undefined };
    case 'hubspot':
      return connectHubSpot(config, deps);
    case 'salesforce':
      throw new ConfigError(`config: crm.kind ${config.crm.kind} is not available in this build`);
  }
}

/**
 * HubSpot through its private-app token from the secret store. In demo mode the fake starts on
 * loopback with a fresh token, filled from the embedded CRM's synthetic seed (seeded here first).
 */
async function connectHubSpot(config: Config, deps: ConnectDeps): Promise<ConnectedCrm> {
  const settings = config.crm.hubspot;
  const mapping = config.crm.mapping;
  const options = {
    dailyReserve: settings.dailyReserve,
    ownerRefreshSeconds: settings.ownerRefreshSeconds,
    properties: Object.fromEntries(Object.entries(mapping).map(([o, m]) => [o, m?.fields ?? {}])),
    objects: Object.fromEntries(
      Object.entries(mapping).flatMap(([o, m]) => (m?.object ? [[o, m.object]] : [])),
    ),
    dataClasses: Object.fromEntries(Object.entries(mapping).map(([o, m]) => [o, m?.dataClasses ?? {}])),
    token: async () => {
      const token = await deps.secrets.get(settings.tokenSecret);
      if (!token) {
        throw new ConfigError(
          `config: the HubSpot private-app token is not in the secret store as ${settings.tokenSecret}`,
        );
      }
      return Buffer.from(token).toString('utf8').trim();
    },
  };
  if (!config.demo) {
    const connector = await createHubSpotConnector({ ...options, baseUrl: settings.baseUrl });
    return { connector, close: async () => connector.close() };
  }
  const token = Buffer.from(
    await deps.secrets.putIfAbsent(settings.tokenSecret, Buffer.from(randomBytes(24).toString('base64url'))),
  ).toString('utf8');
  const fake = await startHubSpotFake({ token });
  try {
    const owners = demoSeedOwners(config);
    if (await isCrmEmpty(deps.db)) await seedCrm(deps.db, { owners });
    await seedHubSpotFake(fake, createEmbeddedCrm(deps.db), owners);
    const connector = await createHubSpotConnector({ ...options, baseUrl: fake.url });
    return {
      connector,
      vendorUrl: fake.url,
      close: async () => {
        connector.close();
        await fake.close();
      },
    };
  } catch (error) {
    await fake.close();
    throw error;
  }
}
