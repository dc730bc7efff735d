import { expect, test } from "bun:test";
import { heapSize } from "bun:jsc";
import { readFileSync } from "node:fs";
import { HeapBudget, releaseStartupPages, YOUNG_EVERY } from "../../src/core/heap";

/*
 * What is ours is the decision; what a collection frees is JavaScriptCore's (conservative
 * about the stack, so not asserted here): the peak RSS it saves is measured by bench/peers.ts.
 */
test("a full collection comes after a young one that leaves the heap beyond its budget, measured from what the last one left", () => {
  Bun.gc(true); /* what earlier test files left: the budget starts from what is in use, as a module's does */
  const slack = 4 << 20;
  const budget = new HeapBudget(slack);
  const start = heapSize();
  expect(budget.afterChunk(0, 0, 0)).toBe(null);
  /* objects held as a chunk's pending writes are until its commit, until the heap has grown past
     the budget (how much that takes depends on what the heap had room for: earlier test files) */
  const pending: { i: number; address: string }[][] = [];
  while (heapSize() <= start + slack && pending.length < 5_000) pending.push(Array.from({ length: 10_000 }, (_, i) => ({ i, address: `203.0.113.${i}` })));
  /* the heap is measured after a young collection only (its input budget reached) */
  expect(budget.afterChunk(0, 0, 0)).toBe(null);
  expect(budget.afterChunk(YOUNG_EVERY.bytes, 0, 0)).toBe("full");
  /* the next budget counts from the heap that collection left, the writes still in it */
  expect(budget.afterChunk(YOUNG_EVERY.bytes, 0, 0)).toBe("young");
  expect(pending.every((writes) => writes.length === 10_000)).toBe(true);
});

test("the young objects are collected once the input since the last such collection reaches its budget in bytes, matched lines or affairs", () => {
  Bun.gc(true);
  const budget = new HeapBudget(1 << 30, { bytes: 64 << 10, matched: 50, affairs: 20 });
  /* a quiet source's chunks: a line each, no collection until they add up */
  for (let i = 0; i < 10; i++) expect(budget.afterChunk(100, 1, 1)).toBe(null);
  expect(budget.afterChunk((64 << 10) - 1000, 0, 0)).toBe("young");
  /* every count starts again: 49 more matched lines are not enough, the 50th is */
  expect(budget.afterChunk(100, 49, 0)).toBe(null);
  expect(budget.afterChunk(100, 1, 0)).toBe("young");
  /* affairs, which allocate most, reach theirs before the matched lines that counted them */
  expect(budget.afterChunk(100, 19, 19)).toBe(null);
  expect(budget.afterChunk(100, 1, 1)).toBe("young");
  /* one busy chunk is a budget by itself */
  expect(budget.afterChunk(64 << 10, 0, 0)).toBe("young");
  expect(budget.afterChunk(100, 50, 0)).toBe("young");
  expect(budget.afterChunk(100, 20, 20)).toBe("young");
});

/** Resident bytes of this process's own executable, read-only mappings. */
function executableRss(): number {
  let kib = 0;
  for (const mapping of readFileSync("/proc/self/smaps", "utf8").split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (r-xp|r--p) \S+ \S+ \d+ +(.+)$/m.exec(mapping);
    if (head?.[2] === process.execPath) kib += Number(/^Rss:\s+(\d+) kB$/m.exec(mapping)![1]);
  }
  return kib * 1024;
}

test("the executable's start-up pages are released, and what runs next maps back what it needs", () => {
  const before = executableRss();
  expect(before).toBeGreaterThan(4 << 20);
  const released = releaseStartupPages();
  expect(released).toBeGreaterThan(before);
  expect(executableRss()).toBeLessThan(before / 2);
  /* the runtime goes on from the page cache: parse, compile and run code after the release */
  expect(new Function("a", "b", "return a.map((x) => x * b).join(',')")([1, 2, 3], 2)).toBe("2,4,6");
  expect(JSON.parse(JSON.stringify({ address: "203.0.113.7" })).address).toBe("203.0.113.7");
});
