import { DependencyUnavailable, TokenError } from '../errors/index.js';
import { lockSequence, type Db } from '../store/index.js';
import type { AccessTokenClaims } from './access-token.js';
import { maxTokenLifetimeSeconds } from './keys.js';
import { brokerDb, type BrokerDb, type RevocationKind } from './tables.js';

/** Where audit events go; the server passes its AuditLog. */
export interface AuditSink {
  append(event: import('../audit/index.js').AuditEvent): Promise<unknown>;
}

export interface RevokeAllOptions {
  /** Every token of this app (its app id). */
  appId?: string;
  /** Every token of this user: matched against the token's `sub` and its `email`. */
  userId?: string;
  /** Why; recorded with the revocation and in the audit event. */
  reason: string;
  /** Who asked (an admin's email, `detect`, `cli`); defaults to `system`. */
  actor?: string;
  audit?: AuditSink;
  now?: Date;
}

export interface RevokeAllResult {
  /** Refresh tokens revoked in the database. */
  refreshTokens: number;
}

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

/**
 * Revokes every token of an app, of a user, or of one user in one app (both given): refresh tokens are
 * marked revoked, and a revocation entry makes every node refuse the access tokens issued up to this
 * second (within `broker.revocationPollMs`; at once where RevocationList.sync() announces it through
 * Redis afterwards). Needs only the database: the CLI calls it without a
 * running server. Containment and offboarding use it.
 */
export async function revokeAll(db: Db | BrokerDb, options: RevokeAllOptions): Promise<RevokeAllResult> {
  const { appId, userId, reason } = options;
  if (appId === undefined && userId === undefined) throw new TypeError('revokeAll needs appId or userId');
  if (typeof reason !== 'string' || reason === '') throw new TypeError('revokeAll needs a reason');
  const now = seconds(options.now ?? new Date());
  const broker = brokerDb(db);
  let kind: RevocationKind;
  let value: string;
  if (appId !== undefined && userId !== undefined) {
    kind = 'app_user';
    value = JSON.stringify([appId, userId]);
  } else if (appId !== undefined) {
    kind = 'app';
    value = appId;
  } else {
    kind = 'user';
    value = userId as string;
  }
  const refreshTokens = await broker.transaction().execute(async (trx) => {
    let update = trx
      .updateTable('broker_refresh_tokens')
      .set({ revoked_at: now })
      .where('revoked_at', 'is', null);
    if (appId !== undefined) update = update.where('app_id', '=', appId);
    if (userId !== undefined)
      update = update.where((eb) => eb.or([eb('sub', '=', userId), eb('email', '=', userId)]));
    const result = await update.executeTakeFirst();
    await lockSequence(trx as unknown as Db, 'token_revocations');
    await trx
      .insertInto('token_revocations')
      .values({
        kind,
        value,
        issued_before: now,
        expires_at: now + maxTokenLifetimeSeconds,
        reason,
        created_at: now,
      })
      .execute();
    return Number(result.numUpdatedRows);
  });
  await options.audit?.append({
    timestamp: new Date(now * 1000).toISOString(),
    actor_id: options.actor ?? 'system',
    actor_role: 'system',
    app_id: appId ?? '',
    action: 'token.revoke_all',
    resource_type: 'token',
    resource_id:
      kind === 'app' ? `app:${appId}` : kind === 'user' ? `user:${userId}` : `app:${appId} user:${userId}`,
    scope: '',
    request_id: `revoke-${now}`,
    trace_id: '',
    outcome: 'allow',
    reason,
  });
  return { refreshTokens };
}

/** Records one revocation of a single token (`jti`) or of a sign-in (`family`). */
export async function recordRevocation(
  db: BrokerDb,
  entry: { kind: 'jti' | 'family'; value: string; expiresAt: number; reason: string; now: number },
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await lockSequence(trx as unknown as Db, 'token_revocations');
    await trx
      .insertInto('token_revocations')
      .values({
        kind: entry.kind,
        value: entry.value,
        issued_before: 0,
        expires_at: entry.expiresAt,
        reason: entry.reason,
        created_at: entry.now,
      })
      .execute();
  });
}

/**
 * How nodes tell each other at once that `token_revocations` changed (Redis pub/sub at scale). A notice
 * carries nothing: each node reads the table itself, so the database stays the only source of truth and
 * a forged notice costs one read.
 */
export interface RevocationFanout {
  /** Tells every node (this one too) to read revocations now. Never rejects: polling covers a lost notice. */
  announce(): Promise<void>;
  /** Calls `onNotice` for every notice, and once more whenever the channel comes back after a break. */
  subscribe(onNotice: () => void): () => void;
  /** False while notices cannot arrive (the channel is down). */
  readonly listening: boolean;
}

/**
 * Without notices a node learns of a revocation only by polling, so it accepts tokens only while its
 * last successful read is this recent: the contract's "holds on every node within a second".
 */
const unheardStalenessMs = 1000;

/**
 * This node's view of `token_revocations`, read at the first check, then every `pollMs`, and at once
 * on a fan-out notice. A check fails closed (503) when the view may be stale:
 * - its last successful read is older than `maxStalenessMs`; or, when a fan-out is configured but not
 *   listening (Redis down), older than one second, since polling is then the only way news arrives;
 * - a notice said revocations changed and the read it prompted failed (until a read succeeds).
 * Staleness is measured on the monotonic clock, never the (possibly frozen) broker clock.
 */
export class RevocationList {
  readonly #db: BrokerDb;
  readonly #pollMs: number;
  readonly #maxStalenessMs: number;
  readonly #fanout: RevocationFanout | undefined;
  readonly #jtis = new Map<string, number>();
  readonly #families = new Map<string, number>();
  /** value → [issued_before, expires_at] */
  readonly #since = new Map<string, [number, number]>();
  #lastSeq = 0;
  #lastSync = Number.NEGATIVE_INFINITY;
  #loading: Promise<void> | undefined;
  #reading: Promise<void> | undefined;
  #readAgain: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed = false;
  #polls = 0;

  constructor(db: BrokerDb, options: { pollMs: number; maxStalenessMs: number; fanout?: RevocationFanout }) {
    this.#db = db;
    this.#pollMs = options.pollMs;
    this.#maxStalenessMs = options.maxStalenessMs;
    this.#fanout = options.fanout;
  }

  /** The first full read, then polling and notices; later calls answer at once. */
  ready(): Promise<void> {
    this.#loading ??= this.#refresh().then(() => {
      if (this.#closed) return;
      this.#timer = setInterval(() => {
        this.#refresh().catch(() => undefined);
      }, this.#pollMs);
      this.#timer.unref();
      this.#unsubscribe = this.#fanout?.subscribe(() => {
        // Told of a change it cannot read, the node must not go on trusting its view.
        this.#refresh().catch(() => {
          this.#lastSync = Number.NEGATIVE_INFINITY;
        });
      });
    });
    return this.#loading;
  }

  /**
   * Call after writing a revocation: reads it into this node's view, then tells the other nodes, who
   * read it within milliseconds instead of at their next poll.
   */
  async sync(): Promise<void> {
    try {
      await this.#refresh();
    } finally {
      await this.#fanout?.announce();
    }
  }

  /**
   * Reads entries added since the last read. A read already running may have started before the
   * caller's change committed, so the caller then gets one more read, queued after it.
   */
  #refresh(): Promise<void> {
    if (this.#reading === undefined) {
      this.#reading = this.#read().finally(() => {
        this.#reading = undefined;
      });
      return this.#reading;
    }
    this.#readAgain ??= this.#reading
      .catch(() => undefined)
      .then(() => {
        this.#readAgain = undefined;
        return this.#refresh();
      });
    return this.#readAgain;
  }

  async #read(): Promise<void> {
    const started = performance.now();
    const now = Math.floor(Date.now() / 1000);
    for (;;) {
      const rows = await this.#db
        .selectFrom('token_revocations')
        .selectAll()
        .where('seq', '>', this.#lastSeq)
        .where('expires_at', '>', now)
        .orderBy('seq')
        .limit(5000)
        .execute();
      for (const row of rows) {
        this.#lastSeq = Math.max(this.#lastSeq, Number(row.seq));
        const expires = Number(row.expires_at);
        if (row.kind === 'jti') this.#jtis.set(row.value, expires);
        else if (row.kind === 'family') this.#families.set(row.value, expires);
        else {
          const key = `${row.kind}\u0000${row.value}`;
          const before = Number(row.issued_before);
          const known = this.#since.get(key);
          this.#since.set(key, [Math.max(before, known?.[0] ?? 0), Math.max(expires, known?.[1] ?? 0)]);
        }
      }
      if (rows.length < 5000) break;
    }
    this.#lastSync = started;
    if (++this.#polls % 240 === 0) await this.#prune(now);
  }

  async #prune(now: number): Promise<void> {
    for (const map of [this.#jtis, this.#families]) {
      for (const [value, expires] of map) if (expires <= now) map.delete(value);
    }
    for (const [key, [, expires]] of this.#since) if (expires <= now) this.#since.delete(key);
    await this.#db
      .deleteFrom('token_revocations')
      .where('expires_at', '<', now - 60)
      .execute();
  }

  /** Throws TOKEN_REVOKED when any revocation covers the token; DEPENDENCY_UNAVAILABLE when stale. */
  check(claims: AccessTokenClaims): void {
    const bound =
      this.#fanout !== undefined && !this.#fanout.listening
        ? Math.min(this.#maxStalenessMs, unheardStalenessMs)
        : this.#maxStalenessMs;
    if (performance.now() - this.#lastSync > bound) {
      throw new DependencyUnavailable(
        'DEPENDENCY_UNAVAILABLE',
        'token revocations cannot be read; retry shortly',
      );
    }
    const since = (kind: RevocationKind, value: string) => {
      const entry = this.#since.get(`${kind}\u0000${value}`);
      return entry !== undefined && claims.iat <= entry[0];
    };
    const revoked =
      this.#jtis.has(claims.jti) ||
      (claims.sid !== undefined && this.#families.has(claims.sid)) ||
      since('app', claims.app_id) ||
      since('user', claims.sub) ||
      (claims.email !== undefined && since('user', claims.email)) ||
      since('app_user', JSON.stringify([claims.app_id, claims.sub])) ||
      (claims.email !== undefined && since('app_user', JSON.stringify([claims.app_id, claims.email])));
    if (revoked) throw new TokenError('TOKEN_REVOKED', 'the access token has been revoked');
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#unsubscribe?.();
  }
}
