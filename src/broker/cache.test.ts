import { describe, expect, it } from 'vitest';
import { VerifiedTokenCache } from './cache.js';

const entry = (jti: string, exp = 2000) => ({ jti, exp });

describe('VerifiedTokenCache', () => {
  it('answers an entry until its exp, then forgets it', () => {
    const cache = new VerifiedTokenCache<{ jti: string; exp: number }>();
    const claims = entry('a', 1000);
    cache.set('d1', claims);
    expect(cache.get('d1', 999)).toBe(claims);
    expect(cache.get('d1', 1000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('holds at most maxEntries and evicts the oldest', () => {
    const cache = new VerifiedTokenCache<{ jti: string; exp: number }>(2);
    cache.set('d1', entry('a'));
    cache.set('d2', entry('b'));
    cache.set('d3', entry('c'));
    expect(cache.size).toBe(2);
    expect(cache.get('d1', 0)).toBeUndefined();
    expect(cache.get('d2', 0)).toBeDefined();
    expect(cache.get('d3', 0)).toBeDefined();
  });

  it('forgets by jti (revocation)', () => {
    const cache = new VerifiedTokenCache<{ jti: string; exp: number }>();
    cache.set('d1', entry('a'));
    cache.set('d2', entry('b'));
    cache.forget('a');
    cache.forget('unknown');
    expect(cache.get('d1', 0)).toBeUndefined();
    expect(cache.get('d2', 0)).toBeDefined();
  });

  it('refuses a size that is not a positive integer (a caller mistake)', () => {
    expect(() => new VerifiedTokenCache(0)).toThrow(TypeError);
  });
});
