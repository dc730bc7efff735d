import { expect, test } from "bun:test";
import { HeapBudget } from "../../src/core/heap";

/*
 * What is ours is the decision; what a full collection frees is JavaScriptCore's (conservative
 * about the stack, so not asserted here): the peak RSS it saves is measured by bench/peers.ts.
 */
test("a full collection comes after a chunk that leaves the heap beyond its budget, measured from what the last one left", () => {
  Bun.gc(true); /* what earlier test files left: the budget starts from what is in use, as a module's does */
  const budget = new HeapBudget(4 << 20);
  expect(budget.afterChunk()).toBe(false);
  /* about 20 MB of objects, held as a chunk's pending writes are until its commit */
  const pending = { writes: Array.from({ length: 300_000 }, (_, i) => ({ i, address: `203.0.113.${i}` })) };
  expect(budget.afterChunk()).toBe(true);
  /* the next budget counts from the heap that collection left, the writes still in it */
  expect(budget.afterChunk()).toBe(false);
  expect(pending.writes).toHaveLength(300_000);
});
