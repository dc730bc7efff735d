/**
 * Safety: a firewall flushed under watcher (`nft flush ruleset`, which `systemctl reload nftables`
 * runs with Debian's nftables.conf; `iptables -F`) takes every drop with it. The master notices
 * within seconds and puts back its rules with every set as at start; a module whose ban meets the
 * missing table goes on (the ban is refused and comes again with the attacker's next try). Real
 * nftables and ipset + iptables in a network namespace.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ATTACKER_V4, invalidUsers as failures, testNetForFile } from "../helpers/netns";
import { makeRoot, WATCHER } from "../helpers/root";
import { waitFor } from "../helpers/wait";
import type { MasterStatus } from "../../src/master/control";

const testNet = testNetForFile();

describe.each([
  ["nftables", ["nft", "flush", "ruleset"]],
  ["ipset", ["sh", "-c", "iptables -F && ip6tables -F"]],
])("%s", (backend, flush) => {
  test("flushed under a running watcher: its rules and every set come back within seconds, the attacker's packets stop again, and the modules ban on", async () => {
    const root = makeRoot(`flushed-${backend}`, {
      "etc/watcher.toml": `firewall = "${backend}"\n[modules.LG]\ndns = false\nmaxAffairs = 2\n`,
      "etc/blacklist": "203.0.113.0/24\n",
    });
    const net = testNet();
    const w = (...args: string[]) => net.exec(net.server, [WATCHER, "--root", root, ...args]);
    const feed = (lines: string) => writeFileSync(join(root, "var", "fifo", "WatchLG"), lines);
    const log = () => readFileSync(join(root, "var", "log", "watcher.log"), "utf8");
    expect(w("start")).toMatchObject({ code: 0 });
    try {
      feed(failures(ATTACKER_V4, 2));
      await waitFor("the attacker dropped", () => !net.reachable(ATTACKER_V4));

      expect(net.exec(net.server, flush).code).toBe(0);
      expect(net.reachable(ATTACKER_V4)).toBe(true);
      await waitFor("the attacker dropped again", () => !net.reachable(ATTACKER_V4));
      expect(log()).toContain("watcher's rules are gone from the firewall");
      const blacklisted = backend === "nftables" ? net.exec(net.server, ["nft", "list", "set", "inet", "watcher", "watcher_black_v4"]).out : net.exec(net.server, ["ipset", "list", "watcher_black_v4"]).out;
      expect(blacklisted).toContain("203.0.113.0/24");

      /* flushed again, and an attacker's try meets the missing table before the master is back: the module lives and bans on */
      expect(net.exec(net.server, flush).code).toBe(0);
      feed(failures("198.51.100.9", 2));
      await waitFor("the next attacker banned", () => w("bans", "--json").out.includes('"198.51.100.9"'));
      await waitFor("the first one dropped again", () => !net.reachable(ATTACKER_V4));
      const master = JSON.parse(readFileSync(join(root, "var", "run", "master.json"), "utf8")) as MasterStatus;
      expect(master.modules.LG!.restarts).toBe(0);
    } finally {
      expect(w("stop", "--remove-firewall")).toMatchObject({ code: 0 });
    }
  }, 180_000);
});
