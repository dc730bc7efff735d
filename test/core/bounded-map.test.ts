/**
 * BoundedMap: its bound, what a rotation drops (and tells onDrop, which the session table's refuge
 * needs), and that marking deleted entries instead of deleting them keeps the behaviour of the
 * plain two-generation map (the reference below): the same values read, the same size, the same
 * entries dropped by each rotation (their order may differ, see bounded-map.ts), over random
 * sequences of calls on a few keys; and that add() after a get() that missed is set().
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { BoundedMap } from "../../src/core/bounded-map";

/** The two generations done the obvious way: every call looks in both. */
class Reference<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();
  private readonly generation: number;

  constructor(
    max: number,
    private readonly onDrop: (key: K, value: V) => void,
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
      for (const [k, v] of this.previous) this.onDrop(k, v);
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

describe("BoundedMap", () => {
  test("keeps at most its bound; a rotation drops the older generation whole and tells onDrop of each entry", () => {
    const dropped: [number, string][] = [];
    const m = new BoundedMap<number, string>(4, (k, v) => dropped.push([k, v]));
    for (let k = 1; k <= 4; k++) m.set(k, `v${k}`);
    expect(m.size).toBe(4);
    expect(dropped).toEqual([]);
    m.set(5, "v5");
    expect(m.size).toBe(3);
    expect(dropped).toEqual([
      [1, "v1"],
      [2, "v2"],
    ]);
    expect(m.get(1)).toBeUndefined();
    expect(m.get(3)).toBe("v3");
  });

  test("an entry read again moves to the young generation and outlives a rotation", () => {
    const dropped: number[] = [];
    const m = new BoundedMap<number, string>(4, (k) => dropped.push(k));
    m.set(1, "a");
    m.set(2, "b");
    m.set(3, "c"); /* 1 and 2 are now the old generation */
    expect(m.get(1)).toBe("a"); /* back into the young one, beside 3 */
    m.set(4, "d"); /* rotation: 2 goes, 1 and 3 stay */
    expect(dropped).toEqual([2]);
    expect(m.get(1)).toBe("a");
    expect(m.get(3)).toBe("c");
    expect(m.get(2)).toBeUndefined();
  });

  test("a key deleted and set again is there once, and goes with its generation", () => {
    const dropped: number[] = [];
    const m = new BoundedMap<number, string>(4, (k) => dropped.push(k));
    m.set(1, "a");
    m.set(2, "b");
    m.set(3, "c");
    expect(m.get(9)).toBeUndefined();
    m.set(9, "i");
    m.delete(1);
    m.set(1, "A"); /* rotation: 2 goes (1 went before), 3 and 9 are the old generation */
    expect(dropped).toEqual([2]);
    expect(m.size).toBe(3);
    expect([m.get(1), m.get(3), m.get(9), m.get(2)]).toEqual(["A", "c", "i", undefined]);
  });

  test("does what the plain two-generation map does, call for call", () => {
    const call = fc.oneof(
      fc.record({ op: fc.constant("get" as const), key: fc.integer({ min: 0, max: 12 }) }),
      fc.record({ op: fc.constant("set" as const), key: fc.integer({ min: 0, max: 12 }), value: fc.integer() }),
      fc.record({ op: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 12 }) }),
      /* the session table's way: a get, and on a miss an add (or a delete first: a session dropped) */
      fc.record({ op: fc.constant("add" as const), key: fc.integer({ min: 0, max: 12 }), value: fc.integer(), deleteFirst: fc.boolean() }),
    );
    /* what one call dropped, sorted: a rotation's drops in any order */
    const after = (log: string[], drops: string[]) => {
      log.push(...drops.sort());
      drops.length = 0;
    };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.array(call, { maxLength: 200 }), (max, calls) => {
        const seen: string[] = [];
        const expected: string[] = [];
        const seenDrops: string[] = [];
        const expectedDrops: string[] = [];
        const m = new BoundedMap<number, number>(max, (k, v) => seenDrops.push(`drop ${k}=${v}`));
        const r = new Reference<number, number>(max, (k, v) => expectedDrops.push(`drop ${k}=${v}`));
        for (const c of calls) {
          if (c.op === "get") {
            seen.push(`get ${c.key}=${m.get(c.key)}`);
            expected.push(`get ${c.key}=${r.get(c.key)}`);
          } else if (c.op === "set") {
            m.set(c.key, c.value);
            r.set(c.key, c.value);
          } else if (c.op === "add") {
            const found = m.get(c.key);
            expect(found).toEqual(r.get(c.key));
            if (found !== undefined && c.deleteFirst) {
              m.delete(c.key);
              r.delete(c.key);
            }
            if (found === undefined || c.deleteFirst) {
              m.add(c.key, c.value);
              r.set(c.key, c.value);
            }
          } else {
            m.delete(c.key);
            r.delete(c.key);
          }
          after(seen, seenDrops);
          after(expected, expectedDrops);
          seen.push(`size ${m.size}`);
          expected.push(`size ${r.size}`);
        }
        expect(seen).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });
});
