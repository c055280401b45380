import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/**
 * Field-level encryption of one value: pure functions, keys passed in. A sealed value is text, so it
 * sits in the field's own column on SQLite and PostgreSQL alike:
 * `fle1.<key version>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The associated data binds it to the
 * object, the record, the field and the key version, so a ciphertext copied to another record or field,
 * or relabelled with another version, fails to open.
 */

export const sealedPrefix = 'fle1.';
const nonceBytes = 12;
const tagBytes = 16;
/** 16 bytes of HMAC-SHA256: equality lookups need no more, and less tells an attacker less. */
const blindIndexBytes = 16;

export interface FieldAddress {
  readonly object: string;
  readonly id: string;
  readonly field: string;
}

export function isSealed(stored: string): boolean {
  return stored.startsWith(sealedPrefix);
}

/** The key version a sealed value names; undefined for anything else (a plain value from before encryption). */
export function sealedVersion(stored: string): number | undefined {
  if (!isSealed(stored)) return undefined;
  const end = stored.indexOf('.', sealedPrefix.length);
  const version = Number(stored.slice(sealedPrefix.length, end));
  return end > 0 && Number.isSafeInteger(version) && version > 0 ? version : undefined;
}

/** The SQL LIKE pattern of values sealed under `version` (neither `.` nor digits are LIKE wildcards). */
export function sealedPattern(version: number): string {
  return `${sealedPrefix}${version}.%`;
}

function associatedData(at: FieldAddress, version: number): Buffer {
  return Buffer.from(JSON.stringify(['gatehouse-crm-field', at.object, at.id, at.field, version]));
}

/** AES-256-GCM with a random 96-bit nonce. */
export function sealValue(key: Uint8Array, version: number, at: FieldAddress, plain: string): string {
  const nonce = randomBytes(nonceBytes);
  const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(associatedData(at, version));
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return `${sealedPrefix}${version}.${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url')}`;
}

/** The plain value; throws when the key, the address or the text does not match what was sealed. */
export function openValue(key: Uint8Array, at: FieldAddress, stored: string): string {
  const version = sealedVersion(stored);
  if (version === undefined) throw new TypeError('not a sealed field value');
  const raw = Buffer.from(stored.slice(stored.indexOf('.', sealedPrefix.length) + 1), 'base64url');
  if (raw.length < nonceBytes + tagBytes) throw new TypeError('sealed field value is truncated');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, nonceBytes)).setAAD(
    associatedData(at, version),
  );
  decipher.setAuthTag(raw.subarray(raw.length - tagBytes));
  return Buffer.concat([
    decipher.update(raw.subarray(nonceBytes, raw.length - tagBytes)),
    decipher.final(),
  ]).toString('utf8');
}

/**
 * The keyed blind index of a value: HMAC-SHA256 under the field's own index key (never the data key),
 * bound to object and field, truncated. Equal values give equal indexes; nothing else can be learnt
 * without the key.
 */
export function blindIndexOf(key: Uint8Array, object: string, field: string, plain: string): string {
  return createHmac('sha256', key)
    .update(JSON.stringify([object, field, plain]))
    .digest()
    .subarray(0, blindIndexBytes)
    .toString('base64url');
}

/** The column beside an encrypted field that holds its blind index. */
export function blindIndexColumn(field: string): string {
  return `${field}_bidx`;
}
