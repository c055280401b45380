import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { KeyService } from './key-service.js';
import { keyServiceEnvelopes, namePattern, type EnvelopeKeeper, type SecretStore } from './local.js';

/** The `secrets` table (migration 026_secrets): one row per version of a secret, never updated. */
interface SecretTables {
  secrets: {
    name: string;
    version: number;
    /** The envelope's JSON text; null for a tombstone (the secret was deleted at this version). */
    envelope: string | null;
    created_at: string;
  };
}

const where = 'the database';

/**
 * Secrets in the database, so that nodes with separate, empty data dirs share them: each a sealed
 * envelope (the master key never reaches the database). Versions are only ever added; the first writer
 * of a version wins (the primary key), which keeps `putIfAbsent` first-writer-wins across nodes.
 */
export function openStoredSecretStore(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: only `secrets` is used
  database: Kysely<any>,
  envelopes: EnvelopeKeeper,
): SecretStore {
  const db = database as Kysely<SecretTables>;
  const checked = (name: string) => {
    if (!namePattern.test(name)) throw new TypeError(`invalid secret name ${JSON.stringify(name)}`);
    return name;
  };
  const latest = (name: string) =>
    db
      .selectFrom('secrets')
      .select(['version', 'envelope'])
      .where('name', '=', name)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
  const add = (name: string, version: number, envelope: string | null) =>
    db
      .insertInto('secrets')
      .values({ name, version, envelope, created_at: new Date().toISOString() })
      .onConflict((c) => c.columns(['name', 'version']).doNothing())
      .execute();

  return {
    async get(name) {
      const row = await latest(checked(name));
      return row?.envelope == null ? undefined : await envelopes.open(name, row.envelope, where);
    },
    async putIfAbsent(name, value) {
      checked(name);
      // Two rounds at most: a concurrent writer of the same version wins, and its value is read back.
      for (let round = 0; round < 2; round++) {
        const row = await latest(name);
        if (row?.envelope != null) return envelopes.open(name, row.envelope, where);
        await add(name, Number(row?.version ?? 0) + 1, await envelopes.seal(name, value));
      }
      const row = await latest(name);
      if (row?.envelope == null) throw new Error(`secrets: ${name} was deleted while it was being stored`);
      return envelopes.open(name, row.envelope, where);
    },
    async delete(name) {
      const row = await latest(checked(name));
      if (row?.envelope != null) await add(name, Number(row.version) + 1, null);
    },
    async list(prefix) {
      const rows = await db
        .selectFrom('secrets')
        .select(['name', 'version', 'envelope'])
        .orderBy('name')
        .orderBy('version')
        .execute();
      const live = new Map<string, boolean>();
      for (const row of rows) live.set(row.name, row.envelope !== null);
      return [...live].filter(([name, present]) => present && name.startsWith(prefix)).map(([name]) => name);
    },
  };
}

/**
 * Copies the secret files of a data dir from before secrets lived in the database (`<dataDir>/secrets`)
 * into the table, each as its first version, unless the table knows the name already (a later version,
 * or a tombstone: a deleted secret stays deleted). Envelopes move as they are, so they need the master
 * key they were sealed with. Idempotent; answers the names copied.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: only `secrets` is used
export async function importSecretFiles(database: Kysely<any>, dataDir: string): Promise<string[]> {
  const db = database as Kysely<SecretTables>;
  const dir = join(dataDir, 'secrets');
  if (!existsSync(dir)) return [];
  const known = new Set(
    (await db.selectFrom('secrets').select('name').distinct().execute()).map((r) => r.name),
  );
  const copied: string[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.json')) continue;
    // A file is named after its secret with `/` written as `__` (openLocalSecretStore).
    const name = file.slice(0, -'.json'.length).replaceAll('__', '/');
    if (!namePattern.test(name) || known.has(name)) continue;
    await db
      .insertInto('secrets')
      .values({
        name,
        version: 1,
        envelope: readFileSync(join(dir, file), 'utf8'),
        created_at: new Date().toISOString(),
      })
      .onConflict((c) => c.columns(['name', 'version']).doNothing())
      .execute();
    copied.push(name);
  }
  return copied;
}

/**
 * The secret store of a node: the database's, its data keys wrapped by the key service (the master key
 * from GATEHOUSE_MASTER_KEY or a key file, Vault or KMS), after a one-time import of the data dir's
 * older secret files.
 */
export async function openSecretStore(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: only `secrets` is used
  db: Kysely<any>,
  dataDir: string,
  keys: KeyService,
): Promise<SecretStore> {
  await importSecretFiles(db, dataDir);
  return openStoredSecretStore(db, keyServiceEnvelopes(keys));
}
