/**
 * Safety: a ban the kernel cannot take as asked never kills a module nor stops `start`
 * (issue 15, item 1). Real ipset + iptables and nftables in a network namespace; ban times
 * beyond the kernel's limits (ipset 2,147,483 s, nftables 99,999,999 s) are cut to the limit,
 * said in the log, and the attacker's packets stop.
 */
import { describe, expect, test } from "bun:test";
import { ATTACKER_V4, invalidUsers as failures, testNetForFile } from "../helpers/netns";
import { makeRoot, WATCHER } from "../helpers/root";
import { waitFor } from "../helpers/wait";

const testNet = testNetForFile();

describe.each([
  ["ipset", "60d", 2_147_483],
  ["nftables", "3650d", 99_999_999],
])("%s", (backend, banTime, limit) => {
  test(`a ban of ${banTime}: cut to ${limit} s and in force; the module lives, start and restart restore it`, async () => {
    const net = testNet();
    const root = makeRoot(`limits-${backend}`, {
      "etc/watcher.toml": `firewall = "${backend}"\n[modules.LG]\ndns = false\nmaxAffairs = 2\nbanTime = "${banTime}"\nmaxBanTime = "${banTime}"\n`,
    });
    const module = Bun.spawn(["ip", "netns", "exec", net.server, WATCHER, "--root", root, "module", "LG", "--stdin"], { stdin: "pipe", stdout: "ignore", stderr: "pipe" });
    let log = "";
    void (async () => {
      for await (const chunk of module.stderr) log += new TextDecoder().decode(chunk);
    })();
    module.stdin.write(failures(ATTACKER_V4, 2));
    await module.stdin.flush();
    await waitFor("the ban", () => log.includes(`ban ${ATTACKER_V4}`), 60_000);
    expect(log).toContain(`cut to ${limit} s`);
    expect(net.reachable(ATTACKER_V4)).toBe(false);
    /* the module goes on: a second attacker, with the same ban time */
    module.stdin.write(failures("198.51.100.9", 2));
    await module.stdin.flush();
    await waitFor("the second ban", () => log.includes("ban 198.51.100.9"), 60_000);
    module.stdin.end();
    expect(await module.exited).toBe(0);
    /* the database holds a ban longer than the kernel takes: start restores it, cut */
    const start = net.exec(net.server, [WATCHER, "--root", root, "start"]);
    expect(start.err).toBe("");
    expect(start.code).toBe(0);
    expect(net.reachable(ATTACKER_V4)).toBe(false);
    const restart = net.exec(net.server, [WATCHER, "--root", root, "restart"]);
    expect(restart.code).toBe(0);
    expect(net.exec(net.server, [WATCHER, "--root", root, "stop", "--remove-firewall"]).code).toBe(0);
    expect(net.reachable(ATTACKER_V4)).toBe(true);
    expect(log).not.toMatch(/^\s+at /m);
  }, 180_000);
});

describe("a set near its limit", () => {
  test("status warns before the kernel set is full (ipset, 1,048,576 entries a set)", () => {
    const net = testNet();
    const root = makeRoot("nearly-full", { "etc/watcher.toml": 'firewall = "ipset"\n[modules.LG]\ndns = false\n' });
    expect(net.exec(net.server, [WATCHER, "--root", root, "start"]).code).toBe(0);
    try {
      /* 900,000 bans, as a long flood from one IPv6 documentation range would leave them */
      let script = "";
      for (let i = 0; i < 900_000; i++) script += `add watcher_LG_v6 2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1 timeout 3600\n`;
      const filled = net.exec(net.server, ["ipset", "restore", "-exist"], script);
      expect(filled.err).toBe("");
      const status = net.exec(net.server, [WATCHER, "--root", root, "status"]);
      expect(status.code).toBe(0);
      expect(status.out).toMatch(/│ watcher_LG +│ 900000 +│/);
      expect(status.out).toMatch(/warning: watcher_LG is 86 % full/);
    } finally {
      expect(net.exec(net.server, [WATCHER, "--root", root, "stop", "--remove-firewall"]).code).toBe(0);
    }
  }, 180_000);
});
