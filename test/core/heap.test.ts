import { expect, test } from "bun:test";
import { heapSize } from "bun:jsc";
import { HeapBudget } from "../../src/core/heap";

/*
 * What is ours is the decision; what a full collection frees is JavaScriptCore's (conservative
 * about the stack, so not asserted here): the peak RSS it saves is measured by bench/peers.ts.
 */
test("a full collection comes after a chunk that leaves the heap beyond its budget, measured from what the last one left", () => {
  Bun.gc(true); /* what earlier test files left: the budget starts from what is in use, as a module's does */
  const slack = 4 << 20;
  const budget = new HeapBudget(slack);
  const start = heapSize();
  expect(budget.afterChunk()).toBe(false);
  /* objects held as a chunk's pending writes are until its commit, until the heap has grown past
     the budget (how much that takes depends on what the heap had room for: earlier test files) */
  const pending: { i: number; address: string }[][] = [];
  while (heapSize() <= start + slack && pending.length < 5_000) pending.push(Array.from({ length: 10_000 }, (_, i) => ({ i, address: `203.0.113.${i}` })));
  expect(budget.afterChunk()).toBe(true);
  /* the next budget counts from the heap that collection left, the writes still in it */
  expect(budget.afterChunk()).toBe(false);
  expect(pending.every((writes) => writes.length === 10_000)).toBe(true);
});
