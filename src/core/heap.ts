/**
 * Keeps a resident module's memory near what it uses, whatever the number of addresses it sees.
 *
 * The JavaScript heap: JavaScriptCore collects young objects once ~18 MB have been allocated
 * since the last collection, and the whole heap only when it has grown well past its size after
 * the last full one. A module allocates ~6.5 KB per affair of a new attacker (matches, sessions,
 * host records), so its heap held 30-36 MB of blocks for 10-15 MB in use. HeapBudget collects the
 * young objects after a share of input (YOUNG_EVERY), when the chunk's work is done and nearly all of it is
 * garbage, and then the whole heap if it has grown `slack` beyond its size after the last full
 * collection (objects that outlive a young collection and die later: a chunk's pending writes,
 * sessions pushed out of their bounded table).
 *
 * The executable's pages: start-up (loading the bundle, the configuration, the rules) touches
 * ~45 MiB of the binary's code and read-only data, which stay mapped, and counted in the RSS,
 * though the loop never runs most of it. releaseStartupPages unmaps them; the kernel maps back,
 * from the page cache, the pages the loop touches.
 */
import { edenGC, fullGC, heapSize } from "bun:jsc";
import { readFileSync } from "node:fs";
import { libc } from "./libc";

/**
 * Bytes the heap may grow beyond its size after the last full collection. 300,000 new attackers:
 * peak RSS 112-114 MiB with 4 MiB, 116-117 with 8 MiB, 149 without; bench/gen-corpus.ts's 1M
 * lines: the same CPU time within the noise (3.0-4.5 s either way, load 12).
 */
export const HEAP_SLACK = 4 << 20;

/**
 * Input between young collections, whichever comes first: bytes read, lines matched, or affairs
 * counted. An affair allocates most (its match, session, host record and pending writes, ~6.5 KB
 * when each is a new attacker, so 600 make ~4 MB); a matched line that counts nothing (a login, a
 * connection's end) far less. 300,000 new attackers: peak RSS 84-86 MiB against 112-117 without.
 * A resident module's budget, 2026-12-06 (2 runs each, CPU / peak RSS): bench/gen-corpus.ts's 1M
 * lines (22,000 affairs among 225,000 matched lines) 3.6-3.8 s / 89-91 MiB, against 4.2-4.4 s /
 * 86 MiB when every 600 matched lines or 256 KiB collected (400 synchronous collections of ~1 ms,
 * and 15 full ones); 100,000 new attackers and gen_auth.py's 1M: the same CPU and RSS either way.
 * Every 1 MiB / 2,400 lines without the affairs' count cost 19 MiB of peak RSS (100k new attackers).
 * A quiet FIFO's chunks of a line or two add up to it slowly: no collection per line.
 */
export const YOUNG_EVERY: YoungBudget = { bytes: 512 << 10, matched: 1200, affairs: 600 };

/**
 * A replay's budget (`inject --direct`), larger than the resident module's. gen_auth.py's 1M lines:
 * 3.26-3.55 s of CPU against 3.60-3.64 with every 256 KiB or 600 matched lines, gen-corpus 1M
 * 2.06-2.27 against 2.15-2.43, peak RSS the same (103 / 110 MiB: a replay's peak is its batches
 * and pending writes).
 */
export const REPLAY_YOUNG_EVERY: YoungBudget = { bytes: 1 << 20, matched: 2400, affairs: 2400 };

/** Input between young collections: whichever of its counts is reached first. */
export interface YoungBudget {
  readonly bytes: number;
  readonly matched: number;
  readonly affairs: number;
}

/** What afterChunk collected. */
export type Collected = "young" | "full" | null;

export class HeapBudget {
  private afterLast = heapSize();
  private bytes = 0;
  private matched = 0;
  private affairs = 0;

  constructor(
    private readonly slack = HEAP_SLACK,
    private readonly young: YoungBudget = YOUNG_EVERY,
  ) {}

  /** After a chunk of `bytes` of input, of which `matched` lines matched and counted `affairs`, has been processed: collect what its budgets call for. */
  afterChunk(bytes: number, matched: number, affairs: number): Collected {
    this.bytes += bytes;
    this.matched += matched;
    this.affairs += affairs;
    if (this.bytes < this.young.bytes && this.matched < this.young.matched && this.affairs < this.young.affairs) return null;
    this.bytes = 0;
    this.matched = 0;
    this.affairs = 0;
    edenGC();
    /* heapSize walks the heap (~17 µs, as much as a line's whole way to the kernel): it is measured
       here only, where what the heap holds is what survived, not after every chunk */
    if (heapSize() <= this.afterLast + this.slack) return "young";
    fullGC();
    this.afterLast = heapSize();
    return "full";
  }
}

const MADV_DONTNEED = 4;

/**
 * Unmaps this process's pages of its own executable that are plain copies of the file (no page
 * of them written: the relocated read-only data is left alone). They stay in the page cache,
 * shared with every other watcher process; those the process touches again are mapped back on
 * the next access. Returns the bytes of address space released.
 */
export function releaseStartupPages(): number {
  let released = 0;
  /* each mapping: its header line (range, permissions, offset, device, inode, path), then its fields */
  for (const mapping of readFileSync("/proc/self/smaps", "utf8").split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (r-xp|r--p) \S+ \S+ \d+ +(.+)$/m.exec(mapping);
    if (!head || head[4] !== process.execPath || /^Anonymous:\s+0 kB$/m.exec(mapping) === null) continue;
    const start = Number.parseInt(head[1]!, 16);
    const length = Number.parseInt(head[2]!, 16) - start;
    if (libc().madvise(start, length, MADV_DONTNEED) === 0) released += length;
  }
  return released;
}
