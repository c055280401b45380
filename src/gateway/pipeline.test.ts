import { describe, expect, it } from 'vitest';
import { networkOf } from './pipeline.js';

describe('networkOf: the caller network recorded for detection, never the address', () => {
  it('keeps an IPv4 /24, also when mapped into IPv6', () => {
    expect(networkOf('203.0.113.77')).toBe('203.0.113.0/24');
    expect(networkOf('::ffff:127.0.0.1')).toBe('127.0.0.0/24');
  });

  it('keeps an IPv6 /48, expanding ::', () => {
    expect(networkOf('2001:db8:abcd:12::1')).toBe('2001:db8:abcd::/48');
    expect(networkOf('2001:db8::1')).toBe('2001:db8:0::/48');
    expect(networkOf('::1')).toBe('0:0:0::/48');
  });

  it('says unknown for anything it cannot read', () => {
    expect(networkOf('')).toBe('unknown');
    expect(networkOf('not-an-ip')).toBe('unknown');
    expect(networkOf('1::2::3')).toBe('unknown');
  });
});
