import { normaliseEmail } from '../catalog/index.js';
import { brokerDb, type BrokerDb } from './tables.js';
import type { Db } from '../store/index.js';

/** An app holding access on a user's behalf: a live refresh-token family from their sign-in. */
export interface UserGrant {
  readonly app_id: string;
  readonly client_id: string;
  /** The scopes the user allowed, space-separated. */
  readonly scope: string;
  /** Epoch seconds: the app's latest sign-in or refresh (its last use of the grant). */
  readonly last_used_at: number;
  /** Epoch seconds: when the grant lapses on its own. */
  readonly expires_at: number;
}

/**
 * The grants a user can revoke ("My apps", linked from the consent page): one per app, from the
 * refresh tokens still redeemable (one per family; the newest per app names its scope and last use).
 */
export async function listUserGrants(
  db: Db | BrokerDb,
  user: { sub: string; email?: string },
  nowSeconds: number,
): Promise<UserGrant[]> {
  const email = user.email === undefined ? undefined : normaliseEmail(user.email);
  const rows = await brokerDb(db)
    .selectFrom('broker_refresh_tokens')
    .select(['app_id', 'client_id', 'scope', 'created_at', 'family_expires_at', 'expires_at'])
    .where((eb) =>
      eb.or([
        eb('sub', '=', user.sub),
        // As revokeAll matches them: an address stored in another case is still this user's.
        ...(email === undefined ? [] : [eb('email', '=', email), eb(eb.fn('lower', ['email']), '=', email)]),
      ]),
    )
    .where('revoked_at', 'is', null)
    .where('used_at', 'is', null)
    .where('expires_at', '>', nowSeconds)
    .where('family_expires_at', '>', nowSeconds)
    .orderBy('created_at', 'asc')
    .execute();
  const byApp = new Map<string, UserGrant>();
  for (const row of rows) {
    const held = byApp.get(row.app_id);
    const expiresAt = Math.min(row.expires_at, row.family_expires_at);
    byApp.set(row.app_id, {
      app_id: row.app_id,
      client_id: row.client_id,
      scope: row.scope,
      last_used_at: row.created_at,
      expires_at: Math.max(held?.expires_at ?? 0, expiresAt),
    });
  }
  return [...byApp.values()];
}
