import { describe, expect, it } from 'vitest';
import { ibanValid, luhnValid } from './index.js';

describe('luhnValid', () => {
  it('accepts the published test card numbers', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('5500000000000004')).toBe(true);
    expect(luhnValid('340000000000009')).toBe(true);
    expect(luhnValid('79927398713')).toBe(true);
  });

  it('rejects each of them with one digit changed', () => {
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('5500000000000005')).toBe(false);
    expect(luhnValid('340000000000008')).toBe(false);
    expect(luhnValid('79927398710')).toBe(false);
  });

  it('rejects two adjacent digits swapped (the error Luhn exists to catch)', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('1411111111111111')).toBe(false);
  });

  it('returns false for anything but ASCII digits, separators included', () => {
    expect(luhnValid('4111 1111 1111 1111')).toBe(false);
    expect(luhnValid('')).toBe(false);
    expect(luhnValid('0')).toBe(false);
    expect(luhnValid('４１１１１１１１１１１１１１１１')).toBe(false);
  });

  it('throws a TypeError when called with a non-string', () => {
    expect(() => luhnValid(4111111111111111 as unknown as string)).toThrow(TypeError);
  });
});

describe('ibanValid', () => {
  it('accepts the registry examples for GB and DE, grouped or not, in either case', () => {
    expect(ibanValid('GB82 WEST 1234 5698 7654 32')).toBe(true);
    expect(ibanValid('DE89 3704 0044 0532 0130 00')).toBe(true);
    expect(ibanValid('DE89370400440532013000')).toBe(true);
    expect(ibanValid('gb82west12345698765432')).toBe(true);
    expect(ibanValid('NO93 8601 1117 947')).toBe(true);
    expect(ibanValid('FR14 2004 1010 0505 0001 3M02 606')).toBe(true);
  });

  it('rejects them with one digit changed (mod-97 fails)', () => {
    expect(ibanValid('GB82 WEST 1234 5698 7654 33')).toBe(false);
    expect(ibanValid('DE89 3704 0044 0532 0130 01')).toBe(false);
    expect(ibanValid('GB83 WEST 1234 5698 7654 32')).toBe(false);
  });

  it('rejects a valid checksum at the wrong length for its country', () => {
    // DE is 22 characters; the same digits padded or cut cannot be a German IBAN.
    expect(ibanValid('DE89 3704 0044 0532 0130 0')).toBe(false);
    expect(ibanValid('DE89 3704 0044 0532 0130 000')).toBe(false);
  });

  it('rejects a country that has no IBAN', () => {
    expect(ibanValid('US82 WEST 1234 5698 7654 32')).toBe(false);
  });

  it('rejects malformed input without throwing', () => {
    expect(ibanValid('')).toBe(false);
    expect(ibanValid('GB82-WEST-1234-5698-7654-32')).toBe(false);
    expect(ibanValid('8GB2 WEST 1234 5698 7654 32')).toBe(false);
    expect(ibanValid('GB'.repeat(1000))).toBe(false);
  });
});
