/**
 * How eagerly V8 collects a serving process's old generation. Under load many of a request's objects
 * outlive a young-generation collection (the answer waits for its audit event), so the old generation
 * fills with garbage between full collections; on a machine with gigabytes of memory V8 lets it grow to
 * up to four times what survived the last one before collecting again, and that headroom, not live data,
 * was most of the server's RSS. A growing factor of 1.5 collects sooner. It is no ceiling: the heap still
 * grows to V8's usual limit when live data needs it. Only a process that starts the server applies it
 * (`serve`, `simulate`); the CLI's heavy commands (seed, exports) keep V8's defaults.
 */
import v8 from 'node:v8';

export const serverHeapGrowingPercent = 50;

/**
 * The V8 flag a serving process sets on itself: none when its operator gave node a growing factor
 * already (`node --heap-growing-percent=N bin/gatehouse.js serve`; node refuses it in NODE_OPTIONS).
 */
export function heapGrowingFlag(execArgv: readonly string[]): string | undefined {
  const chosen = execArgv.some((arg) => /^--heap[-_]growing[-_]percent(=|$)/.test(arg));
  return chosen ? undefined : `--heap-growing-percent=${serverHeapGrowingPercent}`;
}

/** Applies heapGrowingFlag to this process; V8 reads the factor at every full collection, so it takes effect now. */
export function collectOldGenerationSooner(): void {
  const flag = heapGrowingFlag(process.execArgv);
  if (flag) v8.setFlagsFromString(flag);
}
