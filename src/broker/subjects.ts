/**
 * The users Gatehouse has granted tokens to, by their immutable key (IdP issuer, `sub`) with the
 * e-mail they had then: an offboarding that names an e-mail revokes each of these subjects by key, so
 * the leaver stays refused when the IdP later sends another e-mail for them, or none.
 */
import { normaliseEmail } from '../catalog/index.js';
import type { SubjectIdentity } from './subject-token.js';
import type { BrokerDb } from './tables.js';

export async function rememberSubject(db: BrokerDb, identity: SubjectIdentity, now: number): Promise<void> {
  if (identity.issuer === undefined) return;
  const email = identity.email === undefined ? null : normaliseEmail(identity.email);
  await db
    .insertInto('broker_subjects')
    .values({ issuer: identity.issuer, sub: identity.sub, email, seen_at: now })
    .onConflict((conflict) => conflict.columns(['issuer', 'sub']).doUpdateSet({ email, seen_at: now }))
    .execute();
}
