import { expect, test } from "bun:test";
import { HeapBudget } from "../../src/core/heap";

test("a chunk that leaves the heap beyond its budget brings a full collection that frees what died; one within it does not", async () => {
  const budget = new HeapBudget(4 << 20);
  expect(budget.afterChunk()).toBe(false);
  /* about 20 MB of objects, held as a chunk's pending writes are until its commit */
  const pending: { writes: { i: number; address: string }[] | null } = { writes: Array.from({ length: 300_000 }, (_, i) => ({ i, address: `203.0.113.${i}` })) };
  const written = new WeakRef(pending.writes!);
  await Bun.sleep(0); /* a WeakRef keeps its target for the rest of the job that made it */
  pending.writes = null; /* committed */
  expect(budget.afterChunk()).toBe(true);
  expect(written.deref()).toBeUndefined();
  expect(budget.afterChunk()).toBe(false);
});
