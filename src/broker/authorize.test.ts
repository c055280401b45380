import { describe, expect, it } from 'vitest';
import { redirectUriMatches } from './authorize.js';

describe('redirectUriMatches', () => {
  const registered = 'http://127.0.0.1:8080/console/callback';

  it('matches a loopback IP redirect URI on any port (RFC 8252 §7.3)', () => {
    expect(redirectUriMatches(registered, registered)).toBe(true);
    expect(redirectUriMatches(registered, 'http://127.0.0.1:53127/console/callback')).toBe(true);
    expect(redirectUriMatches('http://[::1]:8080/cb', 'http://[::1]:41000/cb')).toBe(true);
  });

  it('keeps everything but the port exact', () => {
    for (const other of [
      'http://127.0.0.1:53127/console/callback/',
      'http://127.0.0.1:53127/elsewhere',
      'http://127.0.0.1:53127/console/callback?next=x',
      'http://127.0.0.1:53127/console/callback#x',
      'http://user@127.0.0.1:53127/console/callback',
      'http://localhost:53127/console/callback',
      'https://127.0.0.1:53127/console/callback',
      'http://[::1]:53127/console/callback',
      'http://127.0.0.2:53127/console/callback',
    ]) {
      expect(redirectUriMatches(registered, other), other).toBe(false);
    }
  });

  it('matches other redirect URIs exactly only', () => {
    expect(redirectUriMatches('https://app.example.com/cb', 'https://app.example.com/cb')).toBe(true);
    expect(redirectUriMatches('https://app.example.com/cb', 'https://app.example.com:8443/cb')).toBe(false);
    expect(redirectUriMatches('http://localhost:5173/cb', 'http://localhost:5174/cb')).toBe(false);
  });
});
