/**
 * `gatehouse serve --workers N`: N worker processes (node:cluster) share the listener. What must hold
 * across them, and where it lives:
 * - the audit log: each worker's writer thread appends through SQLite's write lock (one totally
 *   ordered log, as two processes on one file always could); PostgreSQL has its one sequencer. The
 *   primary signs the final checkpoint once, after every worker has drained and stopped.
 * - limits: without Redis the counters live in the primary (limits' primaryHeldBackend), so a limit
 *   of K allows K, not N × K; with Redis they are shared there as between nodes.
 * - revocation: a revocation made through one worker is read by every other worker before its
 *   request is answered, so the next request, wherever it lands, is refused.
 * - detection: only the first worker runs it (it reads what the others append from the store).
 * The first worker starts alone (migrations, demo seeding), then the others.
 */
import cluster, { type Worker } from 'node:cluster';
import type { RevocationFanout } from '../broker/index.js';
import type { Config } from '../config/index.js';
import { limitsHub, primaryHeldBackend, type LimitsBackend } from '../limits/index.js';
import { freePort } from './gatehouse.js';
import { openGatehouseModules } from './modules.js';

/** Marks Gatehouse's own IPC messages among anything else a process may receive. */
const tag = 'gatehouse-cluster';
/** How long a worker waits for its siblings to read a revocation before answering anyway (they poll). */
const noticeWaitMs = 2000;

type Message =
  | { tag: typeof tag; id: number; kind: string; payload: unknown }
  | { tag: typeof tag; re: number; value?: unknown; error?: string };

/** One end of a request/answer channel over a process's IPC, in either direction. */
class Peer {
  readonly #send: (message: Message) => void;
  readonly #waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  readonly #handlers = new Map<string, (payload: unknown) => unknown>();
  #next = 0;

  constructor(send: (message: Message) => void) {
    this.#send = send;
  }

  handle(kind: string, handler: (payload: unknown) => unknown): void {
    this.#handlers.set(kind, handler);
  }

  request(kind: string, payload: unknown): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      try {
        this.#send({ tag, id, kind, payload });
      } catch (error) {
        this.#waiting.delete(id);
        reject(error instanceof Error ? error : new Error('the cluster channel is closed'));
      }
    });
  }

  receive(message: unknown): void {
    if (typeof message !== 'object' || message === null || (message as { tag?: unknown }).tag !== tag) return;
    const m = message as Message;
    if ('re' in m) {
      const waiting = this.#waiting.get(m.re);
      this.#waiting.delete(m.re);
      if (m.error === undefined) waiting?.resolve(m.value);
      else waiting?.reject(new Error(m.error));
      return;
    }
    const handler = this.#handlers.get(m.kind);
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`no handler for ${m.kind}`);
        return handler(m.payload);
      })
      .then(
        (value) => this.#send({ tag, re: m.id, value }),
        (error: unknown) =>
          this.#send({ tag, re: m.id, error: error instanceof Error ? error.message : 'failed' }),
      )
      .catch(() => undefined);
  }

  /** Refuses every request still waiting (the other end is gone). */
  close(reason: string): void {
    for (const waiting of this.#waiting.values()) waiting.reject(new Error(reason));
    this.#waiting.clear();
  }
}

/** What a worker process gets from the cluster to build its Gatehouse with. */
export interface ClusterMembership {
  /** The first worker runs detection; the others do not. */
  readonly first: boolean;
  /** Without Redis: counters in the primary. */
  readonly limits: LimitsBackend;
  /** Tells every sibling worker of a revocation and waits until each has read it. */
  readonly revocationFanout: RevocationFanout;
}

/** Worker side: undefined unless this process is a Gatehouse cluster worker. */
export function joinCluster(): ClusterMembership | undefined {
  if (!cluster.isWorker || process.env.GATEHOUSE_WORKER === undefined) return undefined;
  const peer = new Peer((message) => {
    if (!process.send) throw new Error('no IPC channel to the primary');
    process.send(message);
  });
  process.on('message', (message) => peer.receive(message));
  process.on('disconnect', () => peer.close('the primary process is gone'));
  const limits = primaryHeldBackend({ request: (kind, payload) => peer.request(kind, payload) });
  peer.handle('throttle', (payload) => {
    const { appId, throttle } = payload as {
      appId: string;
      throttle?: Parameters<typeof limits.applyThrottle>[1];
    };
    limits.applyThrottle(appId, throttle);
  });
  const listeners = new Set<() => Promise<void> | void>();
  peer.handle('revocations', () => Promise.all([...listeners].map((listener) => listener())));
  return {
    first: process.env.GATEHOUSE_WORKER === '1',
    limits,
    revocationFanout: {
      async announce() {
        await peer.request('announce', null).catch(() => undefined);
      },
      subscribe(onNotice) {
        listeners.add(onNotice);
        return () => listeners.delete(onNotice);
      },
      get listening() {
        return process.connected;
      },
    },
  };
}

/** What the first worker reports once it listens: what the banner shows. */
export interface WorkerReady {
  readonly url: string;
  readonly metricsUrl?: string | undefined;
  readonly crmVendorUrl?: string | undefined;
}

/**
 * The primary process of `serve --workers N`: resolves the port once (port 0 too), runs the workers,
 * and once they have all stopped signs the final checkpoint (SQLite; on PostgreSQL the sequencer
 * worker signs it as any node does). Resolves with the process's exit code.
 */
export async function serveWorkers(config: Config, onReady: (info: WorkerReady) => void): Promise<number> {
  const port = config.server.port === 0 ? await freePort(config.server.host) : config.server.port;
  return runPrimary({
    workers: config.server.workers,
    env: { GATEHOUSE_WORKER_PORT: String(port) },
    onReady,
    stopWithinMs: config.server.shutdownGraceMs + 20_000,
    async finish() {
      if (config.database.url) return;
      // The serving role's audit log, opened only to sign the final checkpoint (witnessed as configured).
      const modules = await openGatehouseModules(config, { role: 'serve' });
      try {
        await modules.audit();
      } finally {
        await modules.close();
      }
    },
  });
}

interface PrimaryOptions {
  readonly workers: number;
  /** Added to each worker's environment. */
  readonly env: Record<string, string>;
  /** Called once every worker listens, with what the first one reported. */
  onReady(info: WorkerReady): void;
  /** Signs the final checkpoint once every worker has stopped. */
  finish(): Promise<void>;
  /** How long workers get to stop before they are killed. */
  readonly stopWithinMs: number;
}

/**
 * Primary side: starts the workers (the first alone), answers their limits and revocation notices,
 * restarts none (a worker that dies is reported; the others serve on), and on SIGTERM/SIGINT stops
 * them all, then runs `finish` once. Resolves with the exit code once everything has stopped.
 */
async function runPrimary(options: PrimaryOptions): Promise<number> {
  const hub = limitsHub();
  const peers = new Map<Worker, Peer>();
  const broadcast = (kind: string, payload: unknown, except?: Worker) =>
    Promise.allSettled(
      [...peers].filter(([worker]) => worker !== except).map(([, peer]) => peer.request(kind, payload)),
    );
  const fork = (n: number): Promise<{ worker: Worker; info: WorkerReady }> => {
    const worker = cluster.fork({ ...options.env, GATEHOUSE_WORKER: String(n) });
    const peer = new Peer((message) => worker.send(message));
    peers.set(worker, peer);
    peer.handle('take', (ask) => hub.take(ask));
    peer.handle('admit', (ask) => hub.admit(ask));
    peer.handle('throttle', async (change) => {
      await broadcast('throttle', hub.throttle(change));
    });
    peer.handle('announce', () =>
      Promise.race([
        broadcast('revocations', null, worker),
        new Promise((resolve) => setTimeout(resolve, noticeWaitMs).unref()),
      ]),
    );
    return new Promise((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if ((message as { ready?: unknown } | null)?.ready !== undefined) {
          resolve({ worker, info: (message as { ready: WorkerReady }).ready });
        } else {
          peer.receive(message);
        }
      });
      worker.on('exit', (code, signal) => {
        peers.delete(worker);
        peer.close('the worker stopped');
        reject(new Error(`worker ${n} stopped before it was ready (${signal ?? `exit code ${code}`})`));
        if (stopping) return;
        process.stderr.write(`worker ${n} stopped (${signal ?? `exit code ${code}`})\n`);
        // The others serve on; with none left there is nothing to serve.
        if (peers.size === 0) process.kill(process.pid, 'SIGTERM');
      });
    });
  };

  let stopping = false;
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`${signal}: stopping ${peers.size} workers, then signing a final checkpoint\n`);
      const force = setTimeout(() => {
        for (const worker of peers.keys()) worker.process.kill('SIGKILL');
      }, options.stopWithinMs);
      force.unref();
      const exits = [...peers.keys()].map(
        (worker) =>
          new Promise<void>((done) => (worker.isDead() ? done() : worker.once('exit', () => done()))),
      );
      for (const worker of peers.keys()) worker.process.kill('SIGTERM');
      void Promise.all(exits)
        .then(() => options.finish())
        .then(
          () => resolve(0),
          () => resolve(1),
        );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

  try {
    const first = await fork(1);
    await Promise.all(Array.from({ length: options.workers - 1 }, (_, i) => fork(i + 2)));
    options.onReady(first.info);
  } catch (error) {
    for (const worker of peers.keys()) worker.process.kill('SIGTERM');
    throw error;
  }
  return stopped;
}

/** Worker side: tells the primary this worker listens (the first one's `info` makes the banner). */
export function reportReady(info: WorkerReady): void {
  process.send?.({ ready: info });
}

/** Redis's fan-out (other nodes) and the cluster's (sibling workers) together; either may be absent. */
export function bothFanouts(...fanouts: Array<RevocationFanout | undefined>): RevocationFanout | undefined {
  const present = fanouts.filter((fanout): fanout is RevocationFanout => fanout !== undefined);
  if (present.length <= 1) return present[0];
  return {
    async announce() {
      await Promise.all(present.map((fanout) => fanout.announce()));
    },
    subscribe(onNotice) {
      const stops = present.map((fanout) => fanout.subscribe(onNotice));
      return () => stops.forEach((stop) => stop());
    },
    get listening() {
      return present.every((fanout) => fanout.listening);
    },
  };
}
