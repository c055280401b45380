import { randomInt } from 'node:crypto';

/**
 * Salesforce-style record ids: a 3-character key prefix per object (001 account, 003 contact, 006
 * opportunity, 002 note) and 12 base-62 characters, 15 in all. Base 62 in ASCII order keeps the
 * fixed-width seeded ids in creation order under a binary collation.
 */

const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const bodyLength = 12;

/** Ids of seeded records: deterministic, sequential, marked `0S` (seed) after the prefix. */
export function seededId(prefix: string, n: number): string {
  let body = '';
  let rest = n;
  do {
    body = alphabet[rest % 62] + body;
    rest = Math.floor(rest / 62);
  } while (rest > 0);
  return prefix + '0S' + body.padStart(bodyLength - 2, '0');
}

/** Ids of created records: 12 random base-62 characters (~71 bits), never starting with `0S`. */
export function randomId(prefix: string): string {
  let body = alphabet[randomInt(1, 62)] as string;
  for (let i = 1; i < bodyLength; i++) body += alphabet[randomInt(62)];
  return prefix + body;
}

const idPattern = /^[0-9A-Za-z]{15}$|^[0-9A-Za-z]{18}$/;

/** Whether `value` is shaped like an id of the object with `prefix` (15 or 18 characters). */
export function isIdOf(prefix: string, value: string): boolean {
  return idPattern.test(value) && value.startsWith(prefix);
}
