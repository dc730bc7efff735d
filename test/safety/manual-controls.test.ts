/**
 * Manual controls on a real kernel firewall (issue 20, item 7): nftables, and ipset +
 * iptables, in a network namespace with an attacker namespace whose packets must stop and come
 * back. `ban` takes a network and `--time forever` (kept in the database, held by the kernel for
 * the backend's longest timeout and renewed by expire before it lapses); a network that holds
 * this machine's own address is refused; `unban ADDRESS` lifts it everywhere; watcher.log tells
 * who did each.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { statusFile } from "../../src/core/layout";
import { readJson } from "../../src/core/runfiles";
import type { MasterStatus } from "../../src/master/control";
import { RENEW_SLACK } from "../../src/ops/renew";
import { ATTACKER_V4, FRIEND_V4, TestNet } from "../helpers/netns";
import { makeRoot, WATCHER } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

let net: TestNet;
beforeAll(async () => {
  net = new TestNet().setup();
  await net.serve();
});
afterAll(() => net.cleanup());

/** the attacker's /27: it holds ATTACKER_V4 (.66), not the server (.1) nor the friend (.7) */
const ATTACKERS = "198.51.100.64/27";

/** Seconds the kernel still holds `element` in `set` (a kernel set name), or null when it is not there. */
function kernelTimeLeft(backend: string, set: string, element: string): number | null {
  if (backend === "ipset") {
    const r = net.exec(net.server, ["ipset", "list", set]);
    const m = new RegExp(`^${element.replaceAll(".", "\\.")} timeout (\\d+)$`, "m").exec(r.out);
    return m ? Number(m[1]) : null;
  }
  const r = net.exec(net.server, ["nft", "-j", "list", "set", "inet", "watcher", set]);
  if (r.code !== 0) return null;
  type Elem = { elem?: { val: { prefix?: { addr: string; len: number } } | string; expires?: number } };
  const set_ = (JSON.parse(r.out) as { nftables: { set?: { elem?: Elem[] } }[] }).nftables.find((x) => x.set)?.set;
  for (const e of set_?.elem ?? []) {
    const v = e.elem?.val;
    const text = typeof v === "string" ? v : v?.prefix ? `${v.prefix.addr}/${v.prefix.len}` : "";
    if (text === element) return e.elem!.expires ?? null;
  }
  return null;
}

describe.each([
  ["nftables", 99_999_999],
  ["ipset", 2_147_483],
])("%s", (backend, maxTimeout) => {
  test("a network banned for ever, renewed by expire; unban of one address lifts it everywhere; the log says who", async () => {
    const root = makeRoot(`manual-${backend}`, {
      "etc/watcher.toml": `firewall = "${backend}"\n[modules.LG]\ndns = false\nexpireAfter = "1s"\n[modules.MB]\nenabled = true\ndns = false\n`,
    });
    const run = (...args: string[]) => net.exec(net.server, [WATCHER, "--root", root, ...args]);
    expect(net.reachable(ATTACKER_V4)).toBe(true);

    /* a network that holds this machine's own address is refused, and nothing is created */
    const refused = run("ban", "LG", "198.51.100.0/24", "--time", "forever");
    expect(refused.code).toBe(2);
    expect(refused.err).toContain("refusing to ban 198.51.100.0/24: it covers 198.51.100.1, an address of this machine");

    const ban = run("ban", "LG", ATTACKERS, "--time", "forever");
    expect(ban.err).toBe("");
    expect(ban.out).toBe(`banned ${ATTACKERS} in LG until unbanned\n`);
    expect(net.reachable(ATTACKER_V4)).toBe(false);
    expect(net.reachable(FRIEND_V4)).toBe(true);
    /* the kernel holds it for the backend's longest timeout: no element without one */
    const held = kernelTimeLeft(backend, "watcher_LG_n4", ATTACKERS);
    expect(held).toBeGreaterThan(maxTimeout - 60);
    expect(held).toBeLessThanOrEqual(maxTimeout);

    expect(run("ban", "MB", ATTACKER_V4, "--time", "1h").code).toBe(0);

    /* time passes: the kernel's timeout runs down, the host is older than expireAfter; expire keeps the ban and renews it */
    const before = await waitFor("the kernel's timeout to run down", () => {
      const left = kernelTimeLeft(backend, "watcher_LG_n4", ATTACKERS);
      return left !== null && left < maxTimeout - RENEW_SLACK && left;
    });
    const expire = run("expire", "--json");
    expect(expire.code).toBe(0);
    const runs = JSON.parse(expire.out) as { module: string; expired: unknown[]; renewed: number }[];
    const lg = runs.find((r) => r.module === "LG")!;
    expect(lg.expired).toEqual([]);
    expect(lg.renewed).toBe(1);
    expect(runs.find((r) => r.module === "MB")!.renewed).toBe(0); /* an hour's ban: the kernel holds all of it */
    expect(kernelTimeLeft(backend, "watcher_LG_n4", ATTACKERS)).toBeGreaterThan(before);
    expect(net.reachable(ATTACKER_V4)).toBe(false);
    const bans = JSON.parse(run("bans", "--json").out) as { address: string; where: string; until: string | null; permanent: boolean }[];
    /* both bans may fall in the same second: the order (newest first) is not what is tested here */
    expect(bans.map((b) => [b.where, b.address, b.permanent]).sort()).toEqual([
      ["LG", ATTACKERS, true],
      ["MB", ATTACKER_V4, false],
    ]);

    /* one address, no module: its MB ban and the LG network that holds it are lifted */
    const unban = run("unban", ATTACKER_V4);
    expect(unban.err).toBe("");
    expect(unban.out).toBe(`unbanned ${ATTACKER_V4} in MB; and the network ban that held it: ${ATTACKERS} in LG\n`);
    expect(net.reachable(ATTACKER_V4)).toBe(true);
    expect(kernelTimeLeft(backend, "watcher_LG_n4", ATTACKERS)).toBeNull();
    expect(run("bans").out).toBe("no ban in force\n");

    const log = readFileSync(join(root, "var", "log", "watcher.log"), "utf8").trimEnd().split("\n");
    expect(log.map((l) => l.replace(/^\S+ /, ""))).toEqual([
      `watcher: manual ban ${ATTACKERS} in LG until unbanned; by uid 0 (root)`,
      expect.stringMatching(new RegExp(`^watcher: manual ban ${ATTACKER_V4.replaceAll(".", "\\.")} in MB for 1h \\(until .+Z\\); by uid 0 \\(root\\)$`)),
      `watcher: manual unban ${ATTACKER_V4} everywhere (LG, MB): lifted ${ATTACKER_V4} in MB; and the network ban that held it: ${ATTACKERS} in LG; by uid 0 (root)`,
    ]);
  }, 180_000);

  test("a network banned for ever comes back whole after a restart and after a module's crash, and no start calls its timeout cut", async () => {
    const root = makeRoot(`manual-restart-${backend}`, { "etc/watcher.toml": `firewall = "${backend}"\n[modules.LG]\ndns = false\n` });
    const run = (...args: string[]) => net.exec(net.server, [WATCHER, "--root", root, ...args]);
    const master = () => readJson<MasterStatus>(statusFile(join(root, "var", "run"), "master"));
    const kernelSet = "watcher_LG_n4";
    try {
      expect(run("ban", "LG", ATTACKERS, "--time", "forever").code).toBe(0);
      run("stop", "--remove-firewall");
      expect(kernelTimeLeft(backend, kernelSet, ATTACKERS)).toBeNull();
      expect(run("start").code).toBe(0);
      const modulePid = await waitFor("the LG module running", () => (master()?.ready ? master()?.modules.LG?.pid : null));
      expect(kernelTimeLeft(backend, kernelSet, ATTACKERS)).toBeGreaterThan(maxTimeout - 60);
      expect(net.reachable(ATTACKER_V4)).toBe(false);
      /* gone from the kernel while the module was down: the module puts it back when it starts again */
      process.kill(modulePid, "SIGKILL");
      await waitFor("the module to be gone", () => master()?.modules.LG?.pid !== modulePid);
      if (backend === "ipset") net.exec(net.server, ["ipset", "del", kernelSet, ATTACKERS]);
      else net.exec(net.server, ["nft", "delete", "element", "inet", "watcher", kernelSet, `{ ${ATTACKERS} }`]);
      await waitFor("the restarted module to put the network back", () => kernelTimeLeft(backend, kernelSet, ATTACKERS));
      expect(readFileSync(join(root, "var", "log", "watcher.log"), "utf8")).not.toContain("cut to the longest");
    } finally {
      run("stop", "--remove-firewall");
    }
  }, 180_000);
});
