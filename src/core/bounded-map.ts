/**
 * A Map of at most `max` entries, for state kept per address or per session. Two generations:
 * new entries go into `current`; when it holds half the bound it becomes `previous` and the old
 * `previous` is dropped whole. An entry read again moves back into `current`, so what is in use
 * stays. O(1) and no per-entry eviction: deleting the oldest entry of a Map one at a time costs
 * more and more as its deleted slots pile up. `onDrop` hears of each entry a rotation drops.
 * A key is in one generation at most. Each call does as few Map operations as that allows (the
 * session table makes several calls per matched line): a key known to be in neither generation
 * (the last one read and not found, or deleted) is set without looking for it in `previous`. So
 * values are never undefined (get's "not here"), and keys are plain values.
 */
export class BoundedMap<K extends string | number, V extends {} | null> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();
  private readonly generation: number;
  /** a key in neither generation (undefined: none known) */
  private absent: K | undefined = undefined;

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
    if (old === undefined) this.absent = key;
    else {
      this.previous.delete(key);
      this.add(key, old);
    }
    return old;
  }

  set(key: K, value: V): void {
    if (this.current.size >= this.generation && !this.current.has(key)) this.add(key, value);
    else {
      if (key === this.absent) this.absent = undefined;
      else this.previous.delete(key);
      this.current.set(key, value);
    }
  }

  delete(key: K): void {
    if (!this.current.delete(key)) this.previous.delete(key);
    this.absent = key;
  }

  /**
   * A key not in `current` into it: from `set`, `current` full, so it rotates first (dropping
   * `previous`, the key's old value with it if there); from `get`, the key just taken out of `previous`.
   */
  private add(key: K, value: V): void {
    if (key === this.absent) this.absent = undefined;
    if (this.current.size >= this.generation) {
      if (this.onDrop) for (const [k, v] of this.previous) this.onDrop(k, v);
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }
}
