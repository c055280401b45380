import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryDistinctWindow } from './distinct-window.js';

const windowMs = 60_000;

/** The obvious, unbounded model: every read kept with its time. */
class Model {
  readonly reads = new Map<string, Map<string, number>>();

  admit(key: string, ids: readonly string[], now: number, cap: number) {
    const seen = this.reads.get(key) ?? new Map<string, number>();
    this.reads.set(key, seen);
    for (const [id, at] of seen) if (at <= now - windowMs) seen.delete(id);
    const attempted = new Set([...seen.keys(), ...ids]).size;
    if (attempted > cap) return { admitted: false, distinct: seen.size, attempted };
    for (const id of ids) seen.set(id, now);
    return { admitted: true, distinct: seen.size, attempted };
  }
}

describe('MemoryDistinctWindow', () => {
  it('answers exactly as an unbounded model of the sliding window', async () => {
    const step = fc.record({
      key: fc.constantFrom('a', 'b'),
      ids: fc.array(fc.integer({ min: 0, max: 40 }).map(String), { maxLength: 12 }),
      advance: fc.integer({ min: 0, max: 30_000 }),
      cap: fc.integer({ min: 0, max: 30 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 60 }), async (steps) => {
        const store = new MemoryDistinctWindow();
        const model = new Model();
        let now = 1_000_000;
        for (const { key, ids, advance, cap } of steps) {
          now += advance;
          expect(await store.admit(key, ids, now, windowMs, cap)).toEqual(model.admit(key, ids, now, cap));
        }
      }),
    );
  });

  it('never holds more ids for a key than the cap', async () => {
    const store = new MemoryDistinctWindow();
    for (let i = 0; i < 1000; i += 1) {
      const result = await store.admit('k', [`id-${i}`], 0, windowMs, 10);
      expect(result.distinct).toBeLessThanOrEqual(10);
    }
  });

  it('forgets keys nobody read for a whole window', async () => {
    const store = new MemoryDistinctWindow();
    for (let i = 0; i < 100; i += 1) await store.admit(`app-${i}`, ['x', 'y'], 0, windowMs, 10);
    expect(store.size).toBe(100);
    await store.admit('another', ['x'], windowMs, windowMs, 10);
    expect(store.size).toBe(1);
  });

  it('does not let a clock stepping back make recent reads expire early', async () => {
    const store = new MemoryDistinctWindow();
    await store.admit('k', ['a'], 100_000, windowMs, 2);
    await store.admit('k', ['b'], 90_000, windowMs, 2); // counted as read at 100 000
    expect(await store.admit('k', ['c'], 155_000, windowMs, 2)).toMatchObject({
      admitted: false,
      distinct: 2,
    });
  });
});
