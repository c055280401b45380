import type { Kysely } from 'kysely';
import type { Config } from '../config/index.js';
import { ConfigError, KeyServiceUnavailable } from '../errors/index.js';
import {
  createLocalKeyService,
  loadMasterKey,
  masterKeyBesideData,
  masterKeyFile,
  type KeyService,
} from './key-service.js';
import { createKmsKeyService, kmsCredentialsFromEnv } from './kms.js';
import type { SecretStore } from './local.js';
import { openSecretStore } from './stored.js';
import { createVaultKeyService, type VaultKeyService } from './vault.js';

/** The secret store, the key service that wraps its keys, and what an operator should be warned of at start. */
export interface SecretService {
  readonly secrets: SecretStore;
  readonly keys: KeyService;
  readonly warning?: string;
}

/**
 * The key service `secrets.keyService` names, and the secret store in the database over it (nodes with
 * separate data dirs share it); `vault:` references in the CRM settings are read from Vault KV v2 at
 * run time, never stored.
 */
export async function openSecretService(
  config: Config,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: only `secrets` is used
  db: Kysely<any>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<SecretService> {
  const settings = config.secrets.keyService;
  const problem = referenceProblem(config);
  if (problem) throw new ConfigError(problem);
  switch (settings.kind) {
    case 'local': {
      const fromEnv = env.GATEHOUSE_MASTER_KEY;
      const file = masterKeyFile(config.dataDir, settings.masterKeyFile);
      const { key, source } = loadMasterKey(file, fromEnv);
      const keys = createLocalKeyService(key, source);
      const warning = fromEnv ? undefined : masterKeyBesideData(config.dataDir, file);
      return {
        secrets: await openSecretStore(db, config.dataDir, keys),
        keys,
        ...(warning ? { warning } : {}),
      };
    }
    case 'vault': {
      const keys = createVaultKeyService(settings);
      return {
        secrets: withVaultReferences(await openSecretStore(db, config.dataDir, keys), keys),
        keys,
      };
    }
    case 'kms': {
      const keys = createKmsKeyService({ ...settings, credentials: kmsCredentialsFromEnv(env) });
      return { secrets: await openSecretStore(db, config.dataDir, keys), keys };
    }
  }
}

/**
 * Start-up's check: a node whose key service cannot wrap and unwrap does not start (fail closed), with
 * one line saying which backend and why.
 */
export async function requireKeyService(keys: KeyService): Promise<string> {
  try {
    return await keys.check();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new KeyServiceUnavailable(`cannot start: ${reason}`, { cause: error });
  }
}

const isReference = (name: string) => name.startsWith('vault:');

/** A `vault:` credential reference in the CRM settings without Vault as the key service. */
export function referenceProblem(config: Config): string | undefined {
  if (config.secrets.keyService.kind === 'vault') return undefined;
  const settings = [
    ['crm.salesforce.privateKeySecret', config.crm.salesforce.privateKeySecret],
    ['crm.hubspot.tokenSecret', config.crm.hubspot.tokenSecret],
  ] as const;
  const found = settings.find(([, value]) => isReference(value));
  return found && `config: ${found[0]} is a Vault reference, so secrets.keyService.kind must be vault`;
}

/**
 * Names starting with `vault:` are read from Vault KV v2 on every use (a rotation in Vault takes effect
 * at once) and never written here: `putIfAbsent` answers what Vault holds, or says to store it there.
 */
function withVaultReferences(store: SecretStore, vault: VaultKeyService): SecretStore {
  return {
    async get(name) {
      return isReference(name) ? vault.readReference(name) : store.get(name);
    },
    async putIfAbsent(name, value) {
      if (!isReference(name)) return store.putIfAbsent(name, value);
      const held = await vault.readReference(name);
      if (!held) throw new ConfigError(`secrets: Vault holds nothing at ${name}; write it there first`);
      return held;
    },
    delete: (name) => store.delete(name),
    list: (prefix) => store.list(prefix),
  };
}
