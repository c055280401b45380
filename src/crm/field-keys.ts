import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { DependencyUnavailable } from '../errors/index.js';
import type { SecretStore } from '../secrets/index.js';
import type { Db } from '../store/index.js';

/**
 * The data keys of encrypted CRM fields. Each field has its own versioned data keys and its own blind
 * index key, all held by the key service (SecretStore: each wrapped under the master key or the KMS),
 * never in the database; the database only knows which versions exist and which one new values take.
 */

export interface FieldKeyVersion {
  readonly version: number;
  readonly state: 'active' | 'retired' | 'destroyed';
  readonly created_at: string;
  readonly retired_at: string | null;
}

export interface FieldKeys {
  /** The version new values are sealed under (the newest active one), with its key; v1 is made on first use. */
  current(object: string, field: string): Promise<{ version: number; key: Uint8Array }>;
  /** The key of one version; DEPENDENCY_UNAVAILABLE when the key service has none (or cannot answer). */
  key(object: string, field: string, version: number): Promise<Uint8Array>;
  /** The field's blind index key (never rotated: the index of every row would change with it). */
  indexKey(object: string, field: string): Promise<Uint8Array>;
  /** Makes a new version current and answers it; rows move to it by re-encryption. */
  rotate(object: string, field: string): Promise<number>;
  versions(object: string, field: string): Promise<FieldKeyVersion[]>;
  /**
   * Marks an old version retired: no new value is sealed under it, and its key still opens a value a
   * write sealed under it just before the rotation (the caller has checked no row uses it).
   */
  retire(object: string, field: string, version: number): Promise<void>;
  /** Destroys a retired version's key; the caller has checked, after the grace, that no row uses it. */
  destroy(object: string, field: string, version: number): Promise<void>;
}

interface KeyRow {
  object: string;
  field: string;
  version: number;
  state: 'active' | 'retired' | 'destroyed';
  created_at: string;
  retired_at: string | null;
}
type KeyDb = Kysely<{ crm_field_keys: KeyRow }>;

const dataKeyName = (object: string, field: string, version: number) =>
  `crm/field-keys/${object}.${field}/v${version}`;
const indexKeyName = (object: string, field: string) => `crm/field-index-keys/${object}.${field}`;

export function createFieldKeys(store: Db, secrets: SecretStore): FieldKeys {
  const db = store as unknown as KeyDb;
  // Key material never changes under a name, so a process keeps what it has read.
  const cache = new Map<string, Uint8Array>();

  const load = async (name: string, create: boolean): Promise<Uint8Array> => {
    const cached = cache.get(name);
    if (cached) return cached;
    let key: Uint8Array | undefined;
    try {
      key =
        (await secrets.get(name)) ?? (create ? await secrets.putIfAbsent(name, randomBytes(32)) : undefined);
    } catch (cause) {
      throw new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', 'the key service cannot give a field key', {
        cause,
      });
    }
    if (!key || key.length !== 32) {
      throw new DependencyUnavailable(
        'DEPENDENCY_UNAVAILABLE',
        `the key service holds no usable field key ${name}; restore it from the key service's backup`,
      );
    }
    cache.set(name, key);
    return key;
  };

  const newest = async (object: string, field: string) => {
    const row = await db
      .selectFrom('crm_field_keys')
      .select('version')
      .where('object', '=', object)
      .where('field', '=', field)
      .where('state', '=', 'active')
      .orderBy('version', 'desc')
      .executeTakeFirst();
    return row === undefined ? undefined : Number(row.version);
  };

  const addVersion = async (object: string, field: string, version: number) => {
    // The key exists before any node can learn its version, so whoever reads the version finds the key.
    await load(dataKeyName(object, field, version), true);
    const result = await db
      .insertInto('crm_field_keys')
      .values({
        object,
        field,
        version,
        state: 'active',
        created_at: new Date().toISOString(),
        retired_at: null,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
  };

  return {
    async current(object, field) {
      let version = await newest(object, field);
      if (version === undefined) {
        await addVersion(object, field, 1);
        version = (await newest(object, field)) ?? 1;
      }
      return { version, key: await load(dataKeyName(object, field, version), false) };
    },
    key: (object, field, version) => load(dataKeyName(object, field, version), false),
    indexKey: (object, field) => load(indexKeyName(object, field), true),
    async rotate(object, field) {
      // Two rotations at once: the one that loses the insert takes the next number.
      for (;;) {
        const last = await db
          .selectFrom('crm_field_keys')
          .select('version')
          .where('object', '=', object)
          .where('field', '=', field)
          .orderBy('version', 'desc')
          .executeTakeFirst();
        const version = (last === undefined ? 0 : Number(last.version)) + 1;
        if (await addVersion(object, field, version)) return version;
      }
    },
    async versions(object, field) {
      const rows = await db
        .selectFrom('crm_field_keys')
        .select(['version', 'state', 'created_at', 'retired_at'])
        .where('object', '=', object)
        .where('field', '=', field)
        .orderBy('version')
        .execute();
      return rows.map((r) => ({ ...r, version: Number(r.version) }));
    },
    async retire(object, field, version) {
      await db
        .updateTable('crm_field_keys')
        .set({ state: 'retired', retired_at: new Date().toISOString() })
        .where('object', '=', object)
        .where('field', '=', field)
        .where('version', '=', version)
        .where('state', '=', 'active')
        .execute();
    },
    async destroy(object, field, version) {
      await db
        .updateTable('crm_field_keys')
        .set({ state: 'destroyed' })
        .where('object', '=', object)
        .where('field', '=', field)
        .where('version', '=', version)
        .execute();
      const name = dataKeyName(object, field, version);
      cache.delete(name);
      await secrets.delete(name);
    },
  };
}
