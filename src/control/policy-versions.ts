import type { PolicyFile } from '../policy/index.js';
import { importPolicyDir, type PolicyVersions } from '../policy-library/index.js';
import { bumpControlRevision, type Db } from '../store/index.js';
import { controlDb, type ControlDb } from './tables.js';

/** Published policy versions as rows (migration 027_control_state), the active one as activations. */
export function storedPolicyVersions(database: Db): PolicyVersions {
  const db: ControlDb = controlDb(database);
  return {
    async get(version) {
      const row = await db
        .selectFrom('control_policy_versions')
        .select(['files', 'tests'])
        .where('version', '=', version)
        .executeTakeFirst();
      return row && { files: parseFiles(row.files), tests: parseFiles(row.tests) };
    },
    async put(version, files, tests) {
      await db
        .insertInto('control_policy_versions')
        .values({
          version,
          files: JSON.stringify(files.map(({ path, text }) => ({ path, text }))),
          tests: JSON.stringify(tests.map(({ path, text }) => ({ path, text }))),
          created_at: new Date().toISOString(),
        })
        .onConflict((c) => c.column('version').doNothing())
        .execute();
    },
    active: () => activeVersion(db, 'policy'),
    async activate(version) {
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('control_activations')
          .values({ kind: 'policy', version, activated_at: new Date().toISOString() })
          .execute();
        await bumpControlRevision(trx);
      });
    },
  };
}

/** The store's policy versions, after a one-time import of the data dir's older published versions. */
export async function openPolicyVersions(db: Db, dataDir: string): Promise<PolicyVersions> {
  const versions = storedPolicyVersions(db);
  await importPolicyDir(dataDir, versions);
  return versions;
}

/** The version of `kind` activated last. */
export async function activeVersion(db: ControlDb, kind: 'policy' | 'playbook'): Promise<string | undefined> {
  const row = await db
    .selectFrom('control_activations')
    .select('version')
    .where('kind', '=', kind)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.version;
}

// Written by put() above; a row that is not such a list is refused by the library's validation.
function parseFiles(text: string): PolicyFile[] {
  const parsed = JSON.parse(text) as unknown;
  if (!Array.isArray(parsed)) return [];
  return parsed.filter(
    (f): f is PolicyFile =>
      typeof f === 'object' && f !== null && typeof f.path === 'string' && typeof f.text === 'string',
  );
}
