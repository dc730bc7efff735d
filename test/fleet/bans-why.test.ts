/**
 * `bans`, `why` and `unban ADDRESS` in a fleet (issue 20, items 1, 2 and 7): two real masters
 * on a real Redis, dry-run firewalls. A ban made on A shows on B as a fleet ban with its
 * origin, B's `why` tells the decision it received, and `unban` without a module on B lifts it
 * on both nodes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import type { FleetStatusReport } from "../../src/fleet/nodes";
import { TestRedis } from "../helpers/redis";
import { makeRoot, watcher } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

const KEY = "fleet-test-key-0123456789abcdef";
const ATTACKER = "203.0.113.10";
let redis: TestRedis;
const roots: string[] = [];

beforeAll(async () => {
  redis = await new TestRedis().start();
});
afterAll(async () => {
  for (const root of roots) {
    watcher(root, "stop");
    rmSync(root, { recursive: true, force: true });
  }
  await redis.cleanup();
});

function node(name: string): string {
  const root = makeRoot(`fleet-bans-${name}`, {
    "etc/watcher.toml": `firewall = "dryrun"\n[modules.LG]\ndns = false\n[fleet]\nurl = ${JSON.stringify(redis.url)}\nnode = "${name}"\n`,
    "etc/fleet.key": `${KEY}\n`,
  });
  chmodSync(join(root, "etc", "fleet.key"), 0o600);
  roots.push(root);
  return root;
}

async function setOf(root: string, set: string): Promise<string[]> {
  const fw = new DryRunFirewall(join(root, "var", "db", "firewall-dryrun.db"), join(root, "var", "log", "firewall-dryrun.log"));
  const list = (await fw.list(set)).map((e) => e.address);
  await fw.close();
  return list;
}

async function up(root: string): Promise<void> {
  const r = watcher(root, "start");
  if (r.code !== 0) throw new Error(`start failed: ${r.err}`);
  await waitFor("the node to join the fleet", () => {
    const s = JSON.parse(watcher(root, "fleet", "status", "--json").out) as FleetStatusReport;
    return s.master?.connected && (s.master?.syncs ?? 0) >= 1;
  });
}

describe("bans, why and unban in a fleet", () => {
  test("a ban made on A: a fleet ban on B with its origin, B's story of it; unban on B lifts it on both", async () => {
    const [a, b] = [node("a"), node("b")];
    await up(a);
    await up(b);
    expect(watcher(a, "ban", "LG", ATTACKER, "--time", "2h").out).toContain("published to the fleet");
    await waitFor("the ban on B", async () => (await setOf(b, "watcher_fleet")).includes(ATTACKER));

    const onB = JSON.parse(watcher(b, "bans", "--json").out) as { source: string; where: string; module: string; address: string; origin: string; rule: string; since: string; until: string }[];
    expect(onB).toHaveLength(1);
    expect(onB[0]).toMatchObject({ source: "fleet", where: "fleet", module: "LG", address: ATTACKER, origin: "a", rule: "manual" });
    expect(Date.parse(onB[0]!.until) - Date.parse(onB[0]!.since)).toBe(7200_000);
    const onA = JSON.parse(watcher(a, "bans", "--json").out) as { source: string; origin: string; reason: string }[];
    expect(onA).toHaveLength(1);
    expect(onA[0]).toMatchObject({ source: "module", origin: "a" });
    expect(onA[0]!.reason).toMatch(/^manual ban by uid \d+ \(root\), for 2h as asked$/);

    const why = JSON.parse(watcher(b, "why", ATTACKER, "--json").out) as { droppedBy: string[]; fleet: { ban: { origin: string }; decisions: { action: string; origin: string; outcome: string; received: string }[] } };
    expect(why.droppedBy).toEqual([expect.stringMatching(/^fleet ban until .+Z \(decided by a, LG rule manual\)$/)]);
    expect(why.fleet.ban.origin).toBe("a");
    expect(why.fleet.decisions.map((d) => [d.action, d.origin, d.outcome])).toEqual([["ban", "a", "applied"]]);
    expect(why.fleet.decisions[0]!.received).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(watcher(b, "why", ATTACKER).out).toContain("fleet: banned until ");

    /* unban on B, no module: B's fleet ban goes at once, and A lifts its own ban when the unban reaches it */
    const unban = watcher(b, "unban", ATTACKER);
    expect(unban.err).toBe("");
    expect(unban.out).toBe(`unbanned ${ATTACKER} in fleet\n`);
    expect(await setOf(b, "watcher_fleet")).toEqual([]);
    expect(watcher(b, "bans").out).toBe("no ban in force\n");
    await waitFor("the unban on A", async () => (await setOf(a, "watcher_LG")).length === 0);
    expect(watcher(a, "bans").out).toBe("no ban in force\n");
  });
});
