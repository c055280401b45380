/** A bounded map that forgets the least recently used entry first. */
export class Lru<V> {
  readonly #max: number;
  #map = new Map<string, V>();
  hits = 0;
  misses = 0;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new TypeError('Lru size must be a positive integer');
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Re-insert so that iteration order is least recently used first.
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }

  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
  }

  clear(): void {
    // A fresh map rather than Map#clear: on Node 20, clearing a large map and then using it in a hot
    // loop next to Wasm calls crashed V8's deoptimizer ("unreachable code") in our latency runs.
    this.#map = new Map();
    this.hits = 0;
    this.misses = 0;
  }
}
