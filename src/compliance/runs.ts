import type { Db } from '../store/index.js';
import type { PurgeManifest } from './purge.js';
import { complianceDb } from './tables.js';

/** The purge runs recorded at or after `since` (ISO 8601), oldest first, with their manifests. */
export async function purgeRunsSince(
  db: Db,
  since: string,
): Promise<Array<{ event_index: number; manifest: PurgeManifest }>> {
  const rows = await complianceDb(db)
    .selectFrom('compliance_purges')
    .selectAll()
    .where('at', '>=', since)
    .where('event_index', 'is not', null)
    .orderBy('at')
    .execute();
  return rows.map((row) => ({
    event_index: Number(row.event_index),
    manifest: JSON.parse(row.manifest) as PurgeManifest,
  }));
}
