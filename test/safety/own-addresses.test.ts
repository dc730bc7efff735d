/**
 * An address this machine gains while watcher runs (DHCP, a second address, a link that comes
 * up later) is its own from the moment it is configured, up or down: within seconds its ban is
 * lifted, a blacklist entry that holds it stops dropping, and lines from it are neither counted
 * nor banned. Real nftables in a network namespace, the master as `watcher start` runs it.
 */
import { expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { invalidUsers as failures, testNetForFile } from "../helpers/netns";
import { makeRoot, WATCHER } from "../helpers/root";
import { waitFor } from "../helpers/wait";

const testNet = testNetForFile();

test("an address gained while running: its ban lifted, the blacklist entry holding it left out, its lines never counted; gone again, the entry drops again", async () => {
  const root = makeRoot("own-addresses", {
    "etc/watcher.toml": 'firewall = "nftables"\n[modules.LG]\ndns = false\nipv6Prefix = 0\nmaxAffairs = 3\n',
    "etc/blacklist": "203.0.113.0/24\n",
  });
  const net = testNet();
  const w = (...args: string[]) => net.exec(net.server, [WATCHER, "--root", root, ...args]);
  const kernel = () => net.exec(net.server, ["nft", "list", "table", "inet", "watcher"]).out;
  const feed = (lines: string) => writeFileSync(join(root, "var", "fifo", "WatchLG"), lines);
  const log = () => readFileSync(join(root, "var", "log", "watcher.log"), "utf8");
  expect(w("start")).toMatchObject({ code: 0 });
  try {
    expect(kernel()).toContain("203.0.113.0/24");
    feed(failures("2001:db8:77::7", 3));
    await waitFor("the ban of 2001:db8:77::7", () => kernel().includes("2001:db8:77::7"));

    /* a link that is down, with two addresses: still this machine's */
    const dev = `wto${net.id}`;
    net.exec(net.server, ["ip", "link", "add", dev, "type", "veth", "peer", "name", `${dev}p`]);
    expect(net.exec(net.server, ["ip", "addr", "add", "2001:db8:77::7/64", "dev", dev, "nodad"]).code).toBe(0);
    expect(net.exec(net.server, ["ip", "addr", "add", "203.0.113.1/24", "dev", dev]).code).toBe(0);
    await waitFor("the ban lifted and the blacklist entry left out", () => !kernel().includes("2001:db8:77::7") && !kernel().includes("203.0.113.0/24"));
    expect(log()).toContain("lifted the ban of 2001:db8:77::7: it is protected now");
    const lifted = JSON.parse(w("why", "2001:db8:77::7", "--json").out) as { modules: { events: { kind: string; rule: string; reason: string | null }[] }[] };
    expect(lifted.modules[0]!.events.at(-1)).toMatchObject({ kind: "unban", rule: "protected", reason: "lifted: it is an address of this machine" });
    expect(log()).toContain('"203.0.113.0/24" covers 203.0.113.1, an address of this machine: left out while it is');
    expect(w("ban", "LG", "203.0.113.1")).toMatchObject({ code: 2 });

    /* the modules see it too: its failures count nothing, an attacker's after them do */
    await waitFor("the module to see the new addresses", () => log().includes("LG: this machine's addresses are now"));
    feed(failures("203.0.113.1", 5) + failures("2001:db8:88::8", 3));
    await waitFor("the ban of the attacker after it", () => kernel().includes("2001:db8:88::8"));
    expect(kernel()).not.toContain("203.0.113.1 ");
    /* no module holds a record of it */
    expect((JSON.parse(w("why", "203.0.113.1", "--json").out) as { modules: unknown[] }).modules).toEqual([]);

    /* the address goes: the blacklist entry drops again */
    expect(net.exec(net.server, ["ip", "link", "del", dev]).code).toBe(0);
    await waitFor("the blacklist entry back", () => kernel().includes("203.0.113.0/24"));
  } finally {
    expect(w("stop", "--remove-firewall")).toMatchObject({ code: 0 });
  }
}, 180_000);
