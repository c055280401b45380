import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BucketSpec, DistinctWindowStore, LimitsBackend, TokenBucketStore } from './backend.js';
import { MemoryBuckets } from './buckets.js';
import { MemoryDistinctWindow } from './distinct-window.js';

/**
 * A Lua script run by its SHA-1 (EVALSHA), sent whole (EVAL) only when Redis does not know it yet
 * (first use, or after a restart or SCRIPT FLUSH).
 */
class LuaScript {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}

/**
 * TokenBucketStore.take (src/limits/backend.ts) over one hash per bucket: `t` tokens, `l` last time,
 * `e` the caller's time after which the bucket is forgotten. Expiry by the caller's clock (`e`) keeps
 * the contract's frozen-clock semantics; PEXPIRE only bounds Redis memory. Lua numbers are doubles
 * but a number returned to the client is truncated to an integer, so tokens travel as strings in
 * `%.17g`, which round-trips a double exactly.
 */
const takeScript = new LuaScript(`
local cost = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local n = #KEYS
local tokens, last = {}, {}
local allowed = true
for i = 1, n do
  local capacity = tonumber(ARGV[3 * i])
  local rate = tonumber(ARGV[3 * i + 1])
  local held = redis.call('HMGET', KEYS[i], 't', 'l', 'e')
  local t, l = capacity, now
  if held[1] and held[2] and held[3] and tonumber(held[3]) > now then
    t = tonumber(held[1])
    l = tonumber(held[2])
    local elapsed = now - l
    if elapsed < 0 then elapsed = 0 end
    t = math.min(capacity, t + rate * elapsed / 1000)
    if now > l then l = now end
  end
  tokens[i] = t
  last[i] = l
  if t < cost then allowed = false end
end
local out = { allowed and 1 or 0 }
for i = 1, n do
  local ttl = tonumber(ARGV[3 * i + 2])
  if allowed then tokens[i] = tokens[i] - cost end
  redis.call('HSET', KEYS[i], 't', string.format('%.17g', tokens[i]), 'l', string.format('%.17g', last[i]),
    'e', string.format('%.17g', now + ttl))
  redis.call('PEXPIRE', KEYS[i], ttl)
  out[i + 1] = string.format('%.17g', tokens[i])
end
return out
`);

/**
 * DistinctWindowStore.admit over a sorted set (id → time last read) and a companion key holding the
 * latest time seen, so that a clock stepping back cannot make ids expire early. Both keys expire a
 * window after the last call, when every id in them has expired anyway.
 */
const admitScript = new LuaScript(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local latest = tonumber(redis.call('GET', KEYS[2]) or now)
if latest > now then now = latest end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local size = redis.call('ZCARD', KEYS[1])
local unique, seen, fresh = {}, {}, 0
for i = 4, #ARGV do
  local id = ARGV[i]
  if not seen[id] then
    seen[id] = true
    unique[#unique + 1] = id
    if not redis.call('ZSCORE', KEYS[1], id) then fresh = fresh + 1 end
  end
end
local attempted = size + fresh
redis.call('SET', KEYS[2], string.format('%.17g', now), 'PX', window)
if attempted > cap then return { 0, size, attempted } end
for _, id in ipairs(unique) do redis.call('ZADD', KEYS[1], now, id) end
if #unique > 0 then redis.call('PEXPIRE', KEYS[1], window) end
return { 1, size + fresh, attempted }
`);

/** Token buckets in Redis: one script call per request, atomic across every bucket it names. */
export class RedisBuckets implements TokenBucketStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, keyPrefix: string) {
    this.#redis = redis;
    this.#prefix = `${keyPrefix}limits:bucket:`;
  }

  async take(
    buckets: readonly BucketSpec[],
    cost: number,
    nowMs: number,
  ): Promise<{ allowed: boolean; tokens: number[] }> {
    const keys = buckets.map((b) => this.#prefix + b.key);
    const args: Array<string | number> = [cost, nowMs];
    for (const b of buckets) args.push(b.capacity, b.refillPerSecond, b.ttlMs);
    const reply = await takeScript.run(this.#redis, keys, args);
    if (!Array.isArray(reply) || reply.length !== buckets.length + 1) {
      throw new Error('the token bucket script answered a malformed reply');
    }
    return { allowed: reply[0] === 1, tokens: reply.slice(1).map((t) => Number(t)) };
  }
}

/** The bulk-export guard's sliding windows in Redis, one sorted set per (app, object). */
export class RedisDistinctWindow implements DistinctWindowStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, keyPrefix: string) {
    this.#redis = redis;
    this.#prefix = `${keyPrefix}limits:distinct:`;
  }

  async admit(
    key: string,
    ids: readonly string[],
    nowMs: number,
    windowMs: number,
    cap: number,
  ): Promise<{ admitted: boolean; distinct: number; attempted: number }> {
    const keys = [`${this.#prefix}${key}`, `${this.#prefix}${key}:latest`];
    const reply = await admitScript.run(this.#redis, keys, [nowMs, windowMs, cap, ...ids]);
    if (!Array.isArray(reply) || reply.length !== 3 || !reply.every((n) => typeof n === 'number')) {
      throw new Error('the distinct window script answered a malformed reply');
    }
    return { admitted: reply[0] === 1, distinct: reply[1] as number, attempted: reply[2] as number };
  }
}

export interface RedisLimitsOptions {
  /**
   * A client the caller connects and closes, made with `enableOfflineQueue: false` so that a command
   * fails at once while it is disconnected instead of waiting for a reconnection.
   */
  readonly redis: Redis;
  /** Prefixes every key (redis.keyPrefix). */
  readonly keyPrefix: string;
  /** Gateway nodes sharing the Redis: while it cannot answer, this node enforces 1/nodes of each limit. */
  readonly nodes: number;
  /** Told when this node starts (`true`, with why) and stops (`false`) enforcing its own share. */
  readonly onFallback?: (active: boolean, cause?: unknown) => void;
  /** After a failed command, Redis is left alone this long before it is tried again (1000 ms). */
  readonly retryAfterMs?: number;
}

export interface RedisLimitsBackend extends LimitsBackend {
  /** True while Redis cannot answer and this node enforces its share of each limit on its own. */
  readonly fallbackActive: boolean;
}

/**
 * Limits shared by every node through Redis. When Redis cannot answer (down, unreachable, too slow),
 * each node enforces its share of every limit in memory instead — a bucket's burst and rate divided
 * by `nodes`, the bulk-export threshold likewise — so that traffic spread over the nodes by a load
 * balancer stays within the limits as a whole, and the gateway keeps serving. The local state starts
 * afresh at the switch: within one window, what was counted in Redis before the outage is not seen
 * by the local counts, and back in Redis what was counted locally is not seen either.
 */
export function redisBackend(options: RedisLimitsOptions): RedisLimitsBackend {
  const { redis, keyPrefix, nodes } = options;
  if (!Number.isSafeInteger(nodes) || nodes < 1) throw new TypeError('nodes must be a positive integer');
  const retryAfterMs = options.retryAfterMs ?? 1000;
  const shared = {
    buckets: new RedisBuckets(redis, keyPrefix),
    distinct: new RedisDistinctWindow(redis, keyPrefix),
  };
  const local = { buckets: new MemoryBuckets(), distinct: new MemoryDistinctWindow() };
  let active = false;
  let resumeAt = 0;

  const switchTo = (fallback: boolean, cause?: unknown) => {
    if (fallback === active) return;
    active = fallback;
    options.onFallback?.(fallback, cause);
  };

  async function either<T>(inRedis: () => Promise<T>, inMemory: () => Promise<T>): Promise<T> {
    if (redis.status === 'ready' && performance.now() >= resumeAt) {
      try {
        const result = await inRedis();
        switchTo(false);
        return result;
      } catch (error) {
        resumeAt = performance.now() + retryAfterMs;
        switchTo(true, error);
      }
    } else {
      switchTo(true, new Error(`the Redis connection is ${redis.status}`));
    }
    return inMemory();
  }

  const share = (spec: BucketSpec): BucketSpec => ({
    key: spec.key,
    capacity: Math.max(1, Math.floor(spec.capacity / nodes)),
    refillPerSecond: spec.refillPerSecond / nodes,
    ttlMs: spec.ttlMs,
  });

  return {
    get fallbackActive() {
      return active;
    },
    buckets: {
      take: (buckets, cost, nowMs) =>
        either(
          () => shared.buckets.take(buckets, cost, nowMs),
          () => local.buckets.take(buckets.map(share), cost, nowMs),
        ),
    },
    distinct: {
      admit: (key, ids, nowMs, windowMs, cap) =>
        either(
          () => shared.distinct.admit(key, ids, nowMs, windowMs, cap),
          () => local.distinct.admit(key, ids, nowMs, windowMs, Math.floor(cap / nodes)),
        ),
    },
  };
}
