/**
 * Rate rules (floods, crawlers): each matching line is a hit for its address and vhost; more
 * than `hits` hits within `seconds` of the first is one affair, and the count starts over, so
 * a sustained flood is one affair per window. Kept in memory, bounded (see BoundedMap).
 */
import { BoundedMap } from "../core/bounded-map";

interface Window {
  start: number;
  hits: number;
}

export class RateCounter {
  private readonly windows: BoundedMap<string, Window>;

  constructor(maxEntries = 100000) {
    this.windows = new BoundedMap(maxEntries);
  }

  get size(): number {
    return this.windows.size;
  }

  /** Count one hit; true when it is the one that goes over the limit. */
  hit(address: string, vhost: string | null, rate: { readonly hits: number; readonly seconds: number }, time: number): boolean {
    const key = vhost ? `${address} ${vhost}` : address;
    let w = this.windows.get(key);
    if (!w || time - w.start >= rate.seconds) {
      w = { start: time, hits: 0 };
      this.windows.set(key, w);
    }
    w.hits++;
    if (w.hits <= rate.hits) return false;
    this.windows.delete(key);
    return true;
  }
}
