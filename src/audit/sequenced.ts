/**
 * The audit log on PostgreSQL, where many nodes append to one log the way Trillian does. A node
 * queues its events in `audit_queue`; the one sequencer (whichever node holds the advisory lock)
 * takes them in queue order, integrates them into the tree in batches and signs checkpoints. An
 * append resolves once its event is in the tree, so a response still waits for its event.
 *
 * Leadership is a session-level advisory lock held on a dedicated connection, and the sequencer
 * writes only through that connection: if the process dies, PostgreSQL ends the session, frees the
 * lock, and another node's next try takes over from what is stored. Nothing acknowledged is lost
 * (a queued row stays until integrated), and the tree cannot fork (an index is a primary key,
 * written only by the lock holder). Notifications wake the sequencer and the waiting nodes; a poll
 * every tick backs them up. The sequencer's append listeners hear every node's events as it integrates
 * them, so whatever watches the whole log (detection) runs there.
 *
 * A client (the CLI, role 'client') never competes for the role: it only queues. While no node holds
 * the role, it stands in for one integration and signature and gives the lock back at once, so a
 * serving node is never kept from the role by a command that happens to run.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { openSession, releaseAdvisoryLock, tryAdvisoryLock, type Db, type Session } from '../store/index.js';
import type { NoteSigner } from './checkpoint.js';
import { GroupCommitLog } from './group-commit.js';
import type { AuditLog, AuditLogOptions } from './log.js';
import type { GrowRequest, GrowValue } from './hasher-thread.js';
import { guard } from './reader.js';
import { AuditThread, threadEntry } from './thread.js';
import {
  appendTime,
  encodeAsked,
  growTree,
  headOf,
  loadHead,
  maxBatch,
  planAppend,
  signTree,
  unavailable,
  type Asked,
  type Head,
  type HeadRow,
  type Pending,
} from './tree.js';

const channel = 'gatehouse_audit';
/** Leadership tries, the sequencer's heartbeat, and the poll that backs up notifications. */
const tickMs = 250;
/** An append not integrated by then answers AUDIT_UNAVAILABLE (its event may still land later). */
const appendTimeoutMs = 10_000;
/** How long a non-sequencer waits for the sequencer to sign a checkpoint it asked for. */
const checkpointWaitMs = 5_000;

/** The advisory lock name of the sequencer role. */
export const sequencerLock = 'audit-sequencer';

export async function openSequencedLog(
  options: AuditLogOptions,
  signer: NoteSigner,
  interval: number,
): Promise<AuditLog & GroupCommitLog> {
  const log = new SequencedAuditLog(options, signer, interval);
  await log.start();
  return log;
}

interface Waiting extends Pending {
  readonly deadline: number;
}

/** A batch read and hashed, written once the batch before it has committed. */
interface Prepared {
  /** The tree this batch grows: its write first checks that the store still ends there. */
  readonly base: Head;
  /** The tree once it is written. */
  readonly head: Head;
  /** The write's parameters: its event rows and subtree hashes as JSON, and their append time. */
  readonly rows: { readonly events: string; readonly nodes: string; readonly createdAt: string };
  /** Its events in index order from the base's size: the queued ones, then this node's own. */
  readonly appended: ReadonlyArray<{ readonly leafHash: string; readonly canonical: string }>;
  /** The queue rows integrated, in index order. */
  readonly fromQueue: readonly string[];
  readonly local: readonly Pending[];
  /** Every queue row it took (integrated or dropped): the read of the batch after it leaves them out. */
  readonly taken: readonly string[];
  /** The queue may hold more than this batch took. */
  readonly more: boolean;
}

class SequencedAuditLog extends GroupCommitLog implements AuditLog {
  readonly #interval: number;
  readonly #onSequencerChange: (leading: boolean) => void;
  /** The session's idle timeout: a sequencer that stops answering this long loses the role. */
  readonly #leaseMs: number;
  /** A client never competes for the sequencer role; it only stands in while nobody holds it. */
  readonly #client: boolean;
  /** The client's stand-ins, one after another (#asStandIn). */
  #standInChain: Promise<void> = Promise.resolve();
  /** Names this instance's queue rows; with the counter, keeps its events in append order. */
  readonly #nodeId = randomBytes(6).toString('hex');
  #counter = 0;
  #lastQueuedAt = '';
  /** Queued by this instance, waiting for the sequencer to give them an index. */
  readonly #waiting = new Map<string, Waiting>();
  #session: Session | undefined;
  #connectError: unknown;
  /** Serializes use of the session: one connection runs one thing at a time. */
  #sessionChain: Promise<unknown> = Promise.resolve();
  /** Integrations, one after another; an append of this node's waiting ends a drain's pipeline early. */
  #integrationChain: Promise<unknown> = Promise.resolve();
  #appendsWaiting = 0;
  /** Drains of the queue queued or running: while one is, the tick leaves the queue to it. */
  #drainsPending = 0;
  /** The session that holds the sequencer lock, while this node holds it. */
  #leader: Session | undefined;
  #head: Head | undefined;
  /** Checks and hashes what the sequencer integrates, off the event loop; started on first use. */
  readonly #hasher: AuditThread<GrowRequest, GrowValue>;
  #grown = false;
  #lastSignedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  readonly #integrateSoon: () => void;
  readonly #pollSoon: () => void;
  readonly #signSoon: () => void;
  readonly #standInSoon: () => void;
  #checkpointWakers: Array<() => void> = [];

  constructor(options: AuditLogOptions, signer: NoteSigner, interval: number) {
    super(options, signer);
    this.#interval = interval;
    this.#onSequencerChange = options.onSequencerChange ?? (() => undefined);
    this.#client = options.role === 'client';
    this.#leaseMs = options.sequencerLeaseMs ?? 15_000;
    if (!Number.isSafeInteger(this.#leaseMs) || this.#leaseMs < 4 * tickMs) {
      throw new TypeError(`sequencerLeaseMs must be an integer of at least ${4 * tickMs}`);
    }
    const report = (error: unknown) => this.onBackgroundError(error);
    this.#hasher = new AuditThread(threadEntry('hasher-thread'), undefined, report);
    this.#integrateSoon = coalesced(() => this.#integrate([]), report);
    this.#pollSoon = coalesced(() => this.#pollWaiting(), report);
    this.#signSoon = coalesced(() => this.#sign(), report);
    this.#standInSoon = coalesced(() => this.#standIn(), report);
  }

  /** Connects, tries for the sequencer role once, and starts the tick. */
  async start(): Promise<void> {
    await this.#connect();
    if (!this.#session) throw unavailable('the audit log cannot reach the database', this.#connectError);
    if (!this.#client) await this.#tryLead();
    this.#timer = setInterval(() => void this.#tick(), tickMs);
    this.#timer.unref();
  }

  sequencing(): boolean {
    return !this.#client && this.#isLeading() && !this.closing;
  }

  /** The sequencer integrates its own batches directly (one transaction); other nodes queue theirs. */
  protected async commit(asked: readonly Asked[]): Promise<void> {
    const batch = encodeAsked(asked);
    if (batch.length === 0) return;
    if (this.#client || !this.#isLeading()) return this.#enqueue(batch);
    await this.#integrate(batch).catch(async (cause: unknown) => {
      // The role moved before the write began: the batch goes through the queue instead.
      if (cause instanceof NotSequencer) return this.#enqueue(batch);
      const error = unavailable('the audit trail cannot be written', cause);
      for (const pending of batch) pending.reject(error);
    });
  }

  /** Queues a batch for the sequencer (one insert and a notification, one commit). */
  async #enqueue(batch: readonly Pending[]): Promise<void> {
    let queuedAt = this.now().toISOString();
    // Within this instance, queue order is append order even if the clock steps back.
    if (queuedAt < this.#lastQueuedAt) queuedAt = this.#lastQueuedAt;
    this.#lastQueuedAt = queuedAt;
    const deadline = Date.now() + appendTimeoutMs;
    const rows = batch.map((pending) => {
      const id = `${this.#nodeId}:${String(this.#counter++).padStart(12, '0')}`;
      // Waiting before the insert commits: an "integrated" notice during the insert finds it.
      this.#waiting.set(id, { ...pending, deadline });
      return { id, event: pending.canonical, queued_at: queuedAt };
    });
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx.insertInto('audit_queue').values(rows).execute();
        await sql`select pg_notify(${channel}, 'queued')`.execute(trx);
      });
      if (this.#client) this.#standInSoon();
    } catch (cause) {
      const error = unavailable('the audit trail cannot be written', cause);
      for (const row of rows) {
        this.#waiting.get(row.id)?.reject(error);
        this.#waiting.delete(row.id);
      }
    }
  }

  /** Resolves this instance's queued events that the sequencer has integrated; expires the overdue. */
  async #pollWaiting(): Promise<void> {
    if (this.#waiting.size === 0) return;
    const waiting = [...this.#waiting].map(([id, pending]) => ({
      id,
      request_id: pending.requestId,
      leaf_hash: pending.leaf.toString('hex'),
    }));
    const found: Array<{ id: string; idx: number }> = [];
    for (let i = 0; i < waiting.length; i += maxBatch) {
      found.push(...(await findIntegrated(this.db, waiting.slice(i, i + maxBatch))));
    }
    this.#resolveQueued(found);
    const now = Date.now();
    for (const [id, waiting] of this.#waiting) {
      if (waiting.deadline > now) continue;
      this.#waiting.delete(id);
      waiting.reject(unavailable('no audit sequencer integrated the event in time'));
    }
  }

  #resolveQueued(found: ReadonlyArray<{ id: string; idx: number }>): void {
    for (const { id, idx } of found) {
      const waiting = this.#waiting.get(id);
      if (!waiting) continue;
      this.#waiting.delete(id);
      waiting.resolve({ index: idx, leafHash: waiting.leaf.toString('hex') });
    }
  }

  #isLeading(): boolean {
    return this.#leader !== undefined && this.#leader.alive;
  }

  /**
   * Runs `work` on the session, one thing at a time. With `asLeader`, only on the session that holds
   * the sequencer lock, checked when the work runs: a write never goes out on a session that lost it.
   */
  #onSession<T>(work: (session: Session) => Promise<T>, asLeader = false): Promise<T> {
    const run = this.#sessionChain.then(() => {
      const session = asLeader ? this.#leader : this.#session;
      if (!session?.alive) {
        throw asLeader ? new NotSequencer() : new Error('the audit session is not connected');
      }
      return work(session);
    });
    this.#sessionChain = run.catch(() => undefined);
    return run;
  }

  /** (Re)connects the session; a failure is reported once per outage and the tick keeps trying. */
  async #connect(): Promise<void> {
    if (this.#session?.alive) return;
    try {
      const session = await openSession(this.db, 'gatehouse-audit', { idleSessionTimeoutMs: this.#leaseMs });
      session.onLost((error) => this.#lost(session, error));
      await session.listen(channel, (payload) => this.#notified(payload));
      this.#session = session;
      this.#connectError = undefined;
    } catch (error) {
      if (this.#connectError === undefined) this.onBackgroundError(error);
      this.#connectError = error;
    }
  }

  #notified(payload: string): void {
    if (payload === 'queued' && this.#isLeading()) this.#integrateSoon();
    else if (payload === 'integrated' && this.#waiting.size > 0) this.#pollSoon();
    else if (payload === 'sign' && this.#isLeading()) this.#signSoon();
    else if (payload === 'signed') for (const wake of this.#checkpointWakers.splice(0)) wake();
  }

  #lost(session: Session, error: unknown): void {
    if (this.#session === session) this.#session = undefined;
    if (this.#leader === session) {
      this.#leader = undefined;
      this.#head = undefined;
      this.#onSequencerChange(false);
      this.onBackgroundError(error);
    }
  }

  async #tryLead(): Promise<void> {
    if (this.#client || this.#isLeading() || !this.#session?.alive || this.closing) return;
    const session = await this.#onSession(async (current) =>
      (await tryAdvisoryLock(current.db, sequencerLock)) ? current : undefined,
    );
    if (!session?.alive) return;
    // The hashing thread starts now, not inside the first integration's transaction.
    await this.#hasher.call({ size: 0, hashes: [], queued: [], createdAt: '' }).catch(() => undefined);
    this.#leader = session;
    this.#head = undefined;
    // The first checkpoint comes an interval from now, like every later one: signed at the first tick,
    // it would be served before its witnesses had answered (a reader asking first gets it cosigned).
    this.#lastSignedAt = Date.now();
    this.#onSequencerChange(true);
    // Whatever the previous sequencer left queued goes in at once.
    this.#integrateSoon();
  }

  /**
   * A client's stand-in for an absent sequencer: runs `work` as the sequencer only if no node holds the
   * role now, then gives the lock back at once. Undefined when a node holds it (that node does the work).
   */
  #asStandIn<T>(work: () => Promise<T>): Promise<T | undefined> {
    // One stand-in at a time: PostgreSQL's advisory lock is re-entrant within a session, so a second
    // would "take" it too and, ending first, clear the role under the one still integrating.
    const run = this.#standInChain.then(() => this.#standInOnce(work));
    this.#standInChain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #standInOnce<T>(work: () => Promise<T>): Promise<T | undefined> {
    if (!this.#client || !this.#session?.alive) return undefined;
    const session = await this.#onSession(async (current) =>
      (await tryAdvisoryLock(current.db, sequencerLock)) ? current : undefined,
    );
    if (!session) return undefined;
    this.#leader = session;
    this.#head = undefined;
    try {
      return await work();
    } finally {
      this.#leader = undefined;
      this.#head = undefined;
      if (session.alive) await releaseAdvisoryLock(session.db, sequencerLock);
    }
  }

  /** While this client's events wait and no node sequences: integrates the queue and signs over it. */
  async #standIn(): Promise<void> {
    if (this.#waiting.size === 0) return;
    await this.#asStandIn(async () => {
      while (this.#waiting.size > 0 && (await this.#integrate([]))) {
        // More than one batch was queued: keep integrating until this client's events are in.
      }
      if (this.#grown) await this.#sign();
    });
  }

  /**
   * The sequencer's write, a pipeline of two stages: while one batch is written on the lock-holding
   * session (one statement, which commits whole or not at all), the next is read from the queue on
   * another connection (leaving out the rows being written) and hashed on the hashing thread. A batch
   * is written only after the one before it committed, by a statement that first checks the store
   * still ends where the batch grows the tree; if a write fails, the batch after it is never written
   * and the next run starts again from what is stored. A batch of this node's own events goes alone,
   * without reading the queue (the queue's notification drains it). True when the queue may hold more.
   */
  #integrate(local: readonly Pending[]): Promise<boolean> {
    const append = local.length > 0;
    if (append) this.#appendsWaiting++;
    else this.#drainsPending++;
    const run = this.#integrationChain
      .then(() => {
        if (append) this.#appendsWaiting--;
        return this.#integrateNow(local);
      })
      .finally(() => {
        if (!append) this.#drainsPending--;
      });
    this.#integrationChain = run.catch(() => undefined);
    return run;
  }

  async #integrateNow(local: readonly Pending[]): Promise<boolean> {
    if (local.length === 0 && !this.#isLeading()) return false;
    try {
      let batch = await this.#prepare(local);
      while (batch) {
        const writing = this.#write(batch);
        // An append of this node's waiting: it goes next, and the drain resumes after it. Another drain
        // waiting (a notification's) does not stop this one: it finds what this one leaves.
        const next = batch.more && this.#appendsWaiting === 0 ? this.#prepare([], batch) : undefined;
        next?.catch(() => undefined);
        await writing;
        this.#settle(batch);
        if (!next) {
          if (batch.more && !this.#client) this.#integrateSoon();
          return batch.more;
        }
        batch = await next;
      }
      return false;
    } catch (error) {
      this.#head = undefined;
      throw error;
    }
  }

  /**
   * Reads and hashes a batch: this node's own events on the head it knows, or the oldest queued events
   * after the store's head, or (`after`) the queued events after the batch being written, on the tree
   * that batch grows. Undefined when there is nothing to integrate.
   */
  async #prepare(local: readonly Pending[], after?: Prepared): Promise<Prepared | undefined> {
    const { head, queued } = after
      ? { head: after.head, queued: await readQueue(this.db, after.taken) }
      : local.length > 0
        ? { head: this.#head ?? (await loadHead(this.db, undefined)), queued: [] }
        : await readHeadAndQueue(this.db, this.#head);
    if (local.length === 0 && queued.length === 0) return undefined;
    const now = this.now().toISOString();
    if (queued.length === 0) {
      // A few leaves already hashed: growing the tree by them costs less than a trip to the thread.
      const growth = growTree(
        head.range,
        local.map((pending) => pending.leaf),
      );
      const planned = planAppend(head, local, now, growth);
      return {
        base: head,
        head: planned.head,
        rows: {
          events: JSON.stringify(planned.events),
          nodes: JSON.stringify(growth.nodes),
          createdAt: planned.head.lastAppendedAt,
        },
        appended: local.map((pending, i) => ({
          leafHash: planned.results[i].leafHash,
          canonical: pending.canonical,
        })),
        fromQueue: [],
        local,
        taken: [],
        more: false,
      };
    }
    // Checking and hashing the queued events, growing the tree, and encoding the write's rows run on
    // the hashing thread: the event loop only moves their text.
    const createdAt = appendTime(head, now);
    const grown = await this.#hasher.call({
      size: head.range.size,
      hashes: head.range.hashes.map((hash) => hash.toString('hex')),
      queued: queued.map((row) => row.event),
      createdAt,
    });
    const appended: Array<{ leafHash: string; canonical: string }> = [];
    const fromQueue: string[] = [];
    queued.forEach((row, i) => {
      const leafHash = grown.leaves[i];
      // Null: not an event this code queued (the queue is outside the trust boundary): dropped, never hashed.
      if (leafHash === null) return;
      appended.push({ leafHash, canonical: row.event });
      fromQueue.push(row.id);
    });
    const last = appended.at(-1);
    return {
      base: head,
      head: {
        range: { size: grown.size, hashes: grown.hashes.map((hex) => Buffer.from(hex, 'hex')) },
        lastLeaf: last ? Buffer.from(last.leafHash, 'hex') : head.lastLeaf,
        lastAppendedAt: last ? createdAt : head.lastAppendedAt,
      },
      rows: { events: grown.events, nodes: grown.nodes, createdAt },
      appended,
      fromQueue,
      local,
      taken: queued.map((row) => row.id),
      more: queued.length === maxBatch,
    };
  }

  /** Writes a prepared batch on the lock-holding session; refused unless the store ends at its base. */
  async #write(batch: Prepared): Promise<void> {
    const wrote = await this.#onSession(
      (session) =>
        writeBatch(session.db, {
          base: batch.base,
          ...batch.rows,
          taken: batch.taken,
          integrated: batch.fromQueue.length,
        }),
      true,
    );
    if (!wrote)
      throw unavailable('the audit store no longer ends where the sequencer left it; nothing was written');
  }

  /** After its write committed: the new head, the waiting appends answered, the listeners told. */
  #settle(batch: Prepared): void {
    const { base, appended, fromQueue, local } = batch;
    const results = appended.map(({ leafHash }, i) => ({ index: base.range.size + i, leafHash }));
    this.#head = batch.head;
    if (results.length > 0) this.#grown = true;
    this.#resolveQueued(fromQueue.map((id, i) => ({ id, idx: results[i].index })));
    local.forEach((pending, i) => pending.resolve(results[fromQueue.length + i]));
    // Every node's events, in index order: the sequencer is where the whole log can be watched.
    this.listeners.notify(appended.map(({ canonical }, i) => ({ ...results[i], canonical })));
  }

  /** Signs the tree (sequencer only) and tells the nodes waiting for a checkpoint. */
  async #sign(): Promise<string> {
    this.#grown = false;
    try {
      this.assertIntact();
      const { note, head } = await this.#onSession(
        (session) =>
          session.db.transaction().execute(async (trx) => {
            const signed = await signTree(
              trx,
              this.#head,
              this.signer,
              this.verifier,
              this.now().toISOString(),
            );
            await sql`select pg_notify(${channel}, 'signed')`.execute(trx);
            return signed;
          }),
        true,
      );
      this.#head = head;
      this.#lastSignedAt = Date.now();
      return note;
    } catch (error) {
      this.#grown = true;
      this.#head = undefined;
      throw this.#leader === undefined || !this.#leader.alive ? new NotSequencer() : error;
    }
  }

  async latestCheckpoint(): Promise<string> {
    return this.cosigned(await this.#signedOrAwaited());
  }

  #signedOrAwaited(): Promise<string> {
    return guard(async () => {
      if (this.#isLeading()) return this.#sign();
      const signedHere = await this.#asStandIn(() => this.#sign());
      if (signedHere !== undefined) return signedHere;
      // Not the sequencer: ask it to sign, and wait for a checkpoint covering the tree as it is now.
      const size = await this.reader.size();
      await sql`select pg_notify(${channel}, 'sign')`.execute(this.db);
      const deadline = Date.now() + checkpointWaitMs;
      for (;;) {
        const latest = await this.db
          .selectFrom('audit_checkpoints')
          .select(['size', 'note'])
          .orderBy('size', 'desc')
          .limit(1)
          .executeTakeFirst();
        if (latest && Number(latest.size) >= size) return latest.note;
        if (this.#isLeading()) return this.#sign();
        if (Date.now() >= deadline) throw unavailable('no audit sequencer signed a checkpoint in time');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 100);
          this.#checkpointWakers.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    });
  }

  /** Every tick: reconnect, try for the role, keep the role alive, back up the notifications. */
  #tick(): Promise<void> {
    this.#ticking ??= (async () => {
      try {
        await this.#connect();
        await this.#tryLead();
        if (this.#client) await this.#standIn();
        if (this.#isLeading()) {
          // A drain under way takes whatever is queued; the tick goes on to sign while it runs.
          if (this.#drainsPending === 0) await this.#integrate([]);
          if (this.#grown && Date.now() - this.#lastSignedAt >= this.#interval) {
            // The witnesses answer in the background: a slow one never holds up integration.
            this.cosigned(await this.#sign()).catch(this.onBackgroundError);
          }
        }
        await this.#pollWaiting();
      } catch (error) {
        this.onBackgroundError(error);
      }
    })().finally(() => {
      this.#ticking = undefined;
    });
    return this.#ticking;
  }

  /**
   * Writes what was appended here (waiting for the sequencer, or taking the role when nobody holds
   * it), signs a final checkpoint when this node is the sequencer, and gives the role up.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.#timer);
      this.stopWatchingIntegrity();
      try {
        await this.drained();
        const deadline = Date.now() + appendTimeoutMs;
        while (this.#waiting.size > 0 && Date.now() < deadline) {
          await this.#tick();
          if (this.#waiting.size > 0) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        while (this.#ticking) await this.#ticking;
        // The role may have lapsed while this process was busy: take it back if nobody holds it.
        await this.#tick();
        if (this.#isLeading()) {
          try {
            await this.#integrate([]);
            // The final checkpoint is witnessed too, so a stopped log verifies with its quorum.
            await this.cosigned(await this.#sign()).catch(this.onBackgroundError);
          } catch (error) {
            // Lost on the way: whoever holds the role now signs; nothing of this node's is left to write.
            if (!(error instanceof NotSequencer)) throw error;
          }
        }
      } finally {
        await this.#hasher.stop();
        const session = this.#session;
        this.#session = undefined;
        if (this.#leader) this.#onSequencerChange(false);
        this.#leader = undefined;
        await session?.close();
      }
    })();
    return this.closing;
  }
}

/** The sequencer role left this node before a write that needs it committed (nothing was written). */
class NotSequencer extends Error {
  readonly code = 'NOT_SEQUENCER';
  constructor() {
    super('this node is not the audit sequencer');
  }
}

/** Runs `work` now, or once more after the current run when called while it runs. */
function coalesced(work: () => Promise<unknown>, onError: (error: unknown) => void): () => void {
  let running = false;
  let again = false;
  const run = () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    void work()
      .catch(onError)
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          run();
        }
      });
  };
  return run;
}

/**
 * The head (see loadHead) and the oldest queued events, up to maxBatch, in one statement. The queue is
 * read in the order of its index (queued_at, id), so that PostgreSQL walks the index and stops at the
 * batch instead of sorting every queued row.
 */
async function readHeadAndQueue(
  db: Db,
  cached: Head | undefined,
): Promise<{ head: Head; queued: Array<{ id: string; event: string }> }> {
  const { rows } = await sql<HeadRow & { queued_id: string | null; queued_event: string | null }>`
    select h.checkpoint_size, h.idx, h.leaf_hash, h.created_at, q.id as queued_id, q.event as queued_event
    from (select (select max(size) from audit_checkpoints) as checkpoint_size, e.idx, e.leaf_hash, e.created_at
          from (select 1 as one) as o
          left join (select idx, leaf_hash, created_at from audit_events order by idx desc limit 1) as e on true) as h
    left join lateral (select id, event, queued_at from audit_queue
                       order by queued_at, id limit ${maxBatch}) as q on true
    order by q.queued_at, q.id`.execute(db);
  const queued: Array<{ id: string; event: string }> = [];
  for (const row of rows) {
    if (row.queued_id !== null && row.queued_event !== null)
      queued.push({ id: row.queued_id, event: row.queued_event });
  }
  return { head: await headOf(db, rows[0], cached), queued };
}

/**
 * The oldest queued events after the batch being written, leaving out the rows it took (they stay
 * pending until it commits). NOT IN over a subquery is a hashed set, not a scan per row.
 */
async function readQueue(db: Db, taken: readonly string[]): Promise<Array<{ id: string; event: string }>> {
  const { rows } = await sql<{ id: string; event: string }>`
    select id, event from audit_queue
    where id not in (select json_array_elements_text(${JSON.stringify(taken)}::json))
    order by queued_at, id limit ${maxBatch}`.execute(db);
  return rows;
}

/**
 * One batch in one statement, written only if the store still ends at `base` (its size and last leaf):
 * the events and subtree hashes inserted, every queue row the batch took deleted (the integrated and
 * the malformed; the nodes waiting for theirs told). A deleted row costs PostgreSQL far less than one
 * rewritten with its index (a new row version and new entries in both of the queue's indexes); its
 * node finds the index in the log itself (findIntegrated). Rows travel as one JSON parameter each,
 * which PostgreSQL parses natively, so the statement's text is the same whatever the batch's size.
 * False when the store did not end at `base` (nothing written).
 */
async function writeBatch(
  db: Db,
  batch: {
    base: Head;
    /** JSON arrays of audit_events rows (idx, event, leaf_hash, request_id, app_id) and of audit_nodes rows. */
    events: string;
    nodes: string;
    createdAt: string;
    taken: readonly string[];
    integrated: number;
  },
): Promise<boolean> {
  const { base, events, nodes, createdAt, taken, integrated } = batch;
  const { rows } = await sql<{ ok: boolean }>`
    with base as (
      select coalesce((select e.idx + 1 = ${base.range.size}::bigint and e.leaf_hash = ${base.lastLeaf?.toString('hex') ?? ''}
                       from audit_events as e order by e.idx desc limit 1), ${base.range.size}::bigint = 0) as ok
    ), appended as (
      insert into audit_events (idx, event, leaf_hash, request_id, app_id, created_at)
      select v.idx, v.event, v.leaf_hash, v.request_id, v.app_id, ${createdAt}
      from base, json_to_recordset(${events}::json)
                   as v(idx bigint, event text, leaf_hash text, request_id text, app_id text)
      where base.ok
    ), hashed as (
      insert into audit_nodes (level, idx, hash)
      select v.level, v.idx, v.hash
      from base, json_to_recordset(${nodes}::json) as v(level integer, idx bigint, hash text)
      where base.ok
    ), taken as (
      delete from audit_queue where id = any(${taken}::text[]) and (select ok from base)
    )
    select b.ok from base as b
    left join lateral (select pg_notify(${channel}, 'integrated') where b.ok and ${integrated}::integer > 0) as n
      on true`.execute(db);
  return rows[0]?.ok === true;
}

/**
 * The index of each waiting event that is in the log: its queue row is gone (deleted only by the write
 * that integrated it, in the same transaction) and the log holds its leaf under its request id (an
 * indexed column). Byte-identical events, which share a leaf, each get an index of their own.
 */
async function findIntegrated(
  db: Db,
  waiting: ReadonlyArray<{ id: string; request_id: string; leaf_hash: string }>,
): Promise<Array<{ id: string; idx: number }>> {
  const { rows } = await sql<{ id: string; idx: string }>`
    select w.id, e.idx
    from json_to_recordset(${JSON.stringify(waiting)}::json) as w(id text, request_id text, leaf_hash text)
    join audit_events as e on e.request_id = w.request_id and e.leaf_hash = w.leaf_hash
    where not exists (select 1 from audit_queue as q where q.id = w.id)
    order by w.id, e.idx`.execute(db);
  return assignIndexes(rows.map((row) => ({ id: row.id, idx: Number(row.idx) })));
}

/** One index per waiting id, none given twice: the first unused of its candidates (in order). */
function assignIndexes(
  candidates: ReadonlyArray<{ id: string; idx: number }>,
): Array<{ id: string; idx: number }> {
  const given = new Set<number>();
  const assigned = new Map<string, number>();
  for (const { id, idx } of candidates) {
    if (assigned.has(id) || given.has(idx)) continue;
    assigned.set(id, idx);
    given.add(idx);
  }
  return [...assigned].map(([id, idx]) => ({ id, idx }));
}
