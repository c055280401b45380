import { InputError } from '../errors/index.js';
import type { CrmObject } from './types.js';

/**
 * Keyset cursors: the last id of a page, with the object it belongs to, as base64url. Opaque to
 * clients, but not secret: the row filter is applied again on every page, so a forged cursor can only
 * move the starting point, never widen what is visible.
 */

const version = 'c1';

export function encodeCursor(object: CrmObject, lastId: string): string {
  return Buffer.from(`${version}:${object}:${lastId}`, 'utf8').toString('base64url');
}

/** The id after which the page starts; an InputError for anything this connector did not issue. */
export function decodeCursor(object: CrmObject, cursor: string): string {
  // Attacker-controlled: bound the length before decoding, and accept only the exact shape we issue.
  if (typeof cursor !== 'string' || cursor.length > 256 || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw invalid();
  }
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^c1:([a-z]+):([0-9A-Za-z]{1,64})$/.exec(text);
  if (!match || match[1] !== object || encodeCursor(object, match[2] as string) !== cursor) throw invalid();
  return match[2] as string;
}

function invalid(): InputError {
  return new InputError('cursor is not valid for this list; start again without a cursor', {
    parameter: 'cursor',
  });
}
