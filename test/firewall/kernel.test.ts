/**
 * Real firewalls, real packets: watcher runs in a server namespace with the nftables or the
 * ipset + iptables backend; an attacker namespace connects to a TCP service there. After the
 * affair that crosses the limit, the attacker's connections must time out, a whitelisted
 * neighbour's must not, and after the ban time the attacker gets through again.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ATTACKER_V4, ATTACKER_V6, FRIEND_V4, TestNet } from "../helpers/netns";
import { waitFor } from "../helpers/wait";
import { WATCHER } from "../helpers/root";

/** Address → seconds left, straight from the kernel. */
function kernelTimeouts(net: TestNet, backend: "nftables" | "ipset"): Map<string, number> {
  const out = new Map<string, number>();
  if (backend === "nftables") {
    const doc = JSON.parse(net.exec(net.server, ["nft", "-j", "list", "set", "inet", "watcher", "watcher_LG_v4"]).out);
    for (const item of doc.nftables) for (const e of item.set?.elem ?? []) out.set(e.elem.val, e.elem.expires);
  } else {
    for (const m of net.exec(net.server, ["ipset", "save", "watcher_LG_v4"]).out.matchAll(/^add \S+ (\S+) timeout (\d+)/gm)) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function failures(address: string, n: number, pid: number): string {
  let out = "";
  for (let i = 0; i < n; i++) out += `Nov 25 10:00:0${i} srv sshd-session[${pid + i}]: Failed password for root from ${address} port ${40000 + i} ssh2\n`;
  return out;
}

for (const backend of ["nftables", "ipset"] as const) {
  describe(`${backend} backend in a network namespace`, () => {
    let net: TestNet;
    let root: string;
    const watcher = (...args: string[]) => net.exec(net.server, [WATCHER, "--root", root, ...args]);

    beforeAll(async () => {
      net = new TestNet().setup();
      await net.serve();
      root = mkdtempSync(join(tmpdir(), `watcher-${backend}-`));
      mkdirSync(join(root, "etc"));
      writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "${backend}"\n[modules.LG]\nmaxAffairs = 3\nbanTime = "3s"\ndns = false\n`);
      writeFileSync(join(root, "etc", "whitelist"), `${FRIEND_V4}\n`);
      /* (a blacklist entry covering the whitelisted neighbour is refused now; the kernel's order, whitelist before drops, is tested in test/safety/firewall-refusals.test.ts) */
      writeFileSync(join(root, "etc", "blacklist"), "203.0.113.0/24\n");
    });
    afterAll(() => {
      watcher("stop"); /* a master a failed test left running, ended by its pid file */
      net.cleanup();
    });

    test("the attacker is dropped after the third affair, the whitelisted neighbour is not, and the ban lapses", async () => {
      expect(net.reachable(ATTACKER_V4)).toBe(true);
      const module = net.spawn(net.server, [WATCHER, "--root", root, "module", "LG"]);
      await waitFor("the FIFO", () => existsSync(join(root, "var", "fifo", "WatchLG")), undefined, 20);
      const inject = (text: string) => expect(Bun.spawnSync([WATCHER, "--root", root, "inject", "LG"], { stdin: new TextEncoder().encode(text) }).exitCode).toBe(0);
      inject(failures(FRIEND_V4, 5, 100));
      inject(failures(ATTACKER_V4, 2, 200));
      expect(net.reachable(ATTACKER_V4)).toBe(true);
      inject(failures(ATTACKER_V4, 1, 300));
      await waitFor("the attacker to be dropped", () => !net.reachable(ATTACKER_V4, 300), undefined, 20);
      expect(net.reachable(FRIEND_V4)).toBe(true);
      await waitFor("the ban to lapse", () => net.reachable(ATTACKER_V4, 300), undefined, 20);
      /* IPv6 the same way */
      inject(failures(ATTACKER_V6, 3, 400));
      await waitFor("the IPv6 attacker to be dropped", () => !net.reachable(ATTACKER_V6, 300), undefined, 20);
      module.kill("SIGTERM");
      expect(await module.exited).toBe(0);
    });

    test("ban and unban by hand reach the kernel at once", () => {
      expect(watcher("ban", "LG", ATTACKER_V4, "--time", "1h").code).toBe(0);
      expect(net.reachable(ATTACKER_V4, 300)).toBe(false);
      expect(watcher("unban", "LG", ATTACKER_V4).code).toBe(0);
      expect(net.reachable(ATTACKER_V4)).toBe(true);
      expect(watcher("unban", "LG", ATTACKER_V4).code).toBe(0); /* not banned: still fine */
    });

    test("why reads the firewall too: the set that holds the address, and a warning when the firewall lost what watcher decided", () => {
      expect(watcher("ban", "LG", ATTACKER_V4, "--time", "1h").code).toBe(0);
      expect(watcher("why", ATTACKER_V4).out).toContain("\nkernel: held by watcher_LG\n");
      expect(JSON.parse(watcher("why", ATTACKER_V4, "--json").out).kernel).toEqual({ sets: ["watcher_LG"] });
      /* the element taken away behind watcher's back */
      expect(net.exec(net.server, backend === "nftables" ? ["nft", "flush", "set", "inet", "watcher", "watcher_LG_v4"] : ["ipset", "flush", "watcher_LG_v4"]).code).toBe(0);
      const why = watcher("why", ATTACKER_V4).out;
      expect(why).toContain(`${ATTACKER_V4}: dropped by LG ban until `);
      expect(why).toContain("kernel: in none of watcher's sets\nwarning: watcher dropped it, but the firewall holds it in none of its sets");
      expect(watcher("unban", "LG", ATTACKER_V4).code).toBe(0);
      expect(watcher("why", ATTACKER_V4).out).not.toContain("warning:");
    });

    test("a second ban of an address still in the set renews its time in the kernel", () => {
      const address = "198.51.100.77";
      expect(watcher("ban", "LG", address, "--time", "1h").code).toBe(0);
      expect(kernelTimeouts(net, backend).get(address)).toBeLessThanOrEqual(3600);
      /* nftables: a ban goes in as a new element first; the kernel refuses that for one already there */
      expect(watcher("ban", "LG", address, "--time", "10h").code).toBe(0);
      expect(kernelTimeouts(net, backend).get(address)).toBeGreaterThan(3600);
      expect(watcher("unban", "LG", address).code).toBe(0);
      expect(kernelTimeouts(net, backend).has(address)).toBe(false);
    });

    /* regression: nft refused a batch naming an address twice ("delete element { A, A }") */
    test("a replay that bans the same address twice in one batch", () => {
      const at = (ms: number) => new Date(Date.now() + ms).toISOString();
      let log = "";
      for (const [i, ms] of [60000, 61000, 62000, 120000, 121000, 122000].entries()) {
        log += `${at(ms)} srv sshd[${900 + i}]: Failed password for root from 203.0.113.99 port 4000 ssh2\n`;
      }
      const r = net.exec(net.server, [WATCHER, "--root", root, "inject", "LG", "--direct", "--json"], log);
      expect(r.err).toBe("");
      expect(JSON.parse(r.out).bans.map((b: { address: string }) => b.address)).toEqual(["203.0.113.99", "203.0.113.99"]);
      expect(watcher("unban", "LG", "203.0.113.99").code).toBe(0);
    });

    test("start restores every ban with its remaining time after a reboot, once; stop keeps them", async () => {
      expect(watcher("unban", "LG", ATTACKER_V6).code).toBe(0); /* from the first test, if still banned */
      expect(watcher("ban", "LG", ATTACKER_V4, "--time", "1h").code).toBe(0);
      expect(watcher("ban", "LG", "203.0.113.9", "--time", "2h").code).toBe(0);
      /* a reboot: the kernel forgets everything */
      expect(net.exec(net.server, ["nft", "flush", "ruleset"]).code).toBe(0);
      if (backend === "ipset") expect(net.exec(net.server, ["ipset", "destroy"]).code).toBe(0);
      expect(net.reachable(ATTACKER_V4)).toBe(true);

      const start = watcher("start");
      expect(start.code).toBe(0);
      expect(start.out).toMatch(/^watcher started \(pid \d+\): LG; 4 firewall entries restored \(/);
      expect(net.reachable(ATTACKER_V4, 300)).toBe(false);
      expect(net.reachable(FRIEND_V4)).toBe(true);
      const timeouts = kernelTimeouts(net, backend);
      expect(timeouts.get(ATTACKER_V4)).toBeGreaterThan(3500);
      expect(timeouts.get(ATTACKER_V4)).toBeLessThanOrEqual(3600);
      expect(timeouts.get("203.0.113.9")).toBeGreaterThan(7100);

      const again = watcher("start");
      expect(again.code).toBe(1);
      expect(again.err).toContain("already running");
      expect(watcher("restart").code).toBe(0);
      expect(kernelTimeouts(net, backend).size).toBe(2); /* restored again, not duplicated */

      const status = JSON.parse(watcher("status", "--json").out);
      expect(status).toMatchObject({ running: true, backend, modules: [{ module: "LG", restarts: 0 }] });
      expect(status.firewall.map(({ set, entries }: { set: string; entries: number }) => ({ set, entries }))).toEqual([
        { set: "watcher_white", entries: 1 },
        { set: "watcher_black", entries: 1 },
        { set: "watcher_LG", entries: 2 },
      ]);
      expect(status.jobs[0]).toMatchObject({ name: "expire", schedule: "17 * * * *" });

      expect(watcher("stop").out).toBe("watcher stopped\n");
      const stopped = watcher("status");
      expect(stopped.code).toBe(3);
      expect(net.reachable(ATTACKER_V4, 300)).toBe(false); /* keepFirewallOnStop */
    });
  });
}
