import { sql } from 'kysely';
import { normaliseEmail } from '../catalog/index.js';
import { DependencyUnavailable, OAuthError, TokenError } from '../errors/index.js';
import { lockSequence, readMeta, storeKindOf, type Db } from '../store/index.js';
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
  /**
   * Every token and sign-in of this user: an e-mail address (compared in its normalised form; every
   * (issuer, sub) seen with it is revoked too) or the IdP's `sub`.
   */
  userId?: string;
  /** The IdP issuer a `sub` in userId belongs to; the data dir's development IdP in demo mode. */
  issuer?: string;
  /** Why; recorded with the revocation and in the audit event. */
  reason: string;
  /** Who asked (an admin's email, `detect`, `cli`); defaults to `system`. */
  actor?: string;
  /** The incident whose containment this is: a refused token names it. */
  incident?: string;
  /** Offboarding: the user's sign-ins stay refused, not only those made before now. */
  permanent?: boolean;
  audit?: AuditSink;
  now?: Date;
}

export interface RevokeAllResult {
  /** Refresh tokens revoked in the database. */
  refreshTokens: number;
}

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);
/** An entry that never lapses (offboarding): after any token or sign-in Gatehouse will ever see. */
const forever = 2 ** 53 - 1;

/** The revocation key of a user: the immutable pair (IdP issuer, `sub`). */
export function subjectKey(issuer: string, sub: string): string {
  return `subject:${JSON.stringify([issuer, sub])}`;
}

/**
 * The revocation key of a user named by an admin: an e-mail address (normalised), or the IdP's `sub`
 * with the issuer it belongs to; a `sub` alone only where no issuer is known.
 */
export function userKey(user: string, issuer?: string): string {
  if (user.includes('@')) return `email:${normaliseEmail(user)}`;
  return issuer === undefined ? `sub:${user}` : subjectKey(issuer, user);
}

/**
 * Every revocation key a subject is known by: its (issuer, sub), its `sub` alone (what a revocation
 * names when no issuer was known: it errs towards refusing), and its normalised e-mail when it has one.
 */
export function subjectKeys(subject: { issuer?: string; sub: string; email?: string }): string[] {
  return [
    ...(subject.issuer === undefined ? [] : [subjectKey(subject.issuer, subject.sub)]),
    `sub:${subject.sub}`,
    ...(subject.email === undefined ? [] : [userKey(subject.email)]),
  ];
}

/** The development IdP of a demo data dir; a configured IdP's issuer must be named by the caller. */
async function demoIssuer(db: Db): Promise<string | undefined> {
  if ((await readMeta(db, 'mode').catch(() => undefined)) !== 'demo') return undefined;
  return readMeta(db, 'idp_issuer').catch(() => undefined);
}

/**
 * The database's clock, in epoch seconds: every node stamps revocations with the same clock, so a
 * node whose own clock is off cannot shift what a revocation covers.
 */
export async function databaseSeconds(db: BrokerDb): Promise<number> {
  const query =
    storeKindOf(db as unknown as Db) === 'postgres'
      ? sql<{ now: string }>`select floor(extract(epoch from clock_timestamp()))::bigint as now`
      : sql<{ now: number }>`select cast(strftime('%s', 'now') as integer) as now`;
  const { rows } = await query.execute(db);
  return Number(rows[0]?.now);
}

/**
 * Revokes every token of an app, of a user, or of one user in one app (both given): refresh tokens are
 * marked revoked, and a revocation entry makes every node refuse the access tokens issued before it
 * (compared by revocation epoch: a token carries the last entry its issuing node had read, `rev`) and
 * the sign-ins (ID tokens, codes, refresh families) made at or before the database's time of it —
 * all of them for an offboarding (`permanent`). Every node sees it within `broker.revocationPollMs`,
 * at once where RevocationList.sync() announces it through Redis afterwards. Needs only the database:
 * the CLI calls it without a running server. Containment and offboarding use it.
 */
export async function revokeAll(db: Db | BrokerDb, options: RevokeAllOptions): Promise<RevokeAllResult> {
  const { appId, userId, reason } = options;
  if (appId === undefined && userId === undefined) throw new TypeError('revokeAll needs appId or userId');
  if (typeof reason !== 'string' || reason === '') throw new TypeError('revokeAll needs a reason');
  const broker = brokerDb(db);
  const issuer = options.issuer ?? (await demoIssuer(db as unknown as Db));
  const user = userId === undefined ? undefined : userKey(userId, issuer);
  // An e-mail is an attribute: the subjects seen with it are who it names, by their immutable key.
  const subjects =
    user?.startsWith('email:') === true
      ? await broker
          .selectFrom('broker_subjects')
          .select(['issuer', 'sub'])
          .where('email', '=', user.slice('email:'.length))
          .execute()
      : [];
  const users = user === undefined ? [] : [user, ...subjects.map((s) => subjectKey(s.issuer, s.sub))];
  const subs = [
    ...subjects.map((s) => s.sub),
    ...(user !== undefined && !user.startsWith('email:') ? [userId as string] : []),
  ];
  const kind: RevocationKind =
    appId !== undefined && user !== undefined ? 'app_user' : appId !== undefined ? 'app' : 'user';
  const values =
    kind === 'app'
      ? [appId as string]
      : kind === 'app_user'
        ? users.map((u) => JSON.stringify([appId, u]))
        : users;
  const { refreshTokens, at } = await broker.transaction().execute(async (trx) => {
    await lockSequence(trx as unknown as Db, 'token_revocations');
    const now = await databaseSeconds(trx);
    let update = trx
      .updateTable('broker_refresh_tokens')
      .set({ revoked_at: now })
      .where('revoked_at', 'is', null);
    if (appId !== undefined) update = update.where('app_id', '=', appId);
    if (user?.startsWith('email:')) {
      const email = user.slice('email:'.length);
      update = update.where((eb) =>
        eb.or([
          eb('email', '=', email),
          eb(eb.fn('lower', ['email']), '=', email),
          ...(subs.length > 0 ? [eb('sub', 'in', subs)] : []),
        ]),
      );
    } else if (user !== undefined) update = update.where('sub', 'in', subs);
    const result = await update.executeTakeFirst();
    const lasting = options.permanent === true && kind === 'user';
    await trx
      .insertInto('token_revocations')
      .values(
        values.map((value) => ({
          kind,
          value,
          issued_before: lasting ? forever : now,
          expires_at: lasting ? forever : now + maxTokenLifetimeSeconds,
          reason,
          created_at: now,
          incident: options.incident ?? null,
        })),
      )
      .execute();
    return { refreshTokens: Number(result.numUpdatedRows), at: now };
  });
  const stamp = options.now ?? new Date(at * 1000);
  await options.audit?.append({
    timestamp: stamp.toISOString(),
    actor_id: options.actor ?? 'system',
    actor_role: 'system',
    app_id: appId ?? '',
    action: 'token.revoke_all',
    resource_type: 'token',
    resource_id:
      kind === 'app' ? `app:${appId}` : kind === 'user' ? `user:${userId}` : `app:${appId} user:${userId}`,
    scope: '',
    request_id: `revoke-${seconds(stamp)}`,
    trace_id: '',
    outcome: 'allow',
    reason: options.incident === undefined ? reason : `${reason} (incident ${options.incident})`,
  });
  return { refreshTokens };
}

/** Records one revocation of a single token (`jti`) or of a sign-in (`family`). */
export async function recordRevocation(
  db: BrokerDb,
  entry: { kind: 'jti' | 'family' | 'kid'; value: string; expiresAt: number; reason: string; now: number },
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
        incident: null,
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
  /**
   * Calls `onNotice` for every notice, and once more whenever the channel comes back after a break.
   * `onNotice` settles once the node has read the change (a fan-out may wait for that).
   */
  subscribe(onNotice: () => Promise<void> | void): () => void;
  /** False while notices cannot arrive (the channel is down). */
  readonly listening: boolean;
}

/**
 * Without notices a node learns of a revocation only by polling, so it accepts tokens only while its
 * last successful read is this recent: the contract's "holds on every node within a second".
 */
const unheardStalenessMs = 1000;
/** A first read that failed is tried again this often, with or without traffic. */
const firstReadRetryMs = 1000;

/** One app, user or app+user revocation as a node holds it: the newest entry for that key. */
interface Cover {
  readonly seq: number;
  readonly issuedBefore: number;
  readonly expires: number;
  readonly incident: string | undefined;
}

/** What /readyz reports of the revocation list. */
export interface RevocationStatus {
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * This node's view of `token_revocations`, read at the first check, then every `pollMs`, and at once
 * on a fan-out notice. A failed first read is retried every second; until one succeeds, every check
 * answers 503. A check fails closed (503) when the view may be stale:
 * - its last successful read is older than `maxStalenessMs`; or, when a fan-out is configured but not
 *   listening (Redis down), older than one second, since polling is then the only way news arrives;
 * - a notice said revocations changed and the read it prompted failed (until a read succeeds).
 * Staleness is measured on the monotonic clock, never the (possibly frozen) broker clock. Access tokens
 * are compared by revocation epoch (`seq`), sign-ins by the database's clock: no node's clock decides.
 */
export class RevocationList {
  readonly #db: BrokerDb;
  readonly #pollMs: number;
  readonly #maxStalenessMs: number;
  readonly #fanout: RevocationFanout | undefined;
  readonly #jtis = new Map<string, number>();
  readonly #families = new Map<string, number>();
  readonly #kids = new Map<string, number>();
  /** `kind\0value` → the newest app, user or app+user entry. */
  readonly #covers = new Map<string, Cover>();
  #lastSeq = 0;
  #lastSync = Number.NEGATIVE_INFINITY;
  #loaded = false;
  #loading: Promise<void> | undefined;
  #reading: Promise<void> | undefined;
  #readAgain: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed = false;
  #polls = 0;

  constructor(db: BrokerDb, options: { pollMs: number; maxStalenessMs: number; fanout?: RevocationFanout }) {
    this.#db = db;
    this.#pollMs = options.pollMs;
    this.#maxStalenessMs = options.maxStalenessMs;
    this.#fanout = options.fanout;
  }

  /**
   * The first full read, then polling and notices; later calls answer at once. A failed first read
   * is forgotten (the next call, or the retry a second later, reads again) and answers 503.
   */
  ready(): Promise<void> {
    this.#loading ??= this.#refresh().then(
      () => this.#start(),
      (cause: unknown) => {
        this.#loading = undefined;
        this.#retryFirstRead();
        throw new DependencyUnavailable(
          'DEPENDENCY_UNAVAILABLE',
          'the token revocation list has not been read yet, so no token can be trusted; retry in a few seconds',
          { cause },
        );
      },
    );
    return this.#loading;
  }

  #start(): void {
    this.#loaded = true;
    if (this.#closed) return;
    this.#timer = setInterval(() => {
      this.#refresh().catch(() => undefined);
    }, this.#pollMs);
    this.#timer.unref();
    this.#unsubscribe = this.#fanout?.subscribe(() =>
      // Told of a change it cannot read, the node must not go on trusting its view.
      this.#refresh().catch(() => {
        this.#lastSync = Number.NEGATIVE_INFINITY;
      }),
    );
  }

  #retryFirstRead(): void {
    if (this.#closed || this.#retry !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.ready().catch(() => undefined);
    }, firstReadRetryMs);
    this.#retry.unref();
  }

  /** For /readyz: whether checks can be answered now, and why not. */
  status(): RevocationStatus {
    if (!this.#loaded) return { ok: false, detail: 'the revocation list has not been read yet (retrying)' };
    if (performance.now() - this.#lastSync > this.#bound()) {
      return { ok: false, detail: 'the revocation list is stale: its last read failed' };
    }
    return { ok: true, detail: `read through entry ${this.#lastSeq}` };
  }

  /** The revocation epoch a token issued now carries (`rev`): the last entry this node has read. */
  get epoch(): number {
    return this.#lastSeq;
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
    if (!this.#loaded) {
      // Entries already pruned or lapsed still count for the epoch: a token must not carry an older one.
      const top = await this.#db
        .selectFrom('token_revocations')
        .select((eb) => eb.fn.max('seq').as('top'))
        .executeTakeFirst();
      this.#lastSeq = Math.max(this.#lastSeq, Number(top?.top ?? 0));
    }
    let after = this.#loaded ? this.#lastSeq : 0;
    for (;;) {
      const rows = await this.#db
        .selectFrom('token_revocations')
        .selectAll()
        .where('seq', '>', after)
        .where('expires_at', '>', now)
        .orderBy('seq')
        .limit(5000)
        .execute();
      for (const row of rows) {
        const seq = Number(row.seq);
        after = Math.max(after, seq);
        this.#lastSeq = Math.max(this.#lastSeq, seq);
        const expires = Number(row.expires_at);
        if (row.kind === 'jti') this.#jtis.set(row.value, expires);
        else if (row.kind === 'family') this.#families.set(row.value, expires);
        else if (row.kind === 'kid') this.#kids.set(row.value, expires);
        else {
          const key = `${row.kind}\u0000${row.value}`;
          const known = this.#covers.get(key);
          this.#covers.set(key, {
            seq: Math.max(seq, known?.seq ?? 0),
            issuedBefore: Math.max(Number(row.issued_before), known?.issuedBefore ?? 0),
            expires: Math.max(expires, known?.expires ?? 0),
            incident: row.incident ?? known?.incident,
          });
        }
      }
      if (rows.length < 5000) break;
    }
    this.#lastSync = started;
    if (++this.#polls % 240 === 0) await this.#prune(now);
  }

  async #prune(now: number): Promise<void> {
    for (const map of [this.#jtis, this.#families, this.#kids]) {
      for (const [value, expires] of map) if (expires <= now) map.delete(value);
    }
    for (const [key, cover] of this.#covers) if (cover.expires <= now) this.#covers.delete(key);
    await this.#db
      .deleteFrom('token_revocations')
      .where('expires_at', '<', now - 60)
      .execute();
  }

  #bound(): number {
    return this.#fanout !== undefined && !this.#fanout.listening
      ? Math.min(this.#maxStalenessMs, unheardStalenessMs)
      : this.#maxStalenessMs;
  }

  #assertFresh(): void {
    if (!this.#loaded) {
      throw new DependencyUnavailable(
        'DEPENDENCY_UNAVAILABLE',
        'the token revocation list has not been read yet, so no token can be trusted; retry in a few seconds',
      );
    }
    if (performance.now() - this.#lastSync > this.#bound()) {
      throw new DependencyUnavailable(
        'DEPENDENCY_UNAVAILABLE',
        'token revocations cannot be read; retry shortly',
      );
    }
  }

  /** The app, user and app+user entries in force that name this subject in this app. */
  #coversOf(subject: { issuer?: string; sub: string; email?: string }, appId: string | undefined): Cover[] {
    return this.#coversAt(coverKeys(subject, appId));
  }

  #coversAt(keys: readonly string[]): Cover[] {
    const now = Math.floor(Date.now() / 1000);
    return keys
      .map((key) => this.#covers.get(key))
      .filter((cover): cover is Cover => cover !== undefined && cover.expires > now);
  }

  /** Whether a signing key has been revoked (it neither signs nor verifies, nor shows in JWKS). */
  keyRevoked(kid: string): boolean {
    const expires = this.#kids.get(kid);
    return expires !== undefined && expires > Math.floor(Date.now() / 1000);
  }

  /**
   * Throws TOKEN_REVOKED (naming the incident, when containment revoked it) when any revocation covers
   * the token or the key that signed it; DEPENDENCY_UNAVAILABLE when the view is unknown or stale. A
   * token without `rev` comes from before revocation epochs and counts as older than every entry.
   */
  check(claims: AccessTokenClaims, kid?: string): void {
    this.#assertFresh();
    if (kid !== undefined && this.keyRevoked(kid)) {
      throw new TokenError(
        'key_revoked',
        'the key that signed the access token has been revoked; get a new token',
      );
    }
    if (this.#jtis.has(claims.jti) || (claims.sid !== undefined && this.#families.has(claims.sid))) {
      throw new TokenError('revoked', 'the access token has been revoked; get a new token');
    }
    const now = Math.floor(Date.now() / 1000);
    const app = this.#covers.get(`app\u0000${claims.app_id}`);
    const covering = [
      ...(app !== undefined && app.expires > now ? [app] : []),
      ...this.#coversAt(tokenCoverKeys(claims)),
    ].filter((cover) => claims.rev === undefined || claims.rev < cover.seq);
    if (covering.length > 0) throw revokedBy(covering);
  }

  /**
   * Refuses a grant (token exchange, code, refresh) to a subject whose sign-in, made at `authTime`
   * (IdP seconds), a user revocation covers: made at or before the database's time of the revocation,
   * or any sign-in of an offboarded user. OAUTH_INVALID_GRANT naming the incident, if any.
   */
  checkSubject(
    subject: { issuer?: string; sub: string; email?: string; authTime?: number },
    appId: string,
  ): void {
    this.#assertFresh();
    const authTime = subject.authTime ?? 0;
    const covering = this.#coversOf(subject, appId).filter((cover) => authTime <= cover.issuedBefore);
    if (covering.length === 0) return;
    const incident = covering.find((cover) => cover.incident !== undefined)?.incident;
    throw new OAuthError(
      'OAUTH_INVALID_GRANT',
      incident === undefined
        ? "this user's access has been revoked or the user was offboarded; an administrator can say why"
        : `this user's access was revoked by the containment of incident ${incident}; sign in again once it is closed`,
    );
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#retry) clearTimeout(this.#retry);
    this.#unsubscribe?.();
  }
}

/** The keys of the user and app+user entries that would name this subject in this app. */
function coverKeys(
  subject: { issuer?: string; sub: string; email?: string },
  appId: string | undefined,
): string[] {
  const keys: string[] = [];
  for (const user of subjectKeys(subject)) {
    keys.push(`user\u0000${user}`);
    if (appId !== undefined) keys.push(`app_user\u0000${JSON.stringify([appId, user])}`);
  }
  return keys;
}

/**
 * coverKeys of a verified token, worked out once per claims object (the verified-token cache hands the
 * same one to every use of a token): only the keys are kept, the entries are looked up on every call.
 */
const coverKeysByToken = new WeakMap<AccessTokenClaims, readonly string[]>();

function tokenCoverKeys(claims: AccessTokenClaims): readonly string[] {
  let keys = coverKeysByToken.get(claims);
  if (!keys) {
    keys = coverKeys({ issuer: claims.idp, sub: claims.sub, email: claims.email }, claims.app_id);
    coverKeysByToken.set(claims, keys);
  }
  return keys;
}

function revokedBy(covering: readonly Cover[]): TokenError {
  const incident = covering.find((cover) => cover.incident !== undefined)?.incident;
  if (incident === undefined) {
    return new TokenError('revoked', 'the access token has been revoked; sign in again');
  }
  return new TokenError(
    'contained',
    `the access token was revoked by the containment of incident ${incident}; sign in again once it is closed`,
    { extensions: { incident } },
  );
}
