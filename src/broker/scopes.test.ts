import { describe, expect, it } from 'vitest';
import { grantScopes, parseScope } from './scopes.js';

describe('parseScope', () => {
  it('splits on spaces, keeps order and drops duplicates', () => {
    expect(parseScope('read:a.b  write:c.d read:a.b')).toEqual(['read:a.b', 'write:c.d']);
  });

  it.each([undefined, '', '   '])('refuses an empty scope parameter (%j)', (value) => {
    expect(() => parseScope(value)).toThrow(expect.objectContaining({ code: 'OAUTH_INVALID_SCOPE' }));
  });

  it.each(['read:a.b\tread:c.d', 'read:"a"', 'read:a\\b', 'read:ä.b', 'x\ny'])(
    'refuses characters outside RFC 6749 scope-token (%j)',
    (value) => {
      expect(() => parseScope(value)).toThrow(expect.objectContaining({ code: 'OAUTH_INVALID_SCOPE' }));
    },
  );

  it('refuses an absurd number of scopes', () => {
    const many = Array.from({ length: 65 }, (_, i) => `s${i}`).join(' ');
    expect(() => parseScope(many)).toThrow(expect.objectContaining({ code: 'OAUTH_INVALID_SCOPE' }));
  });
});

describe('grantScopes', () => {
  const approved = ['read:account.basic', 'read:opportunity.basic', 'read:opportunity.financial'];

  it('grants requested ∩ approved ∩ allowed', () => {
    const allowed = ['read:account.basic', 'read:opportunity.basic'];
    expect(grantScopes(['read:opportunity.financial', 'read:opportunity.basic'], approved, allowed)).toEqual([
      'read:opportunity.basic',
    ]);
  });

  it('refuses a scope the app was never approved for, even beside approved ones', () => {
    expect(() => grantScopes(['read:account.basic', 'read:contact.pii'], approved, approved)).toThrow(
      expect.objectContaining({ code: 'OAUTH_INVALID_SCOPE' }),
    );
  });

  it('refuses when the role allows none of the requested scopes', () => {
    expect(() => grantScopes(['read:opportunity.financial'], approved, ['read:account.basic'])).toThrow(
      expect.objectContaining({ code: 'OAUTH_INVALID_SCOPE' }),
    );
  });
});
