/**
 * Redis for tests: GATEHOUSE_TEST_REDIS_URL (`eval "$(.ci/services.sh start)"` prints it) names a real
 * server; tests that need one are skipped without it. Every test takes keys under a prefix of its own,
 * so runs sharing the server never see each other's state and nothing needs flushing.
 */
import { randomBytes } from 'node:crypto';
import { createServer, connect as connectTcp, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';

export const testRedisUrl = process.env.GATEHOUSE_TEST_REDIS_URL || undefined;

export const withoutRedisNote =
  'skipped: set GATEHOUSE_TEST_REDIS_URL to a Redis server (eval "$(.ci/services.sh start)") to run it';

/** A key prefix no other test or run uses. */
export function uniquePrefix(name: string): string {
  return `gatehouse-test:${name}:${randomBytes(6).toString('hex')}:`;
}

/** Config overrides that put a test server on the test Redis, under keys of its own; `{}` without one. */
export function testRedisConfig(): Record<string, string> {
  return testRedisUrl ? { 'redis.url': testRedisUrl, 'redis.keyPrefix': uniquePrefix('server') } : {};
}

/** A client made the way src/server/redis.ts makes them (no offline queue), connected. */
export async function connectTestRedis(url = testRedisUrl): Promise<Redis> {
  if (!url) throw new TypeError('connectTestRedis needs GATEHOUSE_TEST_REDIS_URL');
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 500,
    connectTimeout: 1000,
    retryStrategy: (attempt: number) => Math.min(50 * attempt, 200),
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

export interface RedisProxy {
  /** `redis://127.0.0.1:<port>`: Redis, reached through the proxy. */
  readonly url: string;
  /** Drops every connection and refuses new ones: to its clients, Redis is down. */
  cut(): void;
  /** Accepts connections again. */
  restore(): void;
  /** Drops the next connection whose client sends `command` (e.g. SUBSCRIBE), as the command goes out. */
  dropOnNext(command: string): void;
  close(): Promise<void>;
}

/** A TCP proxy in front of the test Redis, so a test can take Redis away from one client and give it back. */
export async function startRedisProxy(target = testRedisUrl): Promise<RedisProxy> {
  if (!target) throw new TypeError('startRedisProxy needs GATEHOUSE_TEST_REDIS_URL');
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let down = false;
  let dropOn: RegExp | undefined;
  const server: Server = createServer((inbound) => {
    if (down) {
      inbound.destroy();
      return;
    }
    const outbound = connectTcp({ host: hostname, port: Number(port || 6379) });
    inbound.on('data', (chunk: Buffer) => {
      if (dropOn === undefined || !dropOn.test(chunk.toString('latin1'))) return;
      dropOn = undefined;
      inbound.destroy();
    });
    for (const [a, b] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      sockets.add(a);
      a.pipe(b);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${address.port}`,
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      down = false;
    },
    dropOnNext(command) {
      // RESP sends a command's name as a bulk string: $<length>\r\n<name>\r\n.
      dropOn = new RegExp(`\\$${command.length}\\r\\n${command}\\r\\n`, 'i');
    },
    async close() {
      down = true;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
