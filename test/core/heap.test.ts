import { heapSize } from "bun:jsc";
import { expect, test } from "bun:test";
import { HeapBudget } from "../../src/core/heap";

test("a chunk that leaves the heap beyond its budget brings a full collection, down to what is in use; one within it does not", () => {
  const budget = new HeapBudget(4 << 20);
  expect(budget.afterChunk()).toBe(false);
  const before = heapSize();
  /* about 20 MB of objects that die at once, as a chunk's pending writes do after its commit */
  const pending = { writes: Array.from({ length: 300_000 }, (_, i) => ({ i, s: `203.0.113.${i}` })) };
  expect(heapSize()).toBeGreaterThan(before + (4 << 20));
  pending.writes = [];
  expect(budget.afterChunk()).toBe(true);
  expect(heapSize()).toBeLessThan(before + (4 << 20));
  expect(budget.afterChunk()).toBe(false);
});
