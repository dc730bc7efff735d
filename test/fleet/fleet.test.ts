/**
 * Fleet mode end to end: a real redis-server (loopback, AOF), several watcher nodes, each a
 * real `watcher start` with its own root (dry-run firewall), and one node inside a network
 * namespace with real nftables whose kernel set is read and whose packets must stop.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FleetStore } from "../../src/store/fleet-db";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import { ModuleStore } from "../../src/store/module-db";
import type { FleetStatusReport } from "../../src/fleet/nodes";
import type { Report } from "../../src/report/report";
import { ATTACKER_V4, TestNet } from "../helpers/netns";
import { TestRedis } from "../helpers/redis";
import { makeRoot, WATCHER, watcher } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

const KEY = "fleet-test-key-0123456789abcdef";
const roots: string[] = [];
let redis: TestRedis;

beforeAll(async () => {
  redis = await new TestRedis().start();
});
afterAll(async () => {
  await redis.cleanup();
});
afterEach(async () => {
  await Promise.all(
    roots.splice(0).map(async (root) => {
      await Bun.spawn([WATCHER, "--root", root, "stop"], { stdout: "ignore", stderr: "ignore" }).exited;
      rmSync(root, { recursive: true, force: true });
    }),
  );
  if (!redis.running) await redis.start();
  redis.cli("FLUSHALL");
});

/** A node's root: dry-run firewall, LG without DNS, [fleet] on our Redis; `fleet` adds keys to [fleet]. */
function node(name: string, o: { fleet?: string; url?: string | string[]; files?: Record<string, string>; top?: string; lg?: string } = {}): string {
  const root = makeRoot(`fleet-${name}`, {
    "etc/watcher.toml": `${o.top ?? 'firewall = "dryrun"'}\n[modules.LG]\ndns = false\n${o.lg ?? ""}\n[fleet]\nurl = ${JSON.stringify(o.url ?? redis.url)}\nnode = "${name}"\n${o.fleet ?? ""}\n`,
    "etc/fleet.key": `${KEY}\n`,
    ...o.files,
  });
  chmodSync(join(root, "etc", "fleet.key"), 0o600);
  roots.push(root);
  return root;
}

function start(root: string): void {
  const r = watcher(root, "start");
  if (r.code !== 0) throw new Error(`start failed: ${r.err}`);
}

async function setOf(root: string, set: string): Promise<string[]> {
  const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
  const list = (await fw.list(set)).map((e) => e.address).sort();
  await fw.close();
  return list;
}

const fleetSet = (root: string) => setOf(root, "watcher_fleet");
const lgSet = (root: string) => setOf(root, "watcher_LG");

/** The fleet part of the node's `report --json`. */
function fleetReport(root: string): NonNullable<Report["fleet"]> {
  return (JSON.parse(watcher(root, "report", "--json").out) as Report).fleet!;
}

function status(root: string): FleetStatusReport {
  const r = watcher(root, "fleet", "status", "--json");
  return JSON.parse(r.out) as FleetStatusReport;
}

/** Start these nodes and wait until each has joined the fleet. */
async function up(...roots: string[]): Promise<void> {
  for (const r of roots) start(r);
  for (const r of roots) await joined(r);
}

/** Wait until the node's fleet reader has synced once (it is reading the stream). */
async function joined(root: string): Promise<void> {
  await waitFor("the node to join the fleet", () => status(root).master?.connected && (status(root).master?.syncs ?? 0) >= 1);
}

/**
 * The i-th of up to 1,000 documentation addresses: 200 IPv4, then IPv6, each in a /64 of its own
 * (these tests are about addresses, not prefix bans; 192.0.2.0/24 is left out: test machines use it).
 */
const docAddress = (i: number) => (i < 200 ? `203.0.113.${i + 1}` : `2001:db8:f1ee:${(i + 1).toString(16)}::1`);

let sshdPid = 4000;
/** n failed logins from `address`, each in its own sshd-session process */
const failed = (address: string, n: number) =>
  Array.from({ length: n }, (_, i) => `Nov 25 09:49:39 srv sshd-session[${sshdPid++}]: Failed password for root from ${address} port ${30000 + i} ssh2\n`).join("");

function feed(root: string, lines: string): void {
  writeFileSync(join(root, "var", "fifo", "WatchLG"), lines);
}

describe("fleet mode", () => {
  test("a ban on A reaches B and C; an unban on B lifts it everywhere, A's own ban included", async () => {
    const [a, b, c] = [node("a"), node("b"), node("c")];
    await up(a, b, c);
    expect(watcher(a, "ban", "LG", "203.0.113.10").out).toContain("published to the fleet");
    for (const r of [b, c]) await waitFor("the ban on the other nodes", async () => (await fleetSet(r)).includes("203.0.113.10"));
    expect(await lgSet(a)).toEqual(["203.0.113.10"]);
    expect(await fleetSet(a)).toEqual([]); /* its own decision is not applied twice */

    expect(watcher(b, "unban", "LG", "203.0.113.10").code).toBe(0);
    await waitFor("the unban on A", async () => (await lgSet(a)).length === 0);
    await waitFor("the unban on C", async () => (await fleetSet(c)).length === 0);
    expect(await fleetSet(b)).toEqual([]);
    /* a node lifts the kernel's element first, then writes the lift and the decision it received */
    const host = new ModuleStore(join(a, "var", "db", "LG.db"));
    await waitFor("A's record of the lift", () => host.getHost("203.0.113.10")?.bannedUntil === 0);
    host.close();
    /* the report says which node a ban came from */
    const report = await waitFor("C's record of the unban", () => {
      const r = fleetReport(c);
      return r.byOrigin.some((o) => o.unbans > 0) ? r : null;
    });
    expect(report.byOrigin).toEqual([
      { origin: "a", bans: 1, unbans: 0, refused: 0 },
      { origin: "b", bans: 0, unbans: 1, refused: 0 },
    ]);
    expect(report.latest.map((d) => [d.action, d.address, d.origin]).sort()).toEqual([["ban", "203.0.113.10", "a"], ["unban", "203.0.113.10", "b"]]);
    expect(watcher(c, "report").out).toContain("fleet: decisions received by c");
    const nodes = status(a).nodes!;
    expect(nodes.map((n) => [n.node, n.live])).toEqual([["a", true], ["b", true], ["c", true]]);
    expect(watcher(a, "status").out).toContain("fleet node a: connected");
    /* a node that stops is silent at once; forgotten, it leaves the list; a live one stays */
    expect(watcher(c, "stop").code).toBe(0);
    expect(status(a).nodes!.map((n) => [n.node, n.live])).toEqual([["a", true], ["b", true], ["c", false]]);
    expect(watcher(a, "fleet", "forget", "c").out).toBe("forgot node c\n");
    const live = watcher(a, "fleet", "forget", "b");
    expect([live.code, live.err]).toEqual([1, "watcher: node b is live (its heartbeat is fresh): stop watcher there first\n"]);
    expect(status(a).nodes!.map((n) => n.node)).toEqual(["a", "b"]);
  });

  test("a node reads past its own decisions without a commit each: its cursor reaches fleet.db within seconds and at stop, and a restart applies none of them", async () => {
    const [a, b] = [node("a"), node("b")];
    await up(a, b);
    feed(a, ["203.0.113.21", "203.0.113.22", "2001:db8:f1ee:23::1"].map((address) => failed(address, 5)).join(""));
    await waitFor("A's bans on B", async () => (await fleetSet(b)).length === 3);
    const last = redis.cli("XREVRANGE", "{watcher}:decisions", "+", "-", "COUNT", "1").split("\n")[0]!.trim();
    expect(last).toMatch(/^\d+-\d+$/);
    const cursorOf = (root: string) => {
      const store = new FleetStore(join(root, "var", "db", "fleet.db"), { readOnly: true });
      try {
        return store.cursor;
      } finally {
        store.close();
      }
    };
    await waitFor("A's cursor in fleet.db", () => cursorOf(a) === last);
    expect(cursorOf(b)).toBe(last); /* B applied the batch: its cursor went in with it */
    expect(fleetReport(a).byOrigin).toEqual([]); /* nothing received from others */
    expect(watcher(a, "stop").code).toBe(0);
    expect(cursorOf(a)).toBe(last);
    start(a);
    await waitFor("A reading the stream again, from its cursor (no full sync)", () => status(a).master?.connected);
    expect(status(a).master?.syncs).toBe(0);
    expect(status(a).master?.cursor).toBe(last);
    expect(await fleetSet(a)).toEqual([]);
  });

  test("affairs count across the fleet: 2 failed logins on each of 3 nodes with fleetMaxAffairs = 5 ban on all three", async () => {
    const fleet = "shareAffairs = true\nfleetMaxAffairs = 5";
    const nodes = ["a", "b", "c"].map((n) => node(n, { fleet }));
    await up(...nodes);
    for (const r of nodes) {
      feed(r, failed("198.51.100.23", 2));
      await waitFor("the affairs to be counted", () => status(r).modules.find((m) => m.module === "LG")!.shared >= 2);
    }
    for (const r of nodes) await waitFor("the fleet ban everywhere", async () => [...(await lgSet(r)), ...(await fleetSet(r))].includes("198.51.100.23"));
    /* no node reached its own limit of 5: the one whose affair crossed the fleet's banned, the others followed */
    const local = await Promise.all(nodes.map(lgSet));
    expect(local.filter((s) => s.includes("198.51.100.23")).length).toBe(1);
  });

  test("the fleet's count slides over findTime: affairs older than it no longer count", async () => {
    /* a window wide enough that the steps below fit in it on a loaded machine; the test waits for it to pass once */
    const o = { fleet: "shareAffairs = true\nfleetMaxAffairs = 3", lg: "findTime = 10\nmaxAffairs = 100" };
    const [a, b] = [node("a", o), node("b", o)];
    await up(a, b);
    const shared = (r: string) => status(r).modules.find((m) => m.module === "LG")!.shared;
    feed(a, failed("198.51.100.41", 2));
    await waitFor("a's affairs shared", () => shared(a) >= 2);
    await Bun.sleep(11_000); /* the window has passed them */
    feed(b, failed("198.51.100.41", 2));
    await waitFor("b's affairs shared", () => shared(b) >= 2);
    expect([...(await lgSet(a)), ...(await lgSet(b))]).toEqual([]);
    feed(a, failed("198.51.100.41", 1));
    await waitFor("the third affair within the window to ban", async () => [...(await lgSet(a)), ...(await lgSet(b))].includes("198.51.100.41"));
  });

  test("local policy wins: an address whitelisted on C is banned on A and B, not on C, and C says so", async () => {
    const a = node("a");
    const b = node("b");
    const c = node("c", { files: { "etc/whitelist": "203.0.113.0/28\n" } });
    await up(a, b, c);
    expect(watcher(a, "ban", "LG", "203.0.113.5").code).toBe(0);
    expect(watcher(a, "ban", "LG", "203.0.113.77").code).toBe(0);
    await waitFor("the bans on B", async () => (await fleetSet(b)).length === 2);
    await waitFor("the second ban on C", async () => (await fleetSet(c)).includes("203.0.113.77"));
    expect(await fleetSet(c)).toEqual(["203.0.113.77"]);
    const m = (await waitFor("C's status", () => status(c).master?.protected === 1 && status(c)))!.master!;
    expect(m.refusals).toEqual(["203.0.113.5 (whitelist, from a)"]);
    /* the whitelist shrinks: on SIGHUP the node judges the fleet's decisions again */
    writeFileSync(join(c, "etc", "whitelist"), "");
    process.kill(Number(readFileSync(join(c, "var", "run", "watcher.pid"), "utf8")), "SIGHUP");
    await waitFor("the refused ban applied now", async () => (await fleetSet(c)).includes("203.0.113.5"));
    /* written after the kernel took it */
    const report = await waitFor("C's record of it", () => {
      const r = fleetReport(c);
      return r.byOrigin.every((o) => o.refused === 0) ? r : null;
    });
    expect(report.byOrigin).toEqual([{ origin: "a", bans: 2, unbans: 0, refused: 0 }]);
  });

  test("prefix bans go to the fleet: a rotating /64 banned on A is dropped whole on B, refused by C that protects an address in it; an unban of one of its addresses lifts it everywhere", async () => {
    const a = node("a");
    const b = node("b");
    const c = node("c", { files: { "etc/whitelist": "2001:db8:7e57::5\n" } });
    await up(a, b, c);
    /* one failed login from each of 20 addresses of one /64: no address reaches maxAffairs, the prefix does (4 × 5) */
    feed(a, Array.from({ length: 20 }, (_, i) => failed(`2001:db8:7e57::${(i + 16).toString(16)}`, 1)).join(""));
    await waitFor("the prefix ban on A", async () => (await lgSet(a)).includes("2001:db8:7e57::/64"));
    await waitFor("the prefix ban on B", async () => (await fleetSet(b)).includes("2001:db8:7e57::/64"));
    await waitFor("C's refusal", () => status(c).master?.protected === 1);
    expect(await fleetSet(c)).toEqual([]);
    expect(status(c).master!.refusals[0]).toBe("2001:db8:7e57::/64 (covers whitelisted 2001:db8:7e57::5, from a)");
    /* a network banned by hand goes out too */
    expect(watcher(a, "ban", "LG", "198.51.100.0/24").out).toContain("published to the fleet");
    await waitFor("the manual network ban on B", async () => (await fleetSet(b)).includes("198.51.100.0/24"));
    /* B's operator lets one address of the /64 in: B's fleet set, and A's own prefix ban, lift it */
    expect(watcher(b, "unban", "LG", "2001:db8:7e57::20").code).toBe(0);
    expect(await fleetSet(b)).toEqual(["198.51.100.0/24"]);
    await waitFor("the prefix lifted on A", async () => !(await lgSet(a)).includes("2001:db8:7e57::/64"));
  });

  test("per module, fleetPublish = false keeps a node's bans at home and fleetAccept = false ignores the others'", async () => {
    const a = node("a", { lg: "fleetPublish = false" });
    const b = node("b", { lg: "fleetAccept = false" });
    const c = node("c");
    await up(a, b, c);
    expect(watcher(a, "ban", "LG", "203.0.113.31").out).not.toContain("fleet");
    expect(watcher(b, "ban", "LG", "203.0.113.32").code).toBe(0);
    await waitFor("b's ban on c", async () => (await fleetSet(c)).includes("203.0.113.32"));
    expect(await fleetSet(c)).toEqual(["203.0.113.32"]); /* a's ban stayed on a */
    expect(watcher(c, "ban", "LG", "203.0.113.33").code).toBe(0);
    await waitFor("a to have c's ban", async () => (await fleetSet(a)).includes("203.0.113.33"));
    await waitFor("b to have declined it", () => status(b).master?.notAccepted === 1);
    expect(await fleetSet(b)).toEqual([]);
  });

  test("a decision written straight into the stream without a valid signature is ignored and counted", async () => {
    const a = node("a");
    const b = node("b");
    await up(a, b);
    const until = String(Math.floor(Date.now() / 1000) + 3600);
    const fields = ["v", "1", "id", "x-1", "action", "ban", "address", "198.51.100.66", "module", "LG", "until", until, "rule", "manual", "origin", "a", "time", "1"];
    redis.cli("XADD", "{watcher}:decisions", "*", ...fields); /* no signature */
    redis.cli("XADD", "{watcher}:decisions", "*", ...fields.map((f) => (f === "x-1" ? "x-2" : f)), "sig", "0".repeat(64));
    expect(watcher(a, "ban", "LG", "198.51.100.67").code).toBe(0);
    await waitFor("the signed ban", async () => (await fleetSet(b)).includes("198.51.100.67"));
    expect(await fleetSet(b)).toEqual(["198.51.100.67"]);
    await waitFor("the count of bad signatures", () => status(b).master?.badSignature === 2);
  });

  test("a node away while 1,000 decisions are made catches up from the stream on return, without a duplicate", async () => {
    const a = node("a");
    const c = node("c");
    await up(a, c);
    expect(watcher(c, "stop").code).toBe(0);
    feed(a, Array.from({ length: 1000 }, (_, i) => failed(docAddress(i), 5)).join(""));
    await waitFor("A's 1,000 bans published", () => {
      const m = status(a).modules.find((x) => x.module === "LG")!;
      return m.published >= 1000 && m.outbox === 0;
    });
    /* what went leaves A's outbox table too, within a second (not in a transaction per publication) */
    await waitFor("A's outbox table to be empty", () => {
      const store = new ModuleStore(join(a, "var", "db", "LG.db"));
      const waiting = store.outboxLength();
      store.close();
      return waiting === 0;
    });
    start(c);
    await waitFor("C to catch up", async () => (await fleetSet(c)).length === 1000);
    const s = (await waitFor("C's counters", () => status(c).master?.applied === 1000 && status(c)))!.master!;
    expect(s.duplicates).toBe(0);
    expect(s.received).toBe(1000);
    const fleetDb = new FleetStore(join(c, "var", "db", "fleet.db"));
    expect(fleetDb.receivedSince(0).length).toBe(1000);
    fleetDb.close();
  });

  test("a node whose cursor the stream's trimming passed falls back to a full sync", async () => {
    const fleet = "streamLength = 100";
    const a = node("a", { fleet });
    const c = node("c", { fleet });
    await up(a, c);
    expect(watcher(c, "stop").code).toBe(0);
    feed(a, Array.from({ length: 600 }, (_, i) => failed(docAddress(i), 5)).join(""));
    await waitFor("A's bans published", () => status(a).modules.find((x) => x.module === "LG")!.published >= 600);
    expect(Number(redis.cli("XLEN", "{watcher}:decisions").trim())).toBeLessThan(600);
    start(c);
    await waitFor("C's full sync", async () => (await fleetSet(c)).length === 600);
    await waitFor("C's count of full syncs", () => (status(c).master?.syncs ?? 0) >= 1);
  });

  test("Redis stopped and restarted mid-flood: no published decision is lost, and the nodes catch up", async () => {
    const a = node("a");
    const b = node("b");
    await up(a, b);
    const addresses = Array.from({ length: 400 }, (_, i) => docAddress(i));
    feed(a, addresses.slice(0, 200).map((ip) => failed(ip, 5)).join(""));
    await redis.stop();
    feed(a, addresses.slice(200).map((ip) => failed(ip, 5)).join(""));
    await waitFor("A to ban locally without Redis", async () => (await lgSet(a)).length === 400);
    await waitFor("A's outbox to hold the rest", () => status(a).modules.find((x) => x.module === "LG")!.outbox > 0);
    await redis.start();
    await waitFor("B to have every ban", async () => (await fleetSet(b)).length === 400);
    expect(await fleetSet(b)).toEqual([...addresses].sort());
    await waitFor("A's outbox to be empty", () => status(a).modules.find((x) => x.module === "LG")!.outbox === 0);
    /* the master's log says each outage once: gone, and back */
    const log = readFileSync(join(a, "var", "log", "watcher.log"), "utf8");
    expect(log.match(/fleet: Redis not reachable \(.*\): banning locally, decisions wait in the outboxes; trying again/g)?.length).toBe(1);
    expect(log.match(/fleet: Redis is back: reading the stream on/g)?.length).toBe(1);
  });

  test("Redis frozen (SIGSTOP, its socket open): the node says so within seconds, bans locally, and publishes once it answers again", async () => {
    const a = node("a", { fleet: "connectTimeout = 1" });
    const b = node("b");
    await up(a, b);
    redis.freeze();
    try {
      await waitFor("A to see that Redis does not answer", () => status(a).master?.connected === false);
      feed(a, failed("203.0.113.98", 5));
      await waitFor("the local ban", async () => (await lgSet(a)).includes("203.0.113.98"));
    } finally {
      redis.thaw();
    }
    await waitFor("the ban to reach B", async () => (await fleetSet(b)).includes("203.0.113.98"));
    await waitFor("A connected again", () => status(a).master?.connected === true);
    const log = readFileSync(join(a, "var", "log", "watcher.log"), "utf8");
    expect(log).toContain("Redis did not answer within 3 s");
  });

  test("with Redis away at start, a node bans locally and publishes once Redis is there", async () => {
    await redis.stop();
    const a = node("a");
    start(a);
    feed(a, failed("203.0.113.99", 5));
    await waitFor("the local ban", async () => (await lgSet(a)).includes("203.0.113.99"));
    const s = await waitFor("the ban in A's outbox", () => {
      const st = status(a);
      return st.modules.find((m) => m.module === "LG")?.outbox === 1 && st;
    });
    expect(s.master?.connected).toBe(false);
    expect(s.nodes).toBeNull();
    await redis.start();
    const b = node("b");
    start(b);
    await waitFor("the ban to reach B", async () => (await fleetSet(b)).includes("203.0.113.99"));
  });

  test("given the primary and its replica, the nodes follow a failover: a ban after it still reaches every node", async () => {
    const replica = await new TestRedis().start();
    try {
      replica.cli("REPLICAOF", "127.0.0.1", String(redis.port));
      await waitFor("the replica in sync", () => /connected/.test(replica.cli("ROLE")));
      const url = [redis.url, replica.url];
      const a = node("a", { url });
      const b = node("b", { url });
      await up(a, b);
      expect(watcher(a, "ban", "LG", "203.0.113.51").out).toContain("published to the fleet");
      await waitFor("the ban before the failover", async () => (await fleetSet(b)).includes("203.0.113.51"));
      await redis.stop();
      replica.cli("REPLICAOF", "NO", "ONE");
      expect(watcher(a, "ban", "LG", "203.0.113.52").out).toContain("published to the fleet");
      await waitFor("the ban after the failover", async () => (await fleetSet(b)).includes("203.0.113.52"));
      expect(status(b).nodes?.map((n) => n.node)).toEqual(["a", "b"]);
    } finally {
      await replica.cleanup();
    }
  });

  test("watcher fleet sync pulls every active decision now", async () => {
    const a = node("a");
    start(a);
    await joined(a);
    for (const ip of ["198.51.100.1", "198.51.100.2"]) expect(watcher(a, "ban", "LG", ip).code).toBe(0);
    const b = node("b");
    /* what anyone with write access to Redis can put beside them: junk, and a ban without a valid signature */
    const until = String(Math.floor(Date.now() / 1000) + 3600);
    redis.cli("ZADD", "{watcher}:active", until, "198.51.100.3", until, "198.51.100.4");
    redis.cli("HSET", "{watcher}:payload", "198.51.100.3", "{not json", "198.51.100.4", JSON.stringify(["v", "1", "id", "x", "action", "ban", "address", "198.51.100.4", "module", "LG", "until", until, "rule", "manual", "origin", "a", "time", "1", "sig", "0".repeat(64)]));
    const r = watcher(b, "fleet", "sync");
    expect(r.code).toBe(0);
    expect(r.out).toContain("2 fleet bans in force on b (0 refused by local policy, 2 with a bad signature ignored)");
    expect(await fleetSet(b)).toEqual(["198.51.100.1", "198.51.100.2"]);
  });
});

describe("fleet mode over TLS", () => {
  test("rediss:// with the fleet's own CA: a ban reaches the other node; without the CA a node does not connect", async () => {
    const secure = await new TestRedis(true).start();
    try {
      const tlsCa = `tlsCa = "${secure.ca}"`;
      const a = node("a", { url: secure.tlsUrl, fleet: tlsCa });
      const b = node("b", { url: secure.tlsUrl, fleet: tlsCa });
      const stranger = node("s", { url: secure.tlsUrl, fleet: "connectTimeout = 2" });
      for (const r of [a, b, stranger]) start(r);
      for (const r of [a, b]) await joined(r);
      expect(watcher(a, "ban", "LG", "203.0.113.44").out).toContain("published to the fleet");
      await waitFor("the ban over TLS", async () => (await fleetSet(b)).includes("203.0.113.44"));
      const s = status(stranger);
      expect(s.master?.connected).toBe(false);
      expect(s.nodes).toBeNull();
      expect(await fleetSet(stranger)).toEqual([]);
    } finally {
      await secure.cleanup();
    }
  });

  test("a tlsCa that is not there stops start with a clear error", () => {
    const a = node("a", { fleet: 'tlsCa = "etc/missing-ca.pem"' });
    const r = watcher(a, "start");
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${a}/etc/missing-ca.pem: cannot read the fleet's CA file (tlsCa)`);
  });
});

describe("fleet mode with real nftables", () => {
  let net: TestNet;
  beforeAll(() => {
    net = new TestNet().setup();
  });
  afterAll(() => net.cleanup());

  test("a ban made on A drops the attacker's packets in the kernel of a node in its own namespace", async () => {
    await net.serve();
    expect(net.reachable(ATTACKER_V4)).toBe(true);
    const a = node("a");
    /* the namespace has its own loopback: it reaches Redis through the Unix socket */
    const n = node("n", { url: redis.socket, top: 'firewall = "nftables"' });
    start(a);
    expect(net.exec(net.server, [WATCHER, "--root", n, "start"]).code).toBe(0);
    await joined(a);
    expect(watcher(a, "ban", "LG", ATTACKER_V4).code).toBe(0);
    await waitFor("the element in the kernel set", () => net.exec(net.server, ["nft", "list", "set", "inet", "watcher", "watcher_fleet_v4"]).out.includes(ATTACKER_V4));
    expect(net.reachable(ATTACKER_V4)).toBe(false);
    expect(net.exec(net.server, [WATCHER, "--root", n, "stop"]).code).toBe(0);
  });
});
