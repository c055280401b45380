import { createHmac } from 'node:crypto';

export type Mask = 'none' | 'last4' | 'domain' | 'hash' | 'null';

export type FieldValue = string | number | null;

/**
 * Masks one value. `hash` is keyed (HMAC-SHA-256): an unkeyed hash of a phone number or national id is
 * reversed by trying every candidate, so the key stays on the server.
 */
export function maskValue(value: FieldValue, mask: Mask | string, hashKey?: Uint8Array): FieldValue {
  if (value === null || mask === 'none') return value;
  const text = String(value);
  switch (mask) {
    case 'null':
      return null;
    case 'last4': {
      // A fixed prefix hides the length as well as the digits.
      const alphanumeric = text.replace(/[^0-9A-Za-z]/g, '');
      return alphanumeric.length > 4 ? `***${alphanumeric.slice(-4)}` : '***';
    }
    case 'domain': {
      const at = text.lastIndexOf('@');
      return at >= 0 ? `***${text.slice(at)}` : '***';
    }
    case 'hash': {
      if (!hashKey) throw new TypeError('the hash mask needs a key');
      return `hmac:${createHmac('sha256', hashKey).update(text).digest('hex').slice(0, 24)}`;
    }
    default:
      // An unknown mask name hides the value rather than letting it through.
      return null;
  }
}
