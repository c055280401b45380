import {
  controlChannel,
  openSession,
  readControlRevision,
  storeKindOf,
  type Db,
  type Session,
} from '../store/index.js';

/**
 * One node's view of the control state (active policy, playbook, signing keys): loaded from the store,
 * reloaded when the store's control revision moves (PostgreSQL NOTIFY at once, a poll of the revision
 * as the backstop and on SQLite), and trusted only while confirmed recently: older than the staleness
 * bound, the node must refuse rather than serve on policy or keys that may have changed.
 */
export interface ControlSnapshot<T> {
  current(): T;
  /** Why the snapshot may not be served on (unconfirmed for longer than the bound); undefined if fresh. */
  stale(): string | undefined;
  /** The last reload that failed (the state before it stays in force); undefined once one succeeds. */
  problem(): string | undefined;
  readonly revision: number;
  /** Reads the revision now and reloads when it moved (also what the poll and NOTIFY do). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export interface ControlSnapshotOptions<T> {
  db: Db;
  /** Loads the state; `previous` is what is in force (to keep what did not change). */
  load(previous: T | undefined): Promise<T>;
  pollMs: number;
  maxStalenessMs: number;
  /** A reload succeeded (`undefined`) or failed (its problem; the previous state stays). */
  onReload?(problem: string | undefined): void;
  /** The snapshot went stale (the reason) or is confirmed again (`undefined`). */
  onStale?(reason: string | undefined): void;
  now?(): number;
}

export async function openControlSnapshot<T>(
  options: ControlSnapshotOptions<T>,
): Promise<ControlSnapshot<T>> {
  const { db, pollMs, maxStalenessMs } = options;
  const now = options.now ?? Date.now;
  let revision = await readControlRevision(db);
  let state = await options.load(undefined);
  let confirmedAt = now();
  let problem: string | undefined;
  let wasStale = false;
  let checking: Promise<void> | undefined;
  let closed = false;
  let session: Session | undefined;

  const stale = () => {
    const age = now() - confirmedAt;
    return age > maxStalenessMs
      ? `the control state was last confirmed with the store ${Math.round(age / 1000)} s ago (bound ${maxStalenessMs / 1000} s)`
      : undefined;
  };
  const noteStaleness = () => {
    const reason = stale();
    if ((reason !== undefined) !== wasStale) {
      wasStale = reason !== undefined;
      options.onStale?.(reason);
    }
  };

  async function check(): Promise<void> {
    const seen = await readControlRevision(db);
    confirmedAt = now();
    if (seen !== revision) {
      // Marked seen before loading: a version that fails to load is reported once, not at every poll.
      revision = seen;
      try {
        state = await options.load(state);
        problem = undefined;
        options.onReload?.(undefined);
      } catch (error) {
        problem = error instanceof Error ? error.message : 'the control state failed to load';
        options.onReload?.(problem);
      }
    }
  }
  // One check at a time: a store that hangs does not pile up reads, it just lets the snapshot age. A
  // change announced while a check runs gets one more check after it: that one may have read the
  // revision before the change.
  let again = false;
  const refresh = (): Promise<void> => {
    if (checking) {
      again = true;
      return checking;
    }
    checking = check()
      .catch(() => undefined)
      .finally(() => {
        checking = undefined;
        noteStaleness();
        if (again) {
          again = false;
          void refresh();
        }
      });
    return checking;
  };

  async function listen(): Promise<void> {
    if (closed || storeKindOf(db) !== 'postgres' || session?.alive) return;
    const opened = await openSession(db, 'gatehouse-control');
    opened.onLost(() => {
      if (session === opened) session = undefined;
    });
    session = opened;
    await opened.listen(controlChannel, () => void refresh());
  }
  await listen();

  const timer = setInterval(() => {
    void refresh();
    noteStaleness();
    // A lost LISTEN session comes back with the store; until then the poll carries the changes.
    listen().catch(() => undefined);
  }, pollMs);
  timer.unref();

  return {
    current: () => state,
    stale,
    problem: () => problem,
    get revision() {
      return revision;
    },
    refresh,
    async close() {
      closed = true;
      clearInterval(timer);
      await session?.close();
    },
  };
}
