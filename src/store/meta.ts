import type { Db } from './open.js';

export type MetaKey = 'mode' | 'idp_issuer' | 'public_url';

/** Facts about the data dir that commands run beside a server need (is it a demo, where is the IdP). */
export async function writeMeta(db: Db, values: Partial<Record<MetaKey, string>>): Promise<void> {
  for (const [key, value] of Object.entries(values)) {
    await db
      .insertInto('meta')
      .values({ key, value })
      .onConflict((c) => c.column('key').doUpdateSet({ value }))
      .execute();
  }
}

export async function readMeta(db: Db, key: MetaKey): Promise<string | undefined> {
  const row = await db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst();
  return row?.value;
}
