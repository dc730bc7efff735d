/**
 * A Map of at most `max` entries, for state kept per address or per session. Two generations:
 * new entries go into `current`; when it holds half the bound it becomes `previous` and the old
 * `previous` is dropped whole. An entry read again moves back into `current`, so what is in use
 * stays. O(1) and no per-entry eviction: deleting the oldest entry of a Map one at a time costs
 * more and more as its deleted slots pile up. `onDrop` hears of each entry a rotation drops.
 */
export class BoundedMap<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();
  private readonly generation: number;

  constructor(
    max: number,
    private readonly onDrop?: (key: K, value: V) => void,
  ) {
    this.generation = Math.max(1, Math.floor(max / 2));
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  get(key: K): V | undefined {
    const value = this.current.get(key);
    if (value !== undefined) return value;
    const old = this.previous.get(key);
    if (old !== undefined) {
      this.previous.delete(key);
      this.set(key, old);
    }
    return old;
  }

  set(key: K, value: V): void {
    if (this.current.size >= this.generation && !this.current.has(key)) {
      if (this.onDrop) for (const [k, v] of this.previous) this.onDrop(k, v);
      this.previous = this.current;
      this.current = new Map();
    } else this.previous.delete(key);
    this.current.set(key, value);
  }

  delete(key: K): void {
    this.current.delete(key);
    this.previous.delete(key);
  }
}
