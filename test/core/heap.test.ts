import { expect, test } from "bun:test";
import { HeapBudget } from "../../src/core/heap";

/** About 20 MB of objects, held as a chunk's pending writes are until its commit (made in a frame of their own: no stack slot of the test keeps them). */
function pendingWrites(): { pending: { writes: object[] | null }; written: WeakRef<object[]> } {
  const writes = Array.from({ length: 300_000 }, (_, i) => ({ i, address: `203.0.113.${i}` }));
  return { pending: { writes }, written: new WeakRef(writes) };
}

test("a chunk that leaves the heap beyond its budget brings a full collection that frees what died; one within it does not", async () => {
  Bun.gc(true); /* what earlier test files left: the budget starts from what is in use, as a module's does */
  const budget = new HeapBudget(4 << 20);
  expect(budget.afterChunk()).toBe(false);
  const { pending, written } = pendingWrites();
  await Bun.sleep(0); /* a WeakRef keeps its target for the rest of the job that made it */
  pending.writes = null; /* committed */
  expect(budget.afterChunk()).toBe(true);
  expect(written.deref()).toBeUndefined();
  expect(budget.afterChunk()).toBe(false);
});
