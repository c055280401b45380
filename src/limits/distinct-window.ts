import type { Admission, DistinctWindowStore } from './backend.js';

interface Window {
  /** id → time last read; Map order is ascending time because a re-read deletes and re-inserts. */
  readonly seen: Map<string, number>;
  /** Latest time seen for this key, so a clock stepping back cannot reorder `seen`. */
  latest: number;
}

/**
 * An exact sliding-window distinct count per key, in memory. Each key holds at most `cap` ids (a read
 * that would pass the cap is refused, not recorded), expired ids go first in `seen`, and keys nobody
 * touched for a whole window are swept, so memory stays bounded by keys × cap.
 */
export class MemoryDistinctWindow implements DistinctWindowStore {
  readonly #windows = new Map<string, Window>();
  #lastSweep = -Infinity;

  admit(
    key: string,
    ids: readonly string[],
    nowMs: number,
    windowMs: number,
    cap: number,
  ): Promise<{ admitted: boolean; distinct: number; attempted: number }> {
    this.#sweep(nowMs, windowMs);
    let window = this.#windows.get(key);
    if (!window) {
      window = { seen: new Map(), latest: nowMs };
      this.#windows.set(key, window);
    }
    const now = Math.max(nowMs, window.latest);
    window.latest = now;
    expire(window, now - windowMs);

    const unique = new Set(ids);
    let fresh = 0;
    for (const id of unique) if (!window.seen.has(id)) fresh += 1;
    const attempted = window.seen.size + fresh;
    if (attempted > cap) {
      if (window.seen.size === 0) this.#windows.delete(key);
      return Promise.resolve({ admitted: false, distinct: window.seen.size, attempted });
    }
    for (const id of unique) {
      window.seen.delete(id);
      window.seen.set(id, now);
    }
    if (window.seen.size === 0) this.#windows.delete(key);
    return Promise.resolve({ admitted: true, distinct: window.seen.size, attempted });
  }

  admitEach(
    windows: ReadonlyArray<{ readonly key: string; readonly cap: number }>,
    ids: readonly string[],
    nowMs: number,
    windowMs: number,
  ): Promise<Admission[]> {
    return admitInTurn((...args) => this.admit(...args), windows, ids, nowMs, windowMs);
  }

  /** Keys held; for tests and metrics. */
  get size(): number {
    return this.#windows.size;
  }

  /** Once per window, drops what expired under keys nobody has touched since. */
  #sweep(nowMs: number, windowMs: number): void {
    if (nowMs - this.#lastSweep < windowMs) return;
    this.#lastSweep = nowMs;
    for (const [key, window] of this.#windows) {
      expire(window, Math.max(nowMs, window.latest) - windowMs);
      if (window.seen.size === 0) this.#windows.delete(key);
    }
  }
}

function expire(window: Window, cutoff: number): void {
  for (const [id, at] of window.seen) {
    if (at > cutoff) break;
    window.seen.delete(id);
  }
}

/** admitEach over a store's own `admit`: one window after another, stopping at the first refusal. */
export async function admitInTurn(
  admit: DistinctWindowStore['admit'],
  windows: ReadonlyArray<{ readonly key: string; readonly cap: number }>,
  ids: readonly string[],
  nowMs: number,
  windowMs: number,
): Promise<Admission[]> {
  const results: Admission[] = [];
  for (const { key, cap } of windows) {
    const result = await admit(key, ids, nowMs, windowMs, cap);
    results.push(result);
    if (!result.admitted) break;
  }
  return results;
}
