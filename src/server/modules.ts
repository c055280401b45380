/**
 * The one wiring of the domain modules from configuration, for `serve` and for every CLI command alike:
 * a command reads the CRM the deployment is configured for, and writes the same audit log, as the
 * server does. What differs by role is only what a cluster shares: a serving node competes for the
 * audit sequencer on PostgreSQL; a CLI process never takes a cluster role.
 */
import { auditOrigin, openAuditLog, type AuditLog, type AuditLogOptions } from '../audit/index.js';
import { createCatalog, type Catalog } from '../catalog/index.js';
import type { Config } from '../config/index.js';
import { createCrmConnector, createFieldKeys, type ConnectedCrm, type FieldKeys } from '../crm/index.js';
import { createPolicyCaches, type PolicyCaches } from '../policy/index.js';
import { openSecretService, type KeyService, type SecretStore } from '../secrets/index.js';
import type { Db, Store } from '../store/index.js';
import { openGatehouseStore } from '../database/index.js';

/** Who the modules are built for: a serving node, or one CLI command's process. */
export type ModulesRole = 'serve' | 'cli';

export interface ModulesOptions {
  readonly role: ModulesRole;
  /** Failures of background work: checkpoint signing, the CRM user directory's refresh. */
  readonly onBackgroundError?: (what: 'audit' | 'crm', error: unknown) => void;
  /** serve on PostgreSQL: what this node says about the audit sequencer role (taken, lost). */
  readonly onSequencerChange?: (leading: boolean) => void;
  /** serve: whether closing signs a final checkpoint; false in the workers of `serve --workers N`. */
  readonly finalCheckpoint?: boolean;
}

export interface GatehouseModules {
  readonly config: Config;
  readonly role: ModulesRole;
  readonly store: Store;
  readonly secrets: SecretStore;
  /** The key service that wraps the secrets' keys (local, Vault or KMS). */
  readonly keys: KeyService;
  /** What an operator should hear at start about where the keys live (a master key beside the data). */
  readonly keysWarning?: string;
  readonly catalog: Catalog;
  /** The keys of the embedded CRM's fields encrypted at rest. */
  readonly fieldKeys: FieldKeys;
  /** The runtime policy's decision caches: this module set's own, never another's (tests, workers). */
  readonly policyCaches: PolicyCaches;
  /** The configured CRM (embedded, Salesforce or HubSpot), connected on first use. */
  crm(): Promise<ConnectedCrm>;
  /** The audit log, opened on first use (a checkpoint key load and an integrity check). */
  audit(): Promise<AuditLog>;
  /** Closes what was opened, newest first: the audit log (a final checkpoint), the CRM, the store. */
  close(): Promise<void>;
}

/** Builds the modules a role needs from configuration; the CRM and the audit log open when first asked. */
export async function openGatehouseModules(
  config: Config,
  options: ModulesOptions,
): Promise<GatehouseModules> {
  const store = await openGatehouseStore(config);
  let service: Awaited<ReturnType<typeof openSecretService>>;
  try {
    service = await openSecretService(config, store.db);
  } catch (error) {
    await store.close();
    throw error;
  }
  const { secrets, keys, warning: keysWarning } = service;
  const fieldKeys = createFieldKeys(store.db, secrets);
  let crm: Promise<ConnectedCrm> | undefined;
  let audit: Promise<AuditLog> | undefined;
  let closing: Promise<void> | undefined;
  const report = (what: 'audit' | 'crm') =>
    options.onBackgroundError && ((error: unknown) => options.onBackgroundError?.(what, error));
  return {
    config,
    role: options.role,
    store,
    secrets,
    keys,
    ...(keysWarning !== undefined && { keysWarning }),
    catalog: createCatalog(store.db),
    fieldKeys,
    policyCaches: createPolicyCaches(),
    crm: () =>
      (crm ??= createCrmConnector(config, {
        db: store.db,
        secrets,
        fieldKeys,
        openStore: openGatehouseStore,
        onBackgroundError: report('crm'),
      }).then(closingOnce)),
    audit: () =>
      (audit ??= openAuditLog(
        auditLogOptions(config, options.role, {
          db: store.db,
          secrets,
          onBackgroundError: report('audit'),
          onSequencerChange: options.onSequencerChange,
          finalCheckpoint: options.finalCheckpoint,
        }),
      )),
    close: () =>
      (closing ??= (async () => {
        try {
          await (await audit?.catch(() => undefined))?.close();
          await (await crm?.catch(() => undefined))?.close();
        } finally {
          await keys.close();
          await store.close();
        }
      })()),
  };
}

/**
 * How each role opens the audit log. A serving node signs on the configured schedule, asks the
 * witnesses and competes for the sequencer; a CLI process appends as a client (AuditLogOptions.role)
 * and signs its final checkpoint unwitnessed, as commands always have.
 */
export function auditLogOptions(
  config: Config,
  role: ModulesRole,
  deps: {
    db: Db;
    secrets: SecretStore;
    onBackgroundError?: (error: unknown) => void;
    onSequencerChange?: (leading: boolean) => void;
    finalCheckpoint?: boolean;
  },
): AuditLogOptions {
  const base = { db: deps.db, secrets: deps.secrets, origin: auditOrigin };
  if (role === 'cli') return { ...base, role: 'client' };
  return {
    ...base,
    ...(deps.onBackgroundError && { onBackgroundError: deps.onBackgroundError }),
    checkpointIntervalMs: config.audit.checkpointInterval,
    witnessing: {
      witnesses: config.audit.witnesses,
      ...(config.audit.witnessQuorum !== undefined && { quorum: config.audit.witnessQuorum }),
    },
    sequencerLeaseMs: config.database.sequencerLeaseMs,
    ...(deps.onSequencerChange && { onSequencerChange: deps.onSequencerChange }),
    ...(deps.finalCheckpoint !== undefined && { finalCheckpoint: deps.finalCheckpoint }),
    role: 'node',
  };
}

/** The connector with a close that runs once, whoever asks first (the server's shutdown or the root's). */
function closingOnce(connected: ConnectedCrm): ConnectedCrm {
  let closed: Promise<void> | undefined;
  return { ...connected, close: () => (closed ??= connected.close()) };
}
