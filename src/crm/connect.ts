import type { Config } from '../config/index.js';
import type { SecretStore } from '../secrets/index.js';
import type { Db, Store } from '../store/index.js';
import { createEmbeddedCrm } from './embedded.js';
import type { FieldKeys } from './field-keys.js';
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
  /** The keys of the embedded CRM's encrypted fields. */
  readonly fieldKeys: FieldKeys;
  /** Opens a store with every module's tables (the root's): a demo's vendor fake keeps its seed in one. */
  readonly openStore: (config: Config) => Promise<Store>;
  /** A background task of the connector failed (the CRM user directory's refresh). */
  readonly onBackgroundError?: (error: unknown) => void;
}

/**
 * The one place that picks the CRM behind the gateway, by `crm.kind`. In demo mode a vendor kind starts
 * that vendor's fake on loopback, seeded like the embedded CRM, and points the connector at it.
 */
export async function createCrmConnector(config: Config, deps: ConnectDeps): Promise<ConnectedCrm> {
  switch (config.crm.kind) {
    case 'embedded':
      return { connector: createEmbeddedCrm(deps.db, deps.fieldKeys), close: async () => undefined };
    case 'salesforce': {
      const { connectSalesforce } = await import('./salesforce/index.js');
      const salesforce = await connectSalesforce(config, deps.secrets, {
        openStore: deps.openStore,
        onIdentityError: deps.onBackgroundError,
      });
      return {
        connector: salesforce.connector,
        ...(salesforce.fake ? { vendorUrl: salesforce.fake.url } : {}),
        close: () => salesforce.close(),
      };
    }
    case 'hubspot': {
      const { connectHubSpot } = await import('./hubspot/index.js');
      return connectHubSpot(config, deps);
    }
  }
}
