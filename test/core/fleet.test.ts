/** The fleet protocol without Redis: signatures, what a decision may contain, the key file, fleet.db. */
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compareStreamIds, type Decision, loadFleetKey, newDecision, signedFields, verifiedDecision } from "../../src/fleet/protocol";
import { redactUrl } from "../../src/fleet/link";
import { FleetStore } from "../../src/store/fleet-db";

const KEY = Buffer.from("a-shared-fleet-key-of-32-bytes!!");
const decision = newDecision("mail1", "LG", "ban", "203.0.113.7", 1_800_000_000, "failed-auth", 1_799_996_400);

/** fields with one value replaced */
function withField(fields: string[], name: string, value: string): string[] {
  const copy = [...fields];
  copy[copy.indexOf(name) + 1] = value;
  return copy;
}

describe("signed decisions", () => {
  test("a decision survives signing and verification unchanged", () => {
    expect(verifiedDecision(KEY, signedFields(KEY, decision))).toEqual(decision);
    const unban = newDecision("web2", "WB", "unban", "2001:db8::5", 0, "manual", 1_799_996_400);
    expect(verifiedDecision(KEY, signedFields(KEY, unban))).toEqual(unban);
    /* a prefix ban names its network */
    const prefix = newDecision("mail1", "LG", "ban", "2001:db8:1:2::/64", 1_800_000_000, "prefix", 1_799_996_400);
    expect(verifiedDecision(KEY, signedFields(KEY, prefix))).toEqual(prefix);
  });

  test("changing any signed field, or another key, breaks the signature", () => {
    const fields = signedFields(KEY, decision);
    const changes: [string, string][] = [
      ["id", "mail1-0000"],
      ["action", "unban"],
      ["address", "203.0.113.8"],
      ["module", "MX"],
      ["until", "1900000000"],
      ["rule", "manual"],
      ["origin", "web2"],
      ["time", "1"],
    ];
    for (const [name, value] of changes) expect(verifiedDecision(KEY, withField(fields, name, value))).toBeNull();
    expect(verifiedDecision(Buffer.from("another-key-of-the-same-length!!"), fields)).toBeNull();
    expect(verifiedDecision(KEY, fields.slice(0, -2))).toBeNull(); /* no signature */
  });

  test("a validly signed decision is still refused when a field is not what watcher writes", () => {
    const bad: Partial<Record<keyof Decision, string | number>>[] = [
      { address: "203.0.113.007" }, /* leading zeros: not canonical */
      { address: "203.0.113.7/24" }, /* a network is written as its first address */
      { address: "2001:db8:0:0::/64" }, /* nor is this IPv6's canonical form */
      { address: "203.0.113.0/33" },
      { address: "mail.example.com" },
      { module: "lg" }, /* not a module name: modules of your own are capitals and digits */
      { module: "LG; DROP" },
      { rule: "two words" },
      { origin: "a\nb" },
      { until: -1 },
      { until: 1.5 },
    ];
    for (const change of bad) {
      const d = { ...decision, ...change } as Decision;
      expect(verifiedDecision(KEY, signedFields(KEY, d))).toBeNull();
    }
  });
});

describe("the key file", () => {
  const dir = mkdtempSync(join(tmpdir(), "watcher-fleetkey-"));
  const file = (name: string, text: string, mode = 0o600) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    chmodSync(path, mode);
    return path;
  };

  test("a private key of 16 bytes or more is read, without its newline", () => {
    expect(loadFleetKey(file("good.key", "0123456789abcdef\n")).toString()).toBe("0123456789abcdef");
  });

  test("a short, missing or world-readable key is a configuration error naming the file", () => {
    const short = file("short.key", "secret\n");
    expect(() => loadFleetKey(short)).toThrow(`${short}: the fleet key is 6 bytes; expected at least 16`);
    expect(() => loadFleetKey(join(dir, "missing.key"))).toThrow("cannot read the fleet key");
    const open = file("open.key", "0123456789abcdef\n", 0o644);
    expect(() => loadFleetKey(open)).toThrow(`${open}: the fleet key is readable by everyone`);
  });
});

describe("small parts", () => {
  test("stream ids compare by time, then sequence", () => {
    expect(compareStreamIds("1-0", "1-0")).toBe(0);
    expect(compareStreamIds("1700000000000-5", "1700000000000-12")).toBe(-1);
    expect(compareStreamIds("1700000000001-0", "1700000000000-99")).toBe(1);
  });

  test("a URL's password never reaches a log", () => {
    expect(redactUrl("rediss://watcher:s3cret@redis.internal:6380")).toBe("rediss://watcher:***@redis.internal:6380");
    expect(redactUrl("redis://s3cret@redis.internal")).toBe("redis://***@redis.internal");
    expect(redactUrl("/run/redis/redis.sock")).toBe("/run/redis/redis.sock");
  });
});

describe("fleet.db", () => {
  test("a decision is recorded once, with its latest outcome; bans keep the longest; the cursor survives a reopen", () => {
    const path = join(mkdtempSync(join(tmpdir(), "watcher-fleetdb-")), "fleet.db");
    const store = new FleetStore(path);
    expect(store.cursor).toBeNull();
    expect(store.seen(decision.id)).toBe(false);
    store.receive(decision, "protected", 100);
    store.receive(decision, "applied", 101); /* judged again: the outcome changes, the arrival stays */
    expect(store.seen(decision.id)).toBe(true);
    expect(store.receivedSince(0).map((r) => [r.outcome, r.received])).toEqual([["applied", 100]]);
    store.putBan({ ...decision, until: 500 });
    store.putBan({ ...decision, until: 400, origin: "web2" });
    expect(store.activeBans(0)).toEqual([{ address: "203.0.113.7", until: 500, module: "LG", rule: "failed-auth", origin: "mail1" }]);
    expect(store.activeBans(500)).toEqual([]);
    store.cursor = "1700000000000-3";
    store.close();
    const again = new FleetStore(path);
    expect(again.cursor).toBe("1700000000000-3");
    expect(again.prune(101, 1000)).toBe(2); /* the received decision and the ban over at 500 */
    expect(again.receivedSince(0)).toEqual([]);
    again.close();
  });
});
