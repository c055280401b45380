import { createHash } from 'node:crypto';
import { bumpControlRevision, type Db } from '../store/index.js';
import { activeVersion } from './policy-versions.js';
import { controlDb } from './tables.js';

/** The playbook in force across the nodes: its text, or undefined when none was published. */
export async function activePlaybook(database: Db): Promise<{ version: string; text: string } | undefined> {
  const db = controlDb(database);
  const version = await activeVersion(db, 'playbook');
  if (version === undefined) return undefined;
  const row = await db
    .selectFrom('control_playbooks')
    .select('text')
    .where('version', '=', version)
    .executeTakeFirst();
  return row && { version, text: row.text };
}

/**
 * Stores a playbook's text (validated by the caller) as a version (the short SHA-256 of the text, as
 * the playbook itself is versioned) and makes it the active one unless it already is. `record` runs
 * first (the audit event): a change that cannot be recorded is not made. Answers its version.
 */
export async function publishPlaybook(
  database: Db,
  text: string,
  record?: (version: string) => Promise<void>,
): Promise<string> {
  const db = controlDb(database);
  const version = createHash('sha256').update(text).digest('hex').slice(0, 12);
  if ((await activeVersion(db, 'playbook')) === version) return version;
  await record?.(version);
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('control_playbooks')
      .values({ version, text, created_at: new Date().toISOString() })
      .onConflict((c) => c.column('version').doNothing())
      .execute();
    await trx
      .insertInto('control_activations')
      .values({ kind: 'playbook', version, activated_at: new Date().toISOString() })
      .execute();
    await bumpControlRevision(trx);
  });
  return version;
}
