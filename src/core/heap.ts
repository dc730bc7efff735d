/**
 * Keeps a resident module's JavaScript heap near what it holds. JavaScriptCore collects young
 * objects often, but the whole heap only when it has grown well past its size after the last full
 * collection; objects that outlive a young collection and die later (a chunk's pending writes,
 * sessions pushed out of their bounded table) pile up meanwhile. Fed one failed login from each
 * of 100,000 new addresses, the heap grew to 60-70 MB for about 12 MB in use (BUN_JSC_logGC=1),
 * which was most of the module's peak RSS. A full collection, when a chunk leaves the heap more
 * than `slack` bytes beyond its size after the last one, keeps the peak near use plus slack.
 */
import { fullGC, heapSize } from "bun:jsc";

/**
 * Bytes the heap may grow beyond its size after the last full collection. 300,000 new attackers:
 * peak RSS 112-114 MiB with 4 MiB, 116-117 with 8 MiB, 149 without; bench/gen-corpus.ts's 1M
 * lines: the same CPU time within the noise (3.0-4.5 s either way, load 12).
 */
export const HEAP_SLACK = 4 << 20;

export class HeapBudget {
  private afterLast = heapSize();

  constructor(private readonly slack = HEAP_SLACK) {}

  /** After a chunk: collect the whole heap when it has outgrown its budget; true when it did. */
  afterChunk(): boolean {
    if (heapSize() <= this.afterLast + this.slack) return false;
    fullGC();
    this.afterLast = heapSize();
    return true;
  }
}
