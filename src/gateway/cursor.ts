import { createHmac, timingSafeEqual } from 'node:crypto';
import type { CrmRecord } from '../crm/index.js';
import { InputError } from '../errors/index.js';

/**
 * The gateway's list cursors. A cursor is the connector's position after the last record the caller was
 * given, sealed with an HMAC over who asked (user and app), the object, the filter and that position: it
 * cannot be moved, shared with another caller or reused with another filter, and since a page ends on a
 * record the caller saw, it never names a record the caller may not see.
 */

/** What a cursor is bound to; any difference makes it invalid. */
export interface CursorBinding {
  readonly userId: string;
  readonly appId: string;
  readonly object: string;
  /** The filter as printed (printFilter), '' for none. */
  readonly filter: string;
}

const macLength = 43; // base64url of a 32-byte SHA-256 HMAC

function macOf(key: Uint8Array, binding: CursorBinding, position: string): string {
  const bound = JSON.stringify([binding.userId, binding.appId, binding.object, binding.filter, position]);
  return createHmac('sha256', key).update(bound).digest('base64url');
}

export function sealCursor(key: Uint8Array, binding: CursorBinding, position: string): string {
  return `${Buffer.from(position, 'utf8').toString('base64url')}${macOf(key, binding, position)}`;
}

/** The position of a cursor this gateway issued for this binding; 422 for anything else. */
export function openCursor(key: Uint8Array, binding: CursorBinding, cursor: string): string {
  if (cursor.length <= macLength) throw invalidCursor();
  const position = Buffer.from(cursor.slice(0, -macLength), 'base64url').toString('utf8');
  const expected = Buffer.from(macOf(key, binding, position));
  const given = Buffer.from(cursor.slice(-macLength));
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw invalidCursor();
  return position;
}

function invalidCursor(): InputError {
  return new InputError(
    'cursor is not one this gateway issued for this caller, list and filter; start again without a cursor',
    { parameter: 'cursor' },
  );
}

/**
 * One page of the connector from a position: the records of it the caller may see (consent leaves some
 * out), and the position after the last record fetched when more follow.
 */
export type FetchPage = (
  position: string | undefined,
  limit: number,
) => Promise<{ records: CrmRecord[]; nextCursor?: string }>;

/**
 * A page of up to `limit` records the caller may see, and the position after its last one when another
 * visible record follows. Records left out are skipped by fetching on, so the page boundary is always a
 * returned record and a page is never short while visible records remain. `leavesOut`: whether fetch may
 * leave records out; only then is a following visible record looked for (else the connector's word
 * that more follow is enough).
 */
export async function visiblePage(
  fetch: FetchPage,
  limit: number,
  start: string | undefined,
  leavesOut: boolean,
): Promise<{ records: CrmRecord[]; next?: string }> {
  const records: CrmRecord[] = [];
  let position = start;
  while (records.length < limit) {
    // Exactly as many as are missing: when the page fills, the last record fetched is the last kept.
    const page = await fetch(position, limit - records.length);
    records.push(...page.records);
    if (!page.nextCursor) return { records };
    position = page.nextCursor;
  }
  if (!leavesOut) return { records, next: position };
  // Whether a visible record follows: a cursor to an empty page would say that a hidden one exists.
  let probe: string | undefined = position;
  while (probe) {
    const page = await fetch(probe, limit);
    if (page.records.length > 0) return { records, next: position };
    probe = page.nextCursor;
  }
  return { records };
}
