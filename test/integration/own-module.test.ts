/**
 * A module of the operator's own (issue 19, item 1): `[modules.AP]` in watcher.toml and its rule
 * file under rules/AP/, no code. Through the built binary: `check`, `rules test`, `syslog-config`,
 * then a real master with nftables in a network namespace the test makes: the module's own FIFO,
 * database and kernel set, the attacker's packets dropped and a neighbour's not, and `report`,
 * `stat`, `bans`, `expire` and `status` that know the module. Processes are ended by PID and the
 * namespaces deleted.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, constants, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { statusFile } from "../../src/core/layout";
import { readJson } from "../../src/core/runfiles";
import type { MasterStatus } from "../../src/master/control";
import { ATTACKER_V4, FRIEND_V4, TestNet } from "../helpers/netns";
import { cleanedUpAfterAll, makeRoot, watcher } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();

const FIXTURES = join(import.meta.dir, "..", "fixtures", "own-module");
const RULE = readFileSync(join(FIXTURES, "shopapp.rule"), "utf8");
const CONFIG = (firewall: string) => `firewall = "${firewall}"\n[modules.LG]\ndns = false\n[modules.AP]\ntitle = "shop logins (shopapp)"\ndns = false\nmaxAffairs = 3\n`;

const { roots, others: nets } = cleanedUpAfterAll();

function newRoot(firewall: string): string {
  const root = makeRoot("own-module", { "etc/watcher.toml": CONFIG(firewall), "rules/AP/shopapp.rule": RULE });
  roots.push(root);
  return root;
}

describe("a module of your own, before it runs", () => {
  const root = newRoot("dryrun");

  test("check accepts it; rules test reads its rule file; syslog-config routes its program to its FIFO", () => {
    expect(watcher(root, "check")).toMatchObject({ code: 0 });
    const r = watcher(root, "rules", "test", "AP", join(FIXTURES, "shopapp.log"), "--json");
    expect(r.code).toBe(0);
    const result = JSON.parse(r.out) as { matches: { rule: string; host: string | null }[] };
    expect(result.matches.filter((m) => m.rule === "shop-login-failed").map((m) => m.host)).toEqual(["203.0.113.77", "203.0.113.77", "203.0.113.77", "203.0.113.78"]);
    const snippet = watcher(root, "syslog-config", "rsyslog").out;
    expect(snippet).toContain("(shopapp)");
    expect(snippet).toContain(join(root, "var", "fifo", "WatchAP"));
  });

  test("a module that is not defined, or has no rule files, is a usage error naming it", () => {
    const unknown = watcher(root, "rules", "test", "XY", join(FIXTURES, "shopapp.log"));
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown module "XY"');
    expect(unknown.err).toContain("LG, MX, MB, WB, FT, VP, NS, DB, AD, AP");
    const bare = makeRoot("own-module", { "etc/watcher.toml": `${CONFIG("dryrun")}[modules.FAX]\n` });
    roots.push(bare);
    const r = watcher(bare, "check");
    expect(r.code).toBe(2);
    expect(r.err + r.out).toContain("module FAX has no rule files");
  });
});

describe("a module of your own on a real master, nftables in a network namespace", () => {
  const net = new TestNet().setup();
  nets.push(net);
  const root = newRoot("nftables");
  const w = (...args: string[]) => net.exec(net.server, [join(import.meta.dir, "..", "..", "dist", "watcher"), "--root", root, ...args]);
  const master = () => readJson<MasterStatus>(statusFile(join(root, "var", "run"), "master"));

  test("its FIFO, database and set: the attacker is dropped after maxAffairs, the decoy and the neighbour are not", async () => {
    await net.serve();
    expect(w("start").code).toBe(0);
    await waitFor("the AP module running", () => {
      const pid = master()?.ready ? master()?.modules.AP?.pid : null;
      return pid && readJson<{ pid: number }>(statusFile(join(root, "var", "run"), "AP"))?.pid === pid;
    });
    expect(net.reachable(ATTACKER_V4)).toBe(true);
    const fifo = openSync(join(root, "var", "fifo", "WatchAP"), constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      for (const [i, user] of ["alice", "admin", "root"].entries()) writeSync(fifo, `Dec  6 07:21:0${i} shop shopapp[4101]: login failed: user=${user} ip=${ATTACKER_V4}\n`);
      writeSync(fifo, `Dec  6 07:21:04 shop shopapp[4101]: login failed: user=x ip=${FRIEND_V4} ip=${ATTACKER_V4}\n`);
    } finally {
      closeSync(fifo);
    }
    await waitFor("the attacker in watcher_AP", () => net.exec(net.server, ["nft", "list", "set", "inet", "watcher", "watcher_AP_v4"]).out.includes(ATTACKER_V4));
    expect(net.reachable(ATTACKER_V4)).toBe(false);
    expect(net.reachable(FRIEND_V4)).toBe(true);
    expect(existsSync(join(root, "var", "db", "AP.db"))).toBe(true);
  });

  test("report, stat, bans, expire and status know the module", () => {
    const report = JSON.parse(w("report", "--json", "--module", "ap").out) as { modules: { module: string; title: string; bans: number }[] };
    expect(report.modules).toEqual([expect.objectContaining({ module: "AP", title: "shop logins (shopapp)", bans: 1 })]);
    expect(w("stat", "--module", "AP").out).toContain(",AP,shop-login-failed,");
    const bans = JSON.parse(w("bans", "--module", "AP", "--json").out) as { module: string; address: string }[];
    expect(bans.map((b) => [b.module, b.address])).toEqual([["AP", ATTACKER_V4]]);
    expect(w("expire", "--module", "AP", "--dry-run").code).toBe(0);
    expect(w("status").out).toContain("AP");
  });
});
