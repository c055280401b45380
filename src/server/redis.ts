import { readFileSync } from 'node:fs';
/**
 * Redis at scale (`redis.url`): the shared limits and containment throttles, the revocation and throttle
 * fan-out and the DPoP replay cache of every node. Loaded only when Redis is configured, so the embedded
 * mode never loads ioredis.
 *
 * When Redis cannot answer, each part fails its own way, chosen for what it protects:
 * - limits: each node enforces 1/redis.expectedNodes of every limit in memory (availability: the
 *   gateway keeps serving, the cluster as a whole stays within its limits);
 * - revocations: the database stays the source of truth and every node keeps polling it; without
 *   notices a node refuses tokens (503) whenever its last read is more than a second old;
 * - throttles: setting or lifting one fails (the incident records the containment as failed), and
 *   every node keeps enforcing the throttles it last read until they end;
 * - DPoP: a proof whose jti cannot be checked against every node's is refused (503).
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { ReplayStore, RevocationFanout } from '../broker/index.js';
import type { Config } from '../config/index.js';
import { DependencyUnavailable } from '../errors/index.js';
import { redisBackend, type Fanout, type RedisLimitsBackend } from '../limits/index.js';

export interface RedisServices {
  readonly limits: RedisLimitsBackend;
  readonly revocationFanout: RevocationFanout;
  readonly dpopReplay: ReplayStore;
  /** For /readyz: throws, saying what is wrong, unless commands and notices both get through. */
  ping(): Promise<void>;
  /** gatehouse_redis_up and gatehouse_limits_fallback. */
  registerMetrics(registry: Registry): void;
  close(): Promise<void>;
}

/** Where a URL points, for messages: host and port, never the user or password. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'the configured server';
  }
}

/** Connects both connections (commands, and pub/sub) or throws naming the server and why. */
export async function connectRedis(config: Config, logger: Logger): Promise<RedisServices> {
  const url = config.redis.url;
  if (url === undefined) throw new TypeError('connectRedis needs redis.url');
  const { keyPrefix, expectedNodes, commandTimeoutMs } = config.redis;
  const where = describeRedisUrl(url);
  const options = {
    lazyConnect: true,
    // A command fails at once while disconnected (the fallbacks take over) instead of queueing.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2000,
    retryStrategy: (attempt: number) => Math.min(100 * attempt, 2000),
    // redis.tls (or a rediss:// URL): TLS with the server's certificate verified.
    ...(config.redis.tls && {
      tls: {
        rejectUnauthorized: true,
        ...(config.redis.tls.ca !== undefined && { ca: readFileSync(config.redis.tls.ca) }),
      },
    }),
  };
  // Commands issued in one event-loop turn (many requests' limit checks) go out in one write.
  const client = new Redis(url, { ...options, enableAutoPipelining: true });
  // We subscribe again ourselves after a break: ioredis's own resubscription leaves its promise
  // unhandled, so a connection lost again in the middle of it would end the process, and the channels
  // it had not confirmed would be forgotten at the next reconnect.
  const subscriber = client.duplicate({ ...options, autoResubscribe: false });
  let lastError: unknown;
  for (const [name, connection] of [
    ['commands', client],
    ['notices', subscriber],
  ] as const) {
    let up = false;
    connection.on('error', (error: unknown) => {
      lastError = error;
      if (!up) return;
      up = false;
      logger.warn({ err: error, redis: where, connection: name }, 'Redis connection lost; reconnecting');
    });
    connection.on('ready', () => {
      if (!up && lastError !== undefined)
        logger.info({ redis: where, connection: name }, 'Redis connection back');
      up = true;
    });
  }
  // One subscriber connection carries every channel; a notice wakes the listeners of its channel.
  const listeners = new Map<string, Set<() => void>>();
  subscriber.on('message', (from: string) => {
    for (const listener of listeners.get(from) ?? []) listener();
  });
  /** True from Redis's confirmation of every channel until the connection closes. */
  let subscribed = false;
  subscriber.on('close', () => {
    subscribed = false;
  });
  const subscribeAll = async () => {
    await subscriber.subscribe(...listeners.keys());
    subscribed = true;
    // Notices sent while this connection was away were lost: every listener reads afresh.
    for (const channel of listeners.values()) for (const listener of channel) listener();
  };
  let started = false;
  subscriber.on('ready', () => {
    if (!started) return;
    subscribeAll().catch((err: unknown) => {
      logger.warn({ err, redis: where }, 'resubscribing to notices failed; reconnecting to try again');
      subscriber.disconnect(true);
    });
  });
  /** Notices on `channel`; `unsent` is logged when one cannot be sent. */
  const fanout = (channel: string, unsent: string): Fanout & { readonly listening: boolean } => {
    const mine = new Set<() => void>();
    listeners.set(channel, mine);
    return {
      async announce() {
        try {
          await client.publish(channel, 'changed');
        } catch (err) {
          logger.warn({ err, redis: where }, unsent);
        }
      },
      subscribe(listener) {
        mine.add(listener);
        return () => mine.delete(listener);
      },
      get listening() {
        return subscribed && subscriber.status === 'ready';
      },
    };
  };
  const revocationFanout: RevocationFanout = fanout(
    `${keyPrefix}revocations`,
    'revocation notice not sent; other nodes see it when they poll',
  );
  const throttleFanout = fanout(
    `${keyPrefix}throttles`,
    'throttle notice not sent; other nodes see it at their next read, within a second',
  );

  const limits = redisBackend({
    redis: client,
    keyPrefix,
    nodes: expectedNodes,
    throttleFanout,
    onFallback(active, cause) {
      if (active) {
        logger.warn(
          { err: cause, redis: where, share: `1/${expectedNodes}` },
          'Redis cannot answer: this node enforces its share of every limit on its own until it does',
        );
      } else logger.info({ redis: where }, 'Redis answers again: limits are shared by every node again');
    },
  });

  try {
    await client.connect();
    await subscriber.connect();
    await subscribeAll();
    started = true;
    // Throttles set before this node started hold from its first request.
    await limits.refreshThrottles();
  } catch (cause) {
    limits.close();
    client.disconnect();
    subscriber.disconnect();
    const reason = reasonOf(lastError ?? cause);
    throw new DependencyUnavailable(
      'DEPENDENCY_UNAVAILABLE',
      `redis.url: cannot connect to Redis at ${where} (${reason}); check the URL and that the server is up`,
      { cause: lastError ?? cause },
    );
  }

  const dpopReplay: ReplayStore = {
    async remember(key, untilSeconds, nowSeconds) {
      const ttlMs = Math.max(1, untilSeconds - nowSeconds) * 1000;
      return (await client.set(`${keyPrefix}dpop:${key}`, '1', 'PX', ttlMs, 'NX')) === 'OK';
    },
  };

  return {
    limits,
    revocationFanout,
    dpopReplay,
    async ping() {
      if (client.status !== 'ready') {
        throw new Error(
          `unreachable at ${where} (connection ${client.status}): limits are this node's share, DPoP-bound requests are refused`,
        );
      }
      await client.ping();
      if (!subscribed || subscriber.status !== 'ready') {
        throw new Error(`revocation and throttle notices are not arriving (connection ${subscriber.status})`);
      }
    },
    registerMetrics(registry) {
      new Gauge({
        name: 'gatehouse_redis_up',
        help: '1 when both Redis connections (commands, revocation notices) are ready',
        registers: [registry],
        collect() {
          this.set(client.status === 'ready' && subscribed ? 1 : 0);
        },
      });
      new Gauge({
        name: 'gatehouse_limits_fallback',
        help: '1 while Redis cannot answer and this node enforces its share of every limit on its own',
        registers: [registry],
        collect() {
          this.set(limits.fallbackActive ? 1 : 0);
        },
      });
    },
    async close() {
      limits.close();
      listeners.clear();
      await Promise.all(
        [client, subscriber].map((connection) => connection.quit().catch(() => connection.disconnect())),
      );
    },
  };
}

function reasonOf(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && code !== '') return code;
  return typeof message === 'string' ? message.split('\n')[0] : 'unknown error';
}
