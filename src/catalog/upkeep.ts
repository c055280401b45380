import type { Db } from '../store/index.js';
import type { Lifecycle } from './lifecycle.js';
import { refreshUsage, type AuditReader } from './usage.js';

/**
 * What a running server does for the catalog in the background: records lapsed approvals (they are
 * enforced at once anyway) and reads new audit events for last-use times. One run at a time; a failed
 * run is reported and the next one tries again. Answers the function that stops it.
 */
export function startCatalogUpkeep(options: {
  lifecycle: Lifecycle;
  db: Db;
  log: AuditReader;
  intervalMs?: number;
  onError(error: unknown): void;
}): () => void {
  let running: Promise<void> | undefined;
  const run = () => {
    running ??= (async () => {
      await options.lifecycle.expireApprovals();
      await refreshUsage(options.db, options.log);
    })()
      .catch(options.onError)
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(run, options.intervalMs ?? 30_000);
  timer.unref();
  return () => clearInterval(timer);
}
