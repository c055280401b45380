import { describe, expect, it } from 'vitest';
import { heapGrowingFlag, serverHeapGrowingPercent } from './heap.js';

describe('heapGrowingFlag', () => {
  it('has a serving process collect its old generation sooner than V8 would by default', () => {
    expect(heapGrowingFlag([])).toBe(`--heap-growing-percent=${serverHeapGrowingPercent}`);
    expect(heapGrowingFlag(['--enable-source-maps', '--max-old-space-size=4096'])).toBe(
      `--heap-growing-percent=${serverHeapGrowingPercent}`,
    );
  });

  it("leaves the operator's own growing factor, given to node, in place", () => {
    expect(heapGrowingFlag(['--heap-growing-percent=20'])).toBeUndefined();
    expect(heapGrowingFlag(['--heap_growing_percent=80'])).toBeUndefined();
  });
});
