/**
 * Safety (issue 16, item 6): an attacker who rotates the addresses of one IPv6 /64 is banned as
 * that /64. In-process first (real rules, real SQLite, the dry-run firewall): one failed password
 * from each of many addresses, and four from each (one short of maxAffairs), ban the prefix;
 * a /64 that holds a whitelisted address is never banned whole. Then with real nftables and
 * real ipset in network namespaces: real packets from an address of the /64 that never
 * attacked stop; a restart restores the prefix ban with its remaining time; `report` shows it;
 * `unban` of one of its addresses lifts it. The attacker's /64 is 2001:db8:2::/64, not the
 * server's own 2001:db8:1::/64 (which holds the server's address and is never banned whole).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { moduleSetName } from "../../src/core/firewall/types";
import { parseIp } from "../../src/core/ip";
import { type ModuleContext, openModule } from "../../src/modules/context";
import { manualUnban } from "../../src/ops/ban";
import { expire } from "../../src/ops/expire";
import { loadConfig } from "../../src/core/config";
import { type BanReport, ModuleRuntime, partsOf } from "../../src/pipeline/run";
import { SERVER_V6, TestNet } from "../helpers/netns";
import { makeRoot, WATCHER } from "../helpers/root";
import { waitFor } from "../helpers/wait";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0) / 1000;

/** `n` failed passwords, one connection (pid) each, from each address. */
function failures(addresses: readonly string[], n = 1, firstPid = 1000): string {
  let out = "";
  let pid = firstPid;
  for (const a of addresses) {
    for (let i = 0; i < n; i++) out += `Nov 25 11:59:0${i % 10} srv sshd-session[${pid++}]: Failed password for root from ${a} port ${40000 + (pid % 20000)} ssh2\n`;
  }
  return out;
}

/** `count` addresses of a /64, from `first` on (hex host part). */
function rotation(prefix: string, count: number, first = 0x100): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${(first + i).toString(16)}`);
}

function runtime(ctx: ModuleContext) {
  const bans: BanReport[] = [];
  return { rt: new ModuleRuntime({ ...partsOf(ctx), clock: () => NOW, useLineTime: false, onBan: (b) => bans.push(b) }), bans };
}

describe("prefix bans in-process", () => {
  test("one failed password from each of 10,000 addresses of one /64: the /64 is banned, once", async () => {
    const ctx = openModule(makeRoot("prefixes"), "LG");
    const { rt, bans } = runtime(ctx);
    const addresses = rotation("2001:db8:1:2::", 10_000);
    for (let i = 0; i < addresses.length; i += 1000) await rt.processBlock(failures(addresses.slice(i, i + 1000), 1, 1000 + i));
    expect(bans.map((b) => [b.address, b.rule, b.reason])).toEqual([["2001:db8:1:2::/64", "prefix", "prefix 2001:db8:1:2::/64: 20 affairs from 20 addresses within 1h"]]);
    expect(ctx.store.getHost("2001:db8:1:2::/64")).toMatchObject({ banCount: 1, bannedUntil: NOW + 3600 });
    const listed = await ctx.firewall.list(moduleSetName("LG"));
    expect(listed.map((e) => e.address)).toEqual(["2001:db8:1:2::/64"]);
    /* recorded like a ban, with its reason */
    expect(ctx.store.events().filter((e) => e.kind === "ban").map((e) => [e.address, e.rule])).toEqual([["2001:db8:1:2::/64", "prefix"]]);
    await ctx.close();
  });

  test("four failed passwords from each address (one short of maxAffairs): the /64 is banned after five addresses", async () => {
    const ctx = openModule(makeRoot("prefixes"), "LG");
    const { rt, bans } = runtime(ctx);
    const addresses = rotation("2001:db8:1:3::", 2000);
    for (let i = 0; i < addresses.length; i += 250) await rt.processBlock(failures(addresses.slice(i, i + 250), 4, 1000 + i * 4));
    expect(bans.map((b) => b.address)).toEqual(["2001:db8:1:3::/64"]);
    expect(bans[0]!.reason).toBe("prefix 2001:db8:1:3::/64: 20 affairs from 5 addresses within 1h");
    await ctx.close();
  });

  test("three banned addresses of one /64 ban it; another /64 and single loud addresses do not", async () => {
    const ctx = openModule(makeRoot("prefixes"), "LG");
    const { rt, bans } = runtime(ctx);
    await rt.processBlock(failures(["2001:db8:1:4::1", "2001:db8:1:5::1"], 5, 100));
    expect(bans.map((b) => b.address)).toEqual(["2001:db8:1:4::1", "2001:db8:1:5::1"]);
    await rt.processBlock(failures(["2001:db8:1:4::2", "2001:db8:1:4::3"], 5, 200));
    expect(bans.map((b) => b.address).sort()).toEqual(["2001:db8:1:4::1", "2001:db8:1:5::1", "2001:db8:1:4::2", "2001:db8:1:4::3", "2001:db8:1:4::/64"].sort());
    expect(bans.find((b) => b.rule === "prefix")!.reason).toBe("prefix 2001:db8:1:4::/64: 3 of its addresses banned within 1h (15 affairs from 3 addresses)");
    await ctx.close();
  });

  test("a /64 that holds a whitelisted address is never banned whole; its addresses are, one by one", async () => {
    const ctx = openModule(makeRoot("prefixes", { "etc/whitelist": "2001:db8:1:6::7\n" }), "LG");
    const { rt, bans } = runtime(ctx);
    await rt.processBlock(failures(rotation("2001:db8:1:6::", 200), 4));
    expect(bans).toEqual([]);
    await rt.processBlock(failures(["2001:db8:1:6::ab"], 5, 9000));
    expect(bans.map((b) => b.address)).toEqual(["2001:db8:1:6::ab"]);
    /* the same traffic from a /64 without a whitelisted address bans it whole */
    await rt.processBlock(failures(rotation("2001:db8:1:7::", 200), 4, 20000));
    expect(bans.map((b) => b.address)).toEqual(["2001:db8:1:6::ab", "2001:db8:1:7::/64"]);
    expect((await ctx.firewall.list(moduleSetName("LG"))).map((e) => e.address).sort()).toEqual(["2001:db8:1:6::ab", "2001:db8:1:7::/64"]);
    await ctx.close();
  });

  test("unban of one of its addresses lifts a prefix ban; expire keeps a running prefix ban and forgets the prefix once it is over", async () => {
    const ctx = openModule(makeRoot("prefixes", { "etc/watcher.toml": 'firewall = "dryrun"\n[modules.LG]\ndns = false\nexpireAfter = "1m"\n' }), "LG");
    const { rt, bans } = runtime(ctx);
    await rt.processBlock(failures(rotation("2001:db8:1:8::", 20), 1));
    expect(bans.map((b) => b.address)).toEqual(["2001:db8:1:8::/64"]);
    expect(await manualUnban(ctx, parseIp("2001:db8:1:8::ffff")!, NOW)).toEqual([{ where: "LG", address: "2001:db8:1:8::/64" }]);
    expect((await ctx.firewall.list(moduleSetName("LG"))).map((e) => e.address)).toEqual([]);
    expect(ctx.store.getHost("2001:db8:1:8::/64")).toMatchObject({ bannedUntil: 0, affairs: 0 });
    /* banned again: its last affair older than expireAfter, it stays while banned, and is forgotten after */
    await rt.processBlock(failures(rotation("2001:db8:1:8::", 20, 0x200), 1, 5000));
    expect((await ctx.firewall.list(moduleSetName("LG"))).map((e) => e.address)).toEqual(["2001:db8:1:8::/64"]);
    const expiredAt = async (now: number) => (await expire(loadConfig(ctx.paths.root), { module: "LG", now, dryRun: false }))[0]!.expired.map((h) => h.address);
    expect(await expiredAt(NOW + 120)).not.toContain("2001:db8:1:8::/64");
    const { bannedUntil } = ctx.store.getHost("2001:db8:1:8::/64")!;
    expect((await ctx.firewall.list(moduleSetName("LG"))).map((e) => e.address)).toEqual(["2001:db8:1:8::/64"]);
    expect(await expiredAt(bannedUntil)).toContain("2001:db8:1:8::/64");
    expect(ctx.store.getHost("2001:db8:1:8::/64")).toBeNull();
    await ctx.close();
  });

  test("IPv4 prefixes are off by default; ipv4Prefix = 24 turns them on", async () => {
    const v4 = rotation("", 40, 1).map((n) => `203.0.113.${Number.parseInt(n, 16)}`);
    const off = openModule(makeRoot("prefixes"), "LG");
    const a = runtime(off);
    await a.rt.processBlock(failures(v4, 1));
    expect(a.bans).toEqual([]);
    await off.close();
    const on = openModule(makeRoot("prefixes", { "etc/watcher.toml": 'firewall = "dryrun"\n[modules.LG]\ndns = false\nipv4Prefix = 24\n' }), "LG");
    const b = runtime(on);
    await b.rt.processBlock(failures(v4, 1));
    expect(b.bans.map((x) => x.address)).toEqual(["203.0.113.0/24"]);
    await on.close();
  });
});

/** The attacker's /64: not the server's own (2001:db8:1::/64 holds 2001:db8:1::1). */
const ROTATING = "2001:db8:2::";
/** A /64 of the attacker namespace that holds a whitelisted address. */
const FRIENDLY = "2001:db8:3::";
const FRIEND_V6 = `${FRIENDLY}7`;

for (const backend of ["nftables", "ipset"] as const) {
  describe(`${backend}: a rotating /64 is dropped whole`, () => {
    let net: TestNet;
    let root: string;
    const watcher = (...args: string[]) => net.exec(net.server, [WATCHER, "--root", root, ...args]);
    const inject = (text: string) => expect(Bun.spawnSync([WATCHER, "--root", root, "inject", "LG"], { stdin: new TextEncoder().encode(text) }).exitCode).toBe(0);

    beforeAll(async () => {
      net = new TestNet().setup();
      /* the attacker namespace holds addresses of two more /64s; the server routes them back through it */
      const attackerDev = `wta${net.id}`;
      for (const a of [`${ROTATING}5`, `${ROTATING}9999`, `${FRIENDLY}5`, FRIEND_V6]) {
        expect(net.exec(net.attacker, ["ip", "addr", "add", `${a}/64`, "dev", attackerDev, "nodad"]).code).toBe(0);
      }
      for (const p of [ROTATING, FRIENDLY]) expect(net.exec(net.server, ["ip", "-6", "route", "add", `${p}/64`, "via", "2001:db8:1::66"]).code).toBe(0);
      await net.serve();
      root = mkdtempSync(join(tmpdir(), `watcher-prefixes-${backend}-`));
      mkdirSync(join(root, "etc"));
      writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "${backend}"\n[modules.LG]\ndns = false\n`);
      writeFileSync(join(root, "etc", "whitelist"), `${FRIEND_V6}\n`);
    });
    afterAll(() => {
      watcher("stop");
      net.cleanup();
    });

    test("new addresses of the /64 are dropped; the whitelisted /64 and the server's own are not", async () => {
      expect(net.reachable(`${ROTATING}9999`)).toBe(true);
      expect(net.reachable(`${FRIENDLY}5`)).toBe(true);
      const module = net.spawn(net.server, [WATCHER, "--root", root, "module", "LG"]);
      await waitFor("the FIFO", () => existsSync(join(root, "var", "fifo", "WatchLG")), undefined, 20);
      /* 4 tries each from addresses of the attacker's /64, and of the whitelisted one, and of the server's own */
      inject(failures(rotation(ROTATING, 30), 4, 1000));
      inject(failures(rotation(FRIENDLY, 30), 4, 2000));
      inject(failures(rotation("2001:db8:1::", 30), 4, 3000));
      await waitFor("the rotating /64 to be dropped", () => !net.reachable(`${ROTATING}9999`, 300), undefined, 20);
      expect(net.reachable(`${ROTATING}5`, 300)).toBe(false);
      expect(net.reachable(`${FRIENDLY}5`)).toBe(true);
      expect(net.reachable(FRIEND_V6)).toBe(true);
      expect(net.reachable("2001:db8:1::66")).toBe(true);
      /* one element in the kernel: the /64, with its timeout */
      const listed = backend === "nftables" ? net.exec(net.server, ["nft", "list", "set", "inet", "watcher", "watcher_LG_n6"]).out : net.exec(net.server, ["ipset", "save", "watcher_LG_n6"]).out;
      expect(listed).toContain("2001:db8:2::/64");
      expect(listed).not.toContain("2001:db8:3::");
      expect(listed).not.toContain("2001:db8:1::");
      module.kill("SIGTERM");
      expect(await module.exited).toBe(0);
      expect(net.exec(net.server, ["ip", "-6", "addr", "show"]).out).toContain(SERVER_V6);
    });

    test("a restart restores the prefix ban with its remaining time; report shows it; unban lifts it", () => {
      /* a reboot: the kernel forgets everything */
      expect(net.exec(net.server, ["nft", "flush", "ruleset"]).code).toBe(0);
      if (backend === "ipset") {
        for (const tool of ["iptables", "ip6tables"]) for (const cmd of [["-F"], ["-X"]]) net.exec(net.server, [tool, ...cmd]);
        expect(net.exec(net.server, ["ipset", "destroy"]).code).toBe(0);
      }
      expect(net.reachable(`${ROTATING}9999`)).toBe(true);
      const start = watcher("start");
      expect(start.code).toBe(0);
      expect(net.reachable(`${ROTATING}9999`, 300)).toBe(false);
      if (backend === "nftables") {
        const doc = JSON.parse(net.exec(net.server, ["nft", "-j", "list", "set", "inet", "watcher", "watcher_LG_n6"]).out);
        const elems = doc.nftables.flatMap((i: { set?: { elem?: unknown[] } }) => i.set?.elem ?? []) as { elem: { val: { prefix: { addr: string; len: number } }; expires: number } }[];
        expect(elems.map((e) => `${e.elem.val.prefix.addr}/${e.elem.val.prefix.len}`)).toEqual(["2001:db8:2::/64"]);
        expect(elems[0]!.elem.expires).toBeGreaterThan(3000);
        expect(elems[0]!.elem.expires).toBeLessThanOrEqual(3600);
      } else {
        const m = /^add watcher_LG_n6 2001:db8:2::\/64 timeout (\d+)/m.exec(net.exec(net.server, ["ipset", "save", "watcher_LG_n6"]).out);
        expect(Number(m?.[1])).toBeGreaterThan(3000);
      }
      const report = JSON.parse(watcher("report", "--json").out);
      const lg = report.modules.find((m: { module: string }) => m.module === "LG");
      expect(lg.prefixBans).toEqual([expect.objectContaining({ prefix: "2001:db8:2::/64", reason: "prefix 2001:db8:2::/64: 20 affairs from 5 addresses within 1h" })]);
      expect(watcher("report").out).toContain("2001:db8:2::/64");
      /* unban of one of its addresses lifts the prefix */
      expect(watcher("unban", "LG", `${ROTATING}9999`).code).toBe(0);
      expect(net.reachable(`${ROTATING}9999`)).toBe(true);
      expect(watcher("stop").code).toBe(0);
    });
  });
}
