import { describe, expect, it } from 'vitest';
import { maskValue } from './index.js';

describe('maskValue', () => {
  it('keeps only the last four characters of a phone, hiding its length', () => {
    expect(maskValue('+44 20 7946 0958', 'last4')).toBe('***0958');
    expect(maskValue('+1 (415) 555-0100', 'last4')).toBe('***0100');
  });

  it('never reveals a value of four characters or fewer through last4', () => {
    expect(maskValue('1234', 'last4')).toBe('***');
  });

  it('keeps only the domain of an email', () => {
    expect(maskValue('jane.doe@acme.example', 'domain')).toBe('***@acme.example');
  });

  it('hashes with a key, so the same value maps to the same token and another key to another', () => {
    const key = Buffer.alloc(32, 1);
    const a = maskValue('078-05-1120', 'hash', key);
    expect(a).toBe(maskValue('078-05-1120', 'hash', key));
    expect(a).not.toBe(maskValue('078-05-1120', 'hash', Buffer.alloc(32, 2)));
    expect(String(a)).not.toContain('1120');
  });

  it('hides the value under an unknown mask name instead of passing it through', () => {
    expect(maskValue('secret', 'typo-mask')).toBeNull();
  });

  it('passes values through only for the none mask', () => {
    expect(maskValue('x@y.z', 'none')).toBe('x@y.z');
    expect(maskValue(null, 'last4')).toBeNull();
  });
});
