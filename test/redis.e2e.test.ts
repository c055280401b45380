import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dpopKey, dpopProof, type DpopKey } from './support/broker.js';
import { startDemo, type Demo } from './support/demo.js';
import {
  startRedisProxy,
  testRedisUrl,
  uniquePrefix,
  withoutRedisNote,
  type RedisProxy,
} from './support/redis.js';

/**
 * One real server on Redis (through a TCP proxy the test can cut): what Redis going away changes, and
 * what it does not.
 */

if (!testRedisUrl) console.warn(`test/redis.e2e.test.ts: ${withoutRedisNote}`);

describe.skipIf(!testRedisUrl)('a server on Redis, when Redis goes away and comes back', () => {
  let proxy: RedisProxy;
  let demo: Demo;
  let token: string;

  beforeAll(async () => {
    proxy = await startRedisProxy();
    demo = await startDemo({
      config: {
        'redis.url': proxy.url,
        'redis.keyPrefix': uniquePrefix('e2e'),
        'redis.expectedNodes': 3,
        // Six requests in a burst, refilling too slowly to matter here: two per node without Redis.
        'limits.perUser': { burst: 6, ratePerSecond: 0.01 },
        // Scraped on the metrics listener, so that reading the counts takes nothing from the limits.
        'server.metricsPort': 0,
      },
    });
    token = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
  });
  afterAll(async () => {
    await demo?.stop();
    await proxy?.close();
  });

  const read = async () => (await demo.get('/crm/v1/accounts?limit=1', token)).status;
  const metric = async (name: string) => {
    const text = await (await fetch(demo.gatehouse.metricsUrl ?? '')).text();
    return Number(
      /^(\S+) (\S+)$/m.exec(text.split('\n').find((line) => line.startsWith(`${name} `)) ?? '')?.[2],
    );
  };
  const readiness = async () => {
    const response = await demo.get('/readyz');
    return {
      status: response.status,
      body: (await response.json()) as { checks: Record<string, { ok: boolean; detail?: string }> },
    };
  };

  it('limits are shared in Redis, fall back to this node’s share while it is away, and are shared again', async () => {
    expect((await readiness()).status).toBe(200);
    expect(await metric('gatehouse_redis_up')).toBe(1);
    expect([await read(), await read(), await read()]).toEqual([200, 200, 200]);

    proxy.cut();
    await waitFor(async () => (await readiness()).status === 503);
    const down = await readiness();
    expect(down.body.checks.redis).toMatchObject({ ok: false });
    expect(down.body.checks.redis?.detail).toContain("limits are this node's share");
    expect(down.body.checks.database).toMatchObject({ ok: true });
    expect(await metric('gatehouse_redis_up')).toBe(0);
    // Six a burst across three nodes: two here, counted afresh; the gateway keeps answering.
    expect([await read(), await read(), await read()]).toEqual([200, 200, 429]);
    expect(await metric('gatehouse_limits_fallback')).toBe(1);

    proxy.restore();
    await waitFor(async () => (await readiness()).status === 200);
    // Failed Redis calls are retried after a second; Redis still holds the three left before the break.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect([await read(), await read(), await read(), await read()]).toEqual([200, 200, 200, 429]);
    expect(await metric('gatehouse_limits_fallback')).toBe(0);
  });

  it('a token revoked while Redis is away is refused at once: revocations live in the database', async () => {
    const revoked = await demo.accessToken('bob', 'call-notes', 'read:account.basic');
    expect((await demo.get('/crm/v1/accounts?limit=1', revoked)).status).toBe(200);
    proxy.cut();
    try {
      await waitFor(async () => (await readiness()).status === 503);
      const response = await demo.send('POST', '/oauth/revoke', undefined, {
        body: new URLSearchParams({ token: revoked, client_id: 'call-notes' }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(response.status).toBe(200);
      const refused = await demo.get('/crm/v1/accounts?limit=1', revoked);
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { code: string }).code).toBe('TOKEN_REVOKED');
    } finally {
      proxy.restore();
      await waitFor(async () => (await readiness()).status === 200);
    }
  });

  describe('DPoP-bound tokens', () => {
    let key: DpopKey;
    let bound: string;
    const url = () => `${demo.url}/crm/v1/accounts`;
    const call = async (proof: string) =>
      fetch(`${url()}?limit=1`, { headers: { authorization: `DPoP ${bound}`, dpop: proof } });

    beforeAll(async () => {
      key = await dpopKey();
      const response = await fetch(`${demo.url}/oauth/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          dpop: await dpopProof(key, 'POST', `${demo.url}/oauth/token`),
        },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: await demo.idToken('erin', 'call-notes'),
          subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
          client_id: 'call-notes',
          scope: 'read:account.basic',
        }),
      });
      bound = ((await response.json()) as { access_token: string }).access_token;
    });

    it('are refused (503) while proof replays cannot be checked across nodes, and accepted again after', async () => {
      const proof = await dpopProof(key, 'GET', url(), { accessToken: bound });
      expect((await call(proof)).status).toBe(200);
      expect((await call(proof)).status).toBe(401);

      proxy.cut();
      try {
        await waitFor(async () => (await readiness()).status === 503);
        const refused = await call(await dpopProof(key, 'GET', url(), { accessToken: bound }));
        expect(refused.status).toBe(503);
        expect(((await refused.json()) as { code: string }).code).toBe('DEPENDENCY_UNAVAILABLE');
        expect(refused.headers.get('retry-after')).not.toBeNull();
      } finally {
        proxy.restore();
      }
      await waitFor(async () => (await readiness()).status === 200);
      expect((await call(await dpopProof(key, 'GET', url(), { accessToken: bound }))).status).toBe(200);
    });
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
