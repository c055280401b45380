import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { DependencyUnavailable } from '../errors/index.js';
import type {
  Admission,
  BucketSpec,
  DistinctWindowStore,
  LimitsBackend,
  TokenBucketStore,
} from './backend.js';
import { MemoryBuckets } from './buckets.js';
import type { TokenBucket } from './config.js';
import { MemoryDistinctWindow } from './distinct-window.js';
import { inForce, type Throttle, type ThrottleStore } from './throttles.js';

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
 * One call runs several takes (ARGV[1] of them), one after another exactly as separate calls would:
 * each take's ARGV are its cost, now and number of buckets, then per bucket its key's index in KEYS,
 * capacity, rate and ttl. A bucket is read once and written once per call, however many takes use it.
 * The answer is each take's allowed flag followed by its buckets' tokens.
 */
const takeScript = new LuaScript(`
local held = {}
local ttls = {}
local function bucket(k)
  local b = held[k]
  if b == nil then
    local h = redis.call('HMGET', KEYS[k], 't', 'l', 'e')
    if h[1] and h[2] and h[3] then
      b = { tonumber(h[1]), tonumber(h[2]), tonumber(h[3]) }
    else
      b = false
    end
    held[k] = b
  end
  return b
end
local out = {}
local a = 2
for _ = 1, tonumber(ARGV[1]) do
  local cost = tonumber(ARGV[a])
  local now = tonumber(ARGV[a + 1])
  local n = tonumber(ARGV[a + 2])
  a = a + 3
  local keys, caps, ttl, tokens, last = {}, {}, {}, {}, {}
  local allowed = true
  for i = 1, n do
    local k = tonumber(ARGV[a])
    local capacity = tonumber(ARGV[a + 1])
    local rate = tonumber(ARGV[a + 2])
    keys[i] = k
    ttl[i] = tonumber(ARGV[a + 3])
    a = a + 4
    local b = bucket(k)
    local t, l = capacity, now
    if b and b[3] > now then
      t = b[1]
      l = b[2]
      local elapsed = now - l
      if elapsed < 0 then elapsed = 0 end
      t = math.min(capacity, t + rate * elapsed / 1000)
      if now > l then l = now end
    end
    tokens[i] = t
    last[i] = l
    if t < cost then allowed = false end
  end
  out[#out + 1] = allowed and 1 or 0
  for i = 1, n do
    if allowed then tokens[i] = tokens[i] - cost end
    held[keys[i]] = { tokens[i], last[i], now + ttl[i] }
    ttls[keys[i]] = ttl[i]
    out[#out + 1] = string.format('%.17g', tokens[i])
  end
end
for k, ttl in pairs(ttls) do
  local b = held[k]
  redis.call('HSET', KEYS[k], 't', string.format('%.17g', b[1]), 'l', string.format('%.17g', b[2]),
    'e', string.format('%.17g', b[3]))
  redis.call('PEXPIRE', KEYS[k], ttl)
end
return out
`);

/**
 * DistinctWindowStore.admitEach over a sorted set per window (id → time last read) and a companion key
 * holding the latest time seen, so that a clock stepping back cannot make ids expire early. Both keys
 * expire a window after the last call, when every id in them has expired anyway. One call runs several
 * admissions (ARGV[1] of them), one after another exactly as separate calls would; each one's ARGV are
 * now, window, the number of windows n, their caps, the number of ids, then the ids, and its KEYS the
 * next n (set, latest) pairs. The windows are tried in order and an admission stops at the first
 * refusal. The answer is, per admission, the number of windows it answered, then (admitted, distinct,
 * attempted) for each. Each window's latest time is read and written once per call.
 */
const admitScript = new LuaScript(`
local latestOf, windowOf, cutOf = {}, {}, {}
local out = {}
local a = 2
local kk = 0
for _ = 1, tonumber(ARGV[1]) do
  local clock = tonumber(ARGV[a])
  local window = tonumber(ARGV[a + 1])
  local n = tonumber(ARGV[a + 2])
  local caps = a + 3
  local ids = tonumber(ARGV[caps + n])
  local first = caps + n + 1
  a = first + ids
  local unique, seen = {}, {}
  for i = first, first + ids - 1 do
    local id = ARGV[i]
    if not seen[id] then
      seen[id] = true
      unique[#unique + 1] = id
    end
  end
  local count = #out + 1
  out[count] = 0
  for w = 1, n do
    local set, latestKey = KEYS[kk + 2 * w - 1], KEYS[kk + 2 * w]
    local cap = tonumber(ARGV[caps + w - 1])
    local now = clock
    local latest = latestOf[latestKey]
    if latest == nil then latest = tonumber(redis.call('GET', latestKey) or now) end
    if latest > now then now = latest end
    -- Ids are added at now, above every earlier cut: a cut no higher than one made already removes nothing.
    if cutOf[set] == nil or now - window > cutOf[set] then
      redis.call('ZREMRANGEBYSCORE', set, '-inf', now - window)
      cutOf[set] = now - window
    end
    local size = redis.call('ZCARD', set)
    local fresh = 0
    for _, id in ipairs(unique) do
      if not redis.call('ZSCORE', set, id) then fresh = fresh + 1 end
    end
    local attempted = size + fresh
    latestOf[latestKey] = now
    windowOf[latestKey] = window
    out[count] = w
    if attempted > cap then
      out[#out + 1] = 0
      out[#out + 1] = size
      out[#out + 1] = attempted
      break
    end
    for _, id in ipairs(unique) do redis.call('ZADD', set, now, id) end
    if #unique > 0 then redis.call('PEXPIRE', set, window) end
    out[#out + 1] = 1
    out[#out + 1] = size + fresh
    out[#out + 1] = attempted
  end
  kk = kk + 2 * n
end
for latestKey, now in pairs(latestOf) do
  redis.call('SET', latestKey, string.format('%.17g', now), 'PX', windowOf[latestKey])
end
return out
`);

/**
 * Collects the calls made in one turn of the event loop and sends them together, in the order made (at
 * most `max` at once): under load, many requests reach their limit checks in the same turn (their
 * sockets were read together), and each command costs a round trip and its parsing on both sides.
 * Each caller gets its own answer, or the error of the command that carried it.
 */
class PerTurn<Ask, Answer> {
  #pending: Array<{ ask: Ask; resolve: (answer: Answer) => void; reject: (error: unknown) => void }> = [];

  constructor(
    private readonly max: number,
    private readonly send: (asks: Ask[]) => Promise<Answer[]>,
  ) {}

  ask(ask: Ask): Promise<Answer> {
    return new Promise((resolve, reject) => {
      if (this.#pending.length === 0) setImmediate(() => this.#flush());
      this.#pending.push({ ask, resolve, reject });
      if (this.#pending.length >= this.max) this.#flush();
    });
  }

  #flush(): void {
    const calls = this.#pending;
    if (calls.length === 0) return;
    this.#pending = [];
    this.send(calls.map((c) => c.ask)).then(
      (answers) => calls.forEach((c, i) => c.resolve(answers[i] as Answer)),
      (error: unknown) => calls.forEach((c) => c.reject(error)),
    );
  }
}

/** Calls carried by one script call at most. */
const maxPerCall = 64;

interface Take {
  readonly buckets: readonly BucketSpec[];
  readonly cost: number;
  readonly nowMs: number;
}

/**
 * Token buckets in Redis, each take atomic across every bucket it names. The takes of one turn go in
 * one script call, in order: one command, and each shared bucket (global, app) read and written once.
 */
export class RedisBuckets implements TokenBucketStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #turn = new PerTurn(maxPerCall, (takes: Take[]) => this.#takeAll(takes));

  constructor(redis: Redis, keyPrefix: string) {
    this.#redis = redis;
    this.#prefix = `${keyPrefix}limits:bucket:`;
  }

  take(
    buckets: readonly BucketSpec[],
    cost: number,
    nowMs: number,
  ): Promise<{ allowed: boolean; tokens: number[] }> {
    return this.#turn.ask({ buckets, cost, nowMs });
  }

  async #takeAll(takes: Take[]): Promise<Array<{ allowed: boolean; tokens: number[] }>> {
    const keys: string[] = [];
    const index = new Map<string, number>();
    const args: Array<string | number> = [takes.length];
    for (const { buckets, cost, nowMs } of takes) {
      args.push(cost, nowMs, buckets.length);
      for (const b of buckets) {
        const key = this.#prefix + b.key;
        let k = index.get(key);
        if (k === undefined) {
          k = keys.push(key);
          index.set(key, k);
        }
        args.push(k, b.capacity, b.refillPerSecond, b.ttlMs);
      }
    }
    const reply = await takeScript.run(this.#redis, keys, args);
    const size = takes.reduce((sum, t) => sum + 1 + t.buckets.length, 0);
    if (!Array.isArray(reply) || reply.length !== size) {
      throw new Error('the token bucket script answered a malformed reply');
    }
    let at = 0;
    return takes.map((t) => {
      const answer = reply.slice(at, (at += 1 + t.buckets.length));
      return { allowed: answer[0] === 1, tokens: answer.slice(1).map((n) => Number(n)) };
    });
  }
}

interface Admit {
  readonly windows: ReadonlyArray<{ readonly key: string; readonly cap: number }>;
  readonly ids: readonly string[];
  readonly nowMs: number;
  readonly windowMs: number;
}

/**
 * The bulk-export guard's sliding windows in Redis, one sorted set per (app, object); the admissions of
 * one turn go in one script call, in order.
 */
export class RedisDistinctWindow implements DistinctWindowStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #turn = new PerTurn(maxPerCall, (admits: Admit[]) => this.#admitAll(admits));

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
  ): Promise<Admission> {
    const [result] = await this.admitEach([{ key, cap }], ids, nowMs, windowMs);
    return result;
  }

  admitEach(
    windows: ReadonlyArray<{ readonly key: string; readonly cap: number }>,
    ids: readonly string[],
    nowMs: number,
    windowMs: number,
  ): Promise<Admission[]> {
    return this.#turn.ask({ windows, ids, nowMs, windowMs });
  }

  async #admitAll(admits: Admit[]): Promise<Admission[][]> {
    const keys: string[] = [];
    const args: Array<string | number> = [admits.length];
    for (const { windows, ids, nowMs, windowMs } of admits) {
      for (const { key } of windows) keys.push(`${this.#prefix}${key}`, `${this.#prefix}${key}:latest`);
      args.push(nowMs, windowMs, windows.length, ...windows.map((w) => w.cap), ids.length, ...ids);
    }
    const reply = await admitScript.run(this.#redis, keys, args);
    if (!Array.isArray(reply) || !reply.every((n) => typeof n === 'number')) throw malformedAdmission();
    let at = 0;
    const answers = admits.map(({ windows }) => {
      const answered = reply[at] as number;
      if (!(answered >= 1 && answered <= windows.length)) throw malformedAdmission();
      const results: Admission[] = [];
      for (let i = at + 1; i < at + 1 + 3 * answered; i += 3) {
        if (i + 2 >= reply.length) throw malformedAdmission();
        results.push({
          admitted: reply[i] === 1,
          distinct: reply[i + 1] as number,
          attempted: reply[i + 2] as number,
        });
      }
      at += 1 + 3 * answered;
      // Every window answered unless one refused, and only the last may have.
      if (
        results.slice(0, -1).some((r) => !r.admitted) ||
        (results.length < windows.length && results.at(-1)?.admitted)
      ) {
        throw malformedAdmission();
      }
      return results;
    });
    if (at !== reply.length) throw malformedAdmission();
    return answers;
  }
}

function malformedAdmission(): Error {
  return new Error('the distinct window script answered a malformed reply');
}

/**
 * Puts (ARGV[3] a throttle) or lifts (ARGV[3] empty) the throttle of app ARGV[2] in the one hash that
 * holds every throttle, and forgets those ended by ARGV[1] (the caller's clock), so the hash stays as
 * small as the throttles in force.
 */
const throttleWriteScript = new LuaScript(`
local now = tonumber(ARGV[1])
local held = redis.call('HGETALL', KEYS[1])
for i = 1, #held, 2 do
  local ok, throttle = pcall(cjson.decode, held[i + 1])
  local untilMs = ok and type(throttle) == 'table' and tonumber(throttle.untilMs)
  if not untilMs or untilMs <= now then redis.call('HDEL', KEYS[1], held[i]) end
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[2])
else
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
end
return 1
`);

/**
 * How nodes tell each other at once that shared state changed (Redis pub/sub). A notice carries
 * nothing: each node reads the state itself, so a forged notice costs one read.
 */
export interface Fanout {
  /** Tells every node (this one too) to read again. Never rejects: periodic reads cover a lost notice. */
  announce(): Promise<void>;
  /** Calls `onNotice` for every notice, and once more whenever the channel comes back after a break. */
  subscribe(onNotice: () => void): () => void;
}

/**
 * Containment throttles shared by every node: one Redis hash (app → throttle, generation included)
 * is the source of truth, and each node answers `current` from its copy, read again on every notice
 * and every `throttleRefreshMs`, so a request never waits on Redis to learn of a throttle. The throttle's
 * bucket (its spec and generation) travels with it, so every node draws on the same Redis bucket.
 * While Redis cannot answer, a node keeps the copy it last read: its throttles end at their own time,
 * never for want of Redis.
 */
class RedisThrottles implements ThrottleStore {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #fanout: Fanout | undefined;
  #known = new Map<string, Throttle>();
  /** Reads issued, and the latest whose answer (or a change made here since) the copy reflects. */
  #issued = 0;
  #applied = 0;

  constructor(redis: Redis, keyPrefix: string, fanout: Fanout | undefined) {
    this.#redis = redis;
    this.#key = `${keyPrefix}limits:throttles`;
    this.#fanout = fanout;
  }

  current(appId: string, nowMs: number): Throttle | undefined {
    return inForce(this.#known, appId, nowMs);
  }

  async put(
    appId: string,
    throttle: { bucket: TokenBucket; untilMs: number; incident?: string },
    nowMs: number,
  ): Promise<void> {
    const held: Throttle = { ...throttle, generation: randomUUID() };
    const { generation, untilMs, bucket, incident } = held;
    const value = JSON.stringify({
      generation,
      untilMs,
      burst: bucket.burst,
      ratePerSecond: bucket.ratePerSecond,
      ...(incident !== undefined && { incident }),
    });
    await this.#write(appId, value, nowMs, (reason) =>
      [
        `cannot throttle app ${appId}: Redis did not confirm the throttle (${reason}),`,
        'so it is not in force here and may not be on other nodes; retry once Redis answers',
      ].join(' '),
    );
    this.#known.set(appId, held);
    this.#applied = this.#issued;
    await this.#fanout?.announce();
  }

  async lift(appId: string, nowMs: number): Promise<void> {
    await this.#write(appId, '', nowMs, (reason) =>
      [
        `cannot lift the throttle on app ${appId}: Redis did not confirm the lift (${reason}),`,
        'so nodes keep enforcing the throttle until it ends; retry once Redis answers',
      ].join(' '),
    );
    this.#known.delete(appId);
    this.#applied = this.#issued;
    await this.#fanout?.announce();
  }

  /** Replaces this node's copy with what Redis holds; throws, keeping the copy, when Redis cannot answer. */
  async refresh(): Promise<void> {
    const read = ++this.#issued;
    const held = await this.#redis.hgetall(this.#key);
    // An answer overtaken by a later one, or by a change made here meanwhile, would undo it.
    if (read <= this.#applied) return;
    this.#applied = read;
    const known = new Map<string, Throttle>();
    for (const [appId, value] of Object.entries(held)) {
      const throttle = parseThrottle(value);
      if (throttle) known.set(appId, throttle);
    }
    this.#known = known;
  }

  /** Runs the write script; when Redis does not confirm it, throws `failure(why)` (503). */
  async #write(appId: string, value: string, nowMs: number, failure: (why: string) => string): Promise<void> {
    try {
      await throttleWriteScript.run(this.#redis, [this.#key], [nowMs, appId, value]);
    } catch (cause) {
      const reason =
        this.#redis.status === 'ready'
          ? cause instanceof Error
            ? cause.message.split('\n')[0]
            : 'no answer'
          : `connection ${this.#redis.status}`;
      throw new DependencyUnavailable('DEPENDENCY_UNAVAILABLE', failure(reason), { cause });
    }
  }
}

/** A throttle as stored by `put`, or undefined when the value is not one (it is then not enforced). */
function parseThrottle(value: string): Throttle | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  const { generation, untilMs, burst, ratePerSecond, incident } = (parsed ?? {}) as Record<string, unknown>;
  if (
    typeof generation !== 'string' ||
    !/^[0-9a-f-]{1,64}$/.test(generation) ||
    !Number.isSafeInteger(untilMs) ||
    !Number.isSafeInteger(burst) ||
    (burst as number) < 1 ||
    typeof ratePerSecond !== 'number' ||
    !(ratePerSecond > 0 && Number.isFinite(ratePerSecond)) ||
    (incident !== undefined && (typeof incident !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(incident)))
  ) {
    return undefined;
  }
  return {
    generation,
    untilMs: untilMs as number,
    bucket: { burst: burst as number, ratePerSecond },
    ...(incident !== undefined && { incident }),
  };
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
  /** Tells the other nodes at once that the throttles changed; without it they learn at their next read. */
  readonly throttleFanout?: Fanout;
  /** How often each node reads the throttles again, notices or not (500 ms). */
  readonly throttleRefreshMs?: number;
}

export interface RedisLimitsBackend extends LimitsBackend {
  /** True while Redis cannot answer and this node enforces its share of each limit on its own. */
  readonly fallbackActive: boolean;
  /**
   * Reads the throttles in force from Redis into this node's copy; throws, keeping the copy, when Redis
   * cannot answer. Runs by itself on every notice and every `throttleRefreshMs`; await it once before
   * serving, so that a node started during a containment enforces it from its first request.
   */
  refreshThrottles(): Promise<void>;
  /** Stops reading the throttles (the timer, the notices); the caller closes the connection. */
  close(): void;
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
  const throttles = new RedisThrottles(redis, keyPrefix, options.throttleFanout);
  // A read that fails keeps the copy: the next notice or tick tries again.
  const refresh = () => void throttles.refresh().catch(() => undefined);
  const timer = setInterval(refresh, options.throttleRefreshMs ?? 500);
  timer.unref();
  const unsubscribe = options.throttleFanout?.subscribe(refresh);
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
    throttles,
    refreshThrottles: () => throttles.refresh(),
    close() {
      clearInterval(timer);
      unsubscribe?.();
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
      admitEach: (windows, ids, nowMs, windowMs) =>
        either(
          () => shared.distinct.admitEach(windows, ids, nowMs, windowMs),
          () =>
            local.distinct.admitEach(
              windows.map(({ key, cap }) => ({ key, cap: Math.floor(cap / nodes) })),
              ids,
              nowMs,
              windowMs,
            ),
        ),
    },
  };
}
