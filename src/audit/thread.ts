/**
 * Calls into one of the audit module's worker threads (writer-thread.ts, hasher-thread.ts): each call
 * is one message and one answer. A thread that dies (an uncaught error, out of memory, terminated)
 * fails closed: every call it held is refused at once, never left waiting, and the next call starts a
 * new thread.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';

/** A thread's answer to call `id`: its value, or why it failed (message and the cause's code). */
export type ThreadReply<T> =
  | { readonly id: number; readonly value: T }
  | { readonly id: number; readonly failure: { message: string; code?: string } };

/**
 * A thread's compiled entry: beside this file once built; when this file runs from source (vitest
 * transforms TypeScript, which a worker thread cannot load), the built copy in dist/.
 */
export function threadEntry(name: string): URL {
  return import.meta.url.endsWith('.ts')
    ? new URL(`../../dist/audit/${name}.js`, import.meta.url)
    : new URL(`./${name}.js`, import.meta.url);
}

export class AuditThread<Request, Value> {
  readonly #entry: URL;
  readonly #workerData: unknown;
  readonly #onStopped: (error: Error) => void;
  readonly #resourceLimits: ResourceLimits | undefined;
  readonly #inFlight = new Map<number, { resolve(value: Value): void; reject(error: Error): void }>();
  #worker: Worker | undefined;
  #next = 0;

  constructor(
    entry: URL,
    workerData: unknown,
    onStopped: (error: Error) => void,
    resourceLimits?: ResourceLimits,
  ) {
    this.#entry = entry;
    this.#workerData = workerData;
    this.#onStopped = onStopped;
    this.#resourceLimits = resourceLimits;
  }

  call(request: Request): Promise<Value> {
    const worker = (this.#worker ??= this.#spawn());
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#inFlight.set(id, { resolve, reject });
      // Held only while a call is out: an idle thread never keeps a process (a CLI command) alive.
      worker.ref();
      worker.postMessage({ id, request });
    });
  }

  /** Stops the thread; calls still out are refused, as when it crashes. The next call starts a new one. */
  async stop(): Promise<void> {
    await this.#worker?.terminate();
  }

  #spawn(): Worker {
    const worker = new Worker(this.#entry, {
      workerData: this.#workerData,
      ...(this.#resourceLimits && { resourceLimits: this.#resourceLimits }),
    });
    worker.on('message', (reply: ThreadReply<Value>) => {
      const waiting = this.#inFlight.get(reply.id);
      this.#inFlight.delete(reply.id);
      if (this.#inFlight.size === 0) worker.unref();
      if (!waiting) return;
      if ('value' in reply) waiting.resolve(reply.value);
      else waiting.reject(Object.assign(new Error(reply.failure.message), { code: reply.failure.code }));
    });
    worker.on('error', (error) => this.#stopped(worker, error));
    worker.on('exit', (code) =>
      this.#stopped(
        worker,
        Object.assign(
          new Error(`the audit ${this.#entry.pathname.split('/').pop()} thread stopped (exit code ${code})`),
          {
            code: 'AUDIT_THREAD_STOPPED',
          },
        ),
      ),
    );
    return worker;
  }

  #stopped(worker: Worker, error: Error): void {
    if (this.#worker === worker) this.#worker = undefined;
    if (this.#inFlight.size === 0) return;
    const held = [...this.#inFlight.values()];
    this.#inFlight.clear();
    for (const waiting of held) waiting.reject(error);
    this.#onStopped(error);
  }
}

/** The thread side: answers each call with `handle`'s value, or its failure. */
export function serveCalls<Request, Value>(
  port: {
    on(event: 'message', listener: (message: { id: number; request: Request }) => void): unknown;
    postMessage(reply: ThreadReply<Value>): void;
  },
  handle: (request: Request) => Promise<Value> | Value,
): void {
  port.on('message', ({ id, request }) => {
    Promise.resolve()
      .then(() => handle(request))
      .then(
        (value) => port.postMessage({ id, value }),
        (error: unknown) => {
          const code = (error as { code?: unknown } | null)?.code;
          port.postMessage({
            id,
            failure: {
              message: error instanceof Error ? error.message : 'the audit thread failed',
              ...(typeof code === 'string' && { code }),
            },
          });
        },
      );
  });
}
