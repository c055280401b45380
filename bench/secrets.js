import { openSecretService } from '../dist/secrets/index.js';
import { openGatehouseStore } from '../dist/database/index.js';

/** Runs `work` with the secrets of the node on `config` (in its database, under its key service). */
export async function withNodeSecrets(config, work) {
  const store = await openGatehouseStore(config);
  try {
    const { secrets, keys } = await openSecretService(config, store.db);
    try {
      return await work(secrets);
    } finally {
      await keys.close();
    }
  } finally {
    await store.close();
  }
}

/** The node's secret store for a run that keeps no store open: each call opens it briefly. */
export function nodeSecrets(config) {
  return {
    get: (name) => withNodeSecrets(config, (secrets) => secrets.get(name)),
    putIfAbsent: (name, value) => withNodeSecrets(config, (secrets) => secrets.putIfAbsent(name, value)),
    delete: (name) => withNodeSecrets(config, (secrets) => secrets.delete(name)),
    list: (prefix) => withNodeSecrets(config, (secrets) => secrets.list(prefix)),
  };
}
