import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterEach, describe, expect, it } from 'vitest';
import { governedFetch } from './crm.js';
import { FieldNotAllowed, RateLimited, retryAfterSeconds, TokenRevoked, toTypedError } from './errors.js';
import { RotatingTokens, type TokenSet } from './tokens.js';
import { newTraceparent } from './trace.js';

const later = (ms = 0) => Date.now() + ms;

describe('RotatingTokens: one refresh in flight, a refresh token used once', () => {
  it('ten calls that see the same stale token share one refresh', async () => {
    const used: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const tokens = new RotatingTokens(
      { accessToken: 'a1', refreshToken: 'r1', expiresAt: later(60_000) },
      async (rt) => {
        used.push(rt);
        await gate;
        return {
          accessToken: `a${used.length + 1}`,
          refreshToken: `r${used.length + 1}`,
          expiresAt: later(60_000),
        };
      },
    );
    const renewed = Array.from({ length: 10 }, () => tokens.renew('a1'));
    release();
    expect(new Set(await Promise.all(renewed))).toEqual(new Set(['a2']));
    expect(used).toEqual(['r1']);
    // A 401 for the old token that arrives late does not refresh again (that would reuse r1).
    expect(await tokens.renew('a1')).toBe('a2');
    expect(used).toEqual(['r1']);
    expect(tokens.current.refreshToken).toBe('r2');
  });

  it('an expired token is refreshed before use, once, however many calls ask', async () => {
    let now = 0;
    const used: string[] = [];
    const tokens = new RotatingTokens(
      { accessToken: 'a1', refreshToken: 'r1', expiresAt: 100_000 },
      async (rt): Promise<TokenSet> => {
        used.push(rt);
        return { accessToken: 'a2', refreshToken: 'r2', expiresAt: 1_000_000 };
      },
      { now: () => now },
    );
    expect(await tokens.accessToken()).toBe('a1');
    now = 95_000; // inside the skew: refresh ahead of expiry
    expect(await Promise.all([tokens.accessToken(), tokens.accessToken(), tokens.accessToken()])).toEqual([
      'a2',
      'a2',
      'a2',
    ]);
    expect(used).toEqual(['r1']);
  });

  it('a refused refresh fails every waiter and leaves no refresh pending', async () => {
    let calls = 0;
    const tokens = new RotatingTokens(
      { accessToken: 'a1', refreshToken: 'r1', expiresAt: later(60_000) },
      async () => {
        calls += 1;
        throw new Error('invalid_grant');
      },
    );
    const results = await Promise.allSettled([tokens.renew('a1'), tokens.renew('a1')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
    await expect(tokens.renew('a1')).rejects.toThrow('invalid_grant');
    expect(calls).toBe(2);
  });

  it('a refresh answer without a new refresh token keeps the old one', async () => {
    const tokens = new RotatingTokens(
      { accessToken: 'a1', refreshToken: 'r1', expiresAt: later() },
      async () => ({
        accessToken: 'a2',
        expiresAt: later(60_000),
      }),
    );
    await tokens.renew('a1');
    expect(tokens.current.refreshToken).toBe('r1');
  });
});

describe('typed errors from problem documents', () => {
  it('picks the class by code, never by message', () => {
    expect(toTypedError({ status: 403, code: 'FIELD_NOT_ALLOWED', fields: ['email'] })).toBeInstanceOf(
      FieldNotAllowed,
    );
    expect(
      (toTypedError({ status: 403, code: 'FIELD_NOT_ALLOWED', fields: ['email'] }) as FieldNotAllowed).fields,
    ).toEqual(['email']);
    const limited = toTypedError({ status: 429, code: 'RATE_LIMITED' }, 'r-1', '7');
    expect(limited).toBeInstanceOf(RateLimited);
    expect((limited as RateLimited).retryAfterSeconds).toBe(7);
    const revoked = toTypedError({ status: 401, code: 'TOKEN_REVOKED', incident_id: 'inc-1' });
    expect((revoked as TokenRevoked).incident).toBe('inc-1');
  });

  it('reads Retry-After as seconds or an HTTP date, and never as less than a second', () => {
    expect(retryAfterSeconds('0')).toBe(1);
    expect(retryAfterSeconds(new Date(10_000).toUTCString(), 0)).toBe(10);
    expect(retryAfterSeconds('soon')).toBe(1);
  });

  it('makes W3C traceparents with non-zero ids', () => {
    expect(newTraceparent()).toMatch(/^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-01$/);
  });
});

describe('DPoP nonce (RFC 9449 §9) at a resource server over loopback', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  it('retries once with the nonce the server asked for, and the proof carries it', async () => {
    const proofs: Array<Record<string, unknown>> = [];
    server = createServer((request: IncomingMessage, response) => {
      const proof = String(request.headers.dpop ?? '');
      const claims = decodeJwt(proof);
      proofs.push({ ...claims, typ: decodeProtectedHeader(proof).typ, auth: request.headers.authorization });
      if (claims.nonce !== 'n-1') {
        response
          .writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n-1' })
          .end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json', 'dpop-nonce': 'n-1' }).end('{"ok":true}');
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/crm/v1/accounts`;
    const client = { client_id: 'app' };
    const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    let renewals = 0;
    const fetchGoverned = governedFetch({
      baseUrl: url,
      tokens: { accessToken: async () => 'at-1', renew: async () => `at-${++renewals + 1}` },
      request: { DPoP, [oauth.allowInsecureRequests]: true },
    });
    const response = await fetchGoverned(new Request(url));
    expect(await response.json()).toEqual({ ok: true });
    expect(proofs).toHaveLength(2);
    expect(proofs[1]).toMatchObject({
      nonce: 'n-1',
      htm: 'GET',
      htu: url,
      typ: 'dpop+jwt',
      auth: 'DPoP at-1',
    });
    expect(renewals).toBe(0);
  });
});
