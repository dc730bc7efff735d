/**
 * A Map of at most `max` entries, for state kept per address or per session. Two generations:
 * new entries go into `current`; when it holds half the bound it becomes `previous` and the old
 * `previous` is dropped whole. An entry read again moves back into `current`, so what is in use
 * stays. O(1) and no per-entry eviction: deleting the oldest entry of a Map one at a time costs
 * more and more as its deleted slots pile up. `onDrop` hears of each entry a rotation drops.
 *
 * No key is ever deleted from `current`: its value becomes GONE. Bun's Map (JSC) sets a key
 * into a table that has had deletions about ten times slower than it overwrites one (~300 against
 * ~25 ns here), and the session table deletes a session and sets its pid's next one on most
 * matched lines of an attack-heavy log: this map was a quarter of the rule engine's time. GONE
 * entries are cleared out when they reach half the bound (a copy of the live ones, in order) and
 * at each rotation, so the Maps never hold more than the bound and a half. The one difference
 * it makes: a key set again after its delete keeps its old place in its generation, so a
 * rotation may tell onDrop of that generation's entries in another order.
 */
const GONE: unique symbol = Symbol("gone");

export class BoundedMap<K, V extends {} | null> {
  private current = new Map<K, V | typeof GONE>();
  private previous = new Map<K, V>();
  private readonly generation: number;
  /** entries of `current` that are not GONE */
  private live = 0;

  constructor(
    max: number,
    private readonly onDrop?: (key: K, value: V) => void,
  ) {
    this.generation = Math.max(1, Math.floor(max / 2));
  }

  get size(): number {
    return this.live + this.previous.size;
  }

  get(key: K): V | undefined {
    const value = this.current.get(key);
    if (value !== undefined) return value === GONE ? undefined : value;
    const old = this.previous.get(key);
    if (old !== undefined) {
      this.previous.delete(key);
      this.add(key, old);
    }
    return old;
  }

  set(key: K, value: V): void {
    const here = this.current.get(key);
    if (here !== undefined && here !== GONE) this.current.set(key, value);
    /* a key GONE from `current` is in neither generation */
    else if (here === undefined && this.live < this.generation) {
      this.previous.delete(key);
      this.current.set(key, value);
      this.live++;
    } else this.add(key, value);
  }

  delete(key: K): void {
    const here = this.current.get(key);
    if (here === undefined) this.previous.delete(key);
    else if (here !== GONE) {
      this.current.set(key, GONE);
      this.live--;
      if (this.current.size - this.live >= this.generation) this.current = this.liveEntries();
    }
  }

  /**
   * A key in no generation (or GONE from `current`) into `current`, rotated first when full: set()
   * for a key that get() has just missed, without looking it up again (a new session per line).
   */
  add(key: K, value: V): void {
    if (this.live >= this.generation) {
      /* `previous` holds the key's old value, if any: it goes with the rest */
      if (this.onDrop) for (const [k, v] of this.previous) this.onDrop(k, v);
      this.previous = this.liveEntries();
      this.current = new Map();
      this.live = 0;
    }
    this.current.set(key, value);
    this.live++;
  }

  /** `current` without its GONE entries, in order (itself when it has none) */
  private liveEntries(): Map<K, V> {
    if (this.current.size === this.live) return this.current as Map<K, V>;
    const out = new Map<K, V>();
    for (const [k, v] of this.current) if (v !== GONE) out.set(k, v);
    return out;
  }
}
