/**
 * Safety (issue 15, items 1 and 3): what the kernel refuses is the refusal of one element,
 * never of the call; timeouts beyond the kernel's limit are clamped; and loopback traffic is
 * accepted before any drop, whatever a drop set holds. Real nft and ipset + iptables in
 * network namespaces, real packets; the backends run inside the namespace (test/firewall/driver.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Operation } from "../firewall/driver";
import { ATTACKER_V4, ATTACKER_V6, BUN, FRIEND_V4, PORT, SERVER_V4, SERVER_V6, TestNet } from "../helpers/netns";

const DRIVER = join(import.meta.dir, "..", "firewall", "driver.ts");
const TCP = join(import.meta.dir, "..", "helpers", "tcp.ts");

/** The limits measured on Debian 12 (nftables 1.0.6, ipset 7.17): the tools refuse one second more. */
const LIMIT = { nftables: 99_999_999, ipset: 2_147_483 } as const;

interface Outcome {
  refused: { address: string; reason: string }[];
  clamped: number;
}

for (const backend of ["nftables", "ipset"] as const) {
  describe(`${backend}: kernel limits and refusals`, () => {
    let net: TestNet;

    beforeAll(async () => {
      net = new TestNet().setup();
      await net.serve();
    });
    afterAll(() => net.cleanup());

    /** Run firewall operations inside the server namespace; their results. */
    function drive(ops: Operation[], maxElements?: number): unknown[] {
      const r = net.exec(net.server, [BUN, DRIVER, backend, ...(maxElements ? [String(maxElements)] : [])], JSON.stringify(ops));
      if (r.code !== 0) throw new Error(`driver: ${r.err}`);
      return JSON.parse(r.out);
    }

    /** Address → seconds left in one kernel set, read with the command-line tools. */
    function kernelSet(set: string): Map<string, number> {
      const out = new Map<string, number>();
      if (backend === "nftables") {
        const r = net.exec(net.server, ["nft", "-j", "list", "set", "inet", "watcher", set]);
        expect(r.err).toBe("");
        for (const item of JSON.parse(r.out).nftables) {
          for (const e of item.set?.elem ?? []) {
            if (typeof e === "string") out.set(e, 0);
            else if (e.prefix) out.set(`${e.prefix.addr}/${e.prefix.len}`, 0);
            else if (typeof e.elem?.val === "string") out.set(e.elem.val, e.elem.expires ?? 0);
            else out.set(`${e.elem.val.prefix.addr}/${e.elem.val.prefix.len}`, e.elem.expires ?? 0);
          }
        }
      } else {
        const r = net.exec(net.server, ["ipset", "save", set]);
        expect(r.err).toBe("");
        for (const m of r.out.matchAll(/^add \S+ (\S+)(?: timeout (\d+))?/gm)) out.set(m[1]!, Number(m[2] ?? 0));
      }
      return out;
    }

    /** Does a TCP connection from the server namespace to itself (`to`, from `from`) get through? */
    function selfConnect(to: string, from: string): boolean {
      const r = net.exec(net.server, [BUN, TCP, "probe", to, String(PORT), from, "3000"]);
      return r.out.trim() === "open";
    }

    /** A fresh firewall in the namespace: no nft table (iptables-nft's included), no ipset. */
    function clean(): void {
      expect(net.exec(net.server, ["nft", "flush", "ruleset"]).code).toBe(0);
      expect(net.exec(net.server, ["ipset", "destroy"]).code).toBe(0);
    }

    test("the backend's maxTimeout is the kernel's; a longer ban or restore is clamped to it and lands", () => {
      clean();
      /* the kernel's limit itself, with the tools: one second more is refused */
      if (backend === "nftables") {
        net.exec(net.server, ["nft", "add table inet probe; add set inet probe s { type ipv4_addr; flags timeout; }"]);
        expect(net.exec(net.server, ["nft", `add element inet probe s { 203.0.113.1 timeout ${LIMIT.nftables}s }`]).code).toBe(0);
        expect(net.exec(net.server, ["nft", `add element inet probe s { 203.0.113.2 timeout ${LIMIT.nftables + 1}s }`]).err).toContain("value too large");
        net.exec(net.server, ["nft", "delete table inet probe"]);
      } else {
        net.exec(net.server, ["ipset", "create", "probe", "hash:ip", "timeout", "0"]);
        expect(net.exec(net.server, ["ipset", "add", "probe", "203.0.113.1", "timeout", String(LIMIT.ipset)]).code).toBe(0);
        expect(net.exec(net.server, ["ipset", "add", "probe", "203.0.113.2", "timeout", String(LIMIT.ipset + 1)]).err).toContain("out of range");
        net.exec(net.server, ["ipset", "destroy", "probe"]);
      }

      const tenYears = 10 * 365 * 86400;
      const [limits, , ban, restore] = drive([
        { op: "limits" },
        { op: "ensure", sets: [{ name: "watcher_LG", kind: "addresses" }, { name: "watcher_MX", kind: "addresses" }] },
        { op: "ban", set: "watcher_LG", elements: [{ address: ATTACKER_V4, timeout: tenYears }, { address: ATTACKER_V6, timeout: 5e9 }, { address: "203.0.113.5", timeout: 600 }] },
        { op: "restore", set: "watcher_MX", elements: [{ address: "203.0.113.6", timeout: tenYears }, { address: "203.0.113.7", timeout: 600 }] },
      ]);
      expect(limits).toEqual({ maxTimeout: LIMIT[backend], maxElements: 1 << 20 });
      expect(ban).toEqual({ refused: [], clamped: 2 });
      expect(restore).toEqual({ refused: [], clamped: 1 });

      const lg = kernelSet("watcher_LG_v4");
      expect(lg.get(ATTACKER_V4)).toBeGreaterThan(LIMIT[backend] - 60);
      expect(lg.get(ATTACKER_V4)).toBeLessThanOrEqual(LIMIT[backend]);
      expect(lg.get("203.0.113.5")).toBeLessThanOrEqual(600);
      expect(kernelSet("watcher_LG_v6").get(ATTACKER_V6)).toBeGreaterThan(LIMIT[backend] - 60);
      const mx = kernelSet("watcher_MX_v4");
      expect(mx.get("203.0.113.6")).toBeGreaterThan(LIMIT[backend] - 60);
      expect(mx.get("203.0.113.7")).toBeLessThanOrEqual(600);
      /* and the bans drop */
      expect(net.reachable(ATTACKER_V4, 300)).toBe(false);
      expect(net.reachable(ATTACKER_V6, 300)).toBe(false);
    });

    test("the netlink path itself: elements land with their timeouts; what the kernel refuses is a false", () => {
      clean();
      const [, landed, gone, full] = drive(
        [
          { op: "ensure", sets: [{ name: "watcher_LG", kind: "addresses" }] },
          { op: "netlink", kernelSet: "watcher_LG_v4", elements: [{ address: ATTACKER_V4, timeout: 600 }, { address: "203.0.113.9", timeout: 0 }] },
          { op: "netlink", kernelSet: "watcher_XX_v4", elements: [{ address: "203.0.113.10", timeout: 600 }] },
          /* sets of 4: two more fit, the third does not */
          { op: "netlink", kernelSet: "watcher_LG_v4", elements: ["203.0.113.11", "203.0.113.12", "203.0.113.13"].map((address) => ({ address, timeout: 600 })) },
        ],
        4,
      );
      expect(landed).toBe(true);
      expect(gone).toBe(false);
      expect(full).toBe(false);
      const lg = kernelSet("watcher_LG_v4");
      expect(lg.get(ATTACKER_V4)).toBeGreaterThan(590);
      expect(lg.get(ATTACKER_V4)).toBeLessThanOrEqual(600);
      expect(lg.get("203.0.113.9")).toBe(0);
      /* nf_tables takes a batch whole or not at all; ipset's messages stand alone, so the first two went in */
      expect([...lg.keys()].sort()).toEqual(backend === "nftables" ? [ATTACKER_V4, "203.0.113.9"].sort() : [ATTACKER_V4, "203.0.113.11", "203.0.113.12", "203.0.113.9"].sort());
      expect(net.reachable(ATTACKER_V4, 300)).toBe(false);
    });

    test("a ban batch with an element the kernel refuses adds the others and reports the refused ones", () => {
      clean();
      /* sets of 4 elements each: the fifth is refused by the kernel ("Hash is full" / ENFILE) */
      const results = drive(
        [
          { op: "ensure", sets: [{ name: "watcher_LG", kind: "addresses" }] },
          { op: "ban", set: "watcher_LG", elements: ["203.0.113.1", "203.0.113.2", "203.0.113.3"].map((address) => ({ address, timeout: 600 })) },
          { op: "ban", set: "watcher_LG", elements: [ATTACKER_V4, "203.0.113.4", "203.0.113.5"].map((address) => ({ address, timeout: 600 })) },
          /* a full set still refreshes what it holds */
          { op: "ban", set: "watcher_LG", elements: [{ address: "203.0.113.1", timeout: 900 }] },
          /* a network in a set of single addresses is a prefix ban: it goes to the set's networks (`_n4`), never as 128 addresses */
          { op: "ban", set: "watcher_LG", elements: [{ address: "198.51.100.128/25", timeout: 600 }, { address: ATTACKER_V6, timeout: 600 }] },
          /* and a full set can still be unbanned from, an address it holds or not */
          { op: "unban", set: "watcher_LG", addresses: ["203.0.113.2", "203.0.113.9"] },
        ],
        4,
      ) as Outcome[];
      expect(results[0]).toBeNull();
      expect(results[1]).toEqual({ refused: [], clamped: 0 });
      expect(results[2]!.refused.map((r) => r.address)).toEqual(["203.0.113.4", "203.0.113.5"]);
      for (const r of results[2]!.refused) expect(r.reason).toBe("the set is full");
      expect(results[3]).toEqual({ refused: [], clamped: 0 });
      expect(results[4]).toEqual({ refused: [], clamped: 0 });
      expect([...kernelSet("watcher_LG_n4").keys()]).toEqual(["198.51.100.128/25"]);

      expect(results[5]).toBeNull();
      const v4 = kernelSet("watcher_LG_v4");
      expect([...v4.keys()].sort()).toEqual([ATTACKER_V4, "203.0.113.1", "203.0.113.3"].sort());
      expect(v4.get("203.0.113.1")).toBeGreaterThan(600);
      expect([...kernelSet("watcher_LG_v6").keys()]).toEqual([ATTACKER_V6]);
      expect(net.reachable(ATTACKER_V4, 300)).toBe(false);
      expect(net.reachable(ATTACKER_V6, 300)).toBe(false);
    });

    test("restore replaces the set with what the kernel takes and reports the rest", () => {
      clean();
      /* a refusal that is about the element, not the set's size: for nft, a prefix ban that overlaps another one */
      const bad =
        backend === "nftables"
          ? { kind: "addresses" as const, address: "198.51.100.0/24", reason: /conflicting intervals|overlaps/ }
          : { kind: "networks" as const, address: "0.0.0.0/0", reason: /CIDR/ };
      const beside = backend === "nftables" ? ["198.51.100.128/25"] : [];
      const timeout = bad.kind === "addresses" ? 600 : 0;
      const results = drive(
        [
          { op: "ensure", sets: [{ name: "watcher_test", kind: bad.kind }, { name: "watcher_test2", kind: bad.kind }] },
          { op: "restore", set: "watcher_test", elements: [{ address: "203.0.113.200", timeout }] },
          {
            op: "restore",
            set: "watcher_test",
            elements: [ATTACKER_V4, "203.0.113.1", ...beside, bad.address, "203.0.113.2", "203.0.113.3", "203.0.113.4", "2001:db8:2::1"].map((address) => ({ address, timeout })),
          },
          /* only more than the set holds */
          { op: "restore", set: "watcher_test2", elements: ["203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.14", "203.0.113.15", "203.0.113.16"].map((address) => ({ address, timeout })) },
        ],
        4,
      ) as Outcome[];
      expect(results[1]).toEqual({ refused: [], clamped: 0 });
      const { refused } = results[2]!;
      expect(refused.map((r) => r.address).sort()).toEqual([bad.address, "203.0.113.4"].sort());
      expect(refused.find((r) => r.address === bad.address)!.reason).toMatch(bad.reason);
      expect(refused.find((r) => r.address === "203.0.113.4")!.reason).toContain("the set is full");
      /* the old content is gone, the new one is in, in one swap */
      expect([...kernelSet("watcher_test_v4").keys()].sort()).toEqual([ATTACKER_V4, "203.0.113.1", "203.0.113.2", "203.0.113.3"].sort());
      expect([...kernelSet("watcher_test_v6").keys()]).toEqual(["2001:db8:2::1"]);
      if (backend === "nftables") expect([...kernelSet("watcher_test_n4").keys()]).toEqual(beside);
      expect(net.reachable(ATTACKER_V4, 300)).toBe(false);

      expect(results[3]!.refused).toEqual(["203.0.113.15", "203.0.113.16"].map((address) => ({ address, reason: "the set is full" })));
      expect([...kernelSet("watcher_test2_v4").keys()].sort()).toEqual(["203.0.113.11", "203.0.113.12", "203.0.113.13", "203.0.113.14"]);
    });

    if (backend === "ipset") {
      test("a ban after the ipset session died starts a new session and lands", () => {
        clean();
        const [, first, killed, second] = drive([
          { op: "ensure", sets: [{ name: "watcher_LG", kind: "addresses" }] },
          { op: "ban", set: "watcher_LG", elements: [{ address: "203.0.113.1", timeout: 600 }] },
          { op: "kill-ipset-session" },
          { op: "ban", set: "watcher_LG", elements: [{ address: ATTACKER_V4, timeout: 600 }] },
        ]);
        expect(first).toEqual({ refused: [], clamped: 0 });
        expect(killed).not.toBeNull();
        expect(second).toEqual({ refused: [], clamped: 0 });
        expect([...kernelSet("watcher_LG_v4").keys()].sort()).toEqual([ATTACKER_V4, "203.0.113.1"].sort());
        expect(net.reachable(ATTACKER_V4, 300)).toBe(false);
      });
    }

    test("loopback, the server's own addresses and the whitelist get through, whatever the drop sets hold", () => {
      clean();
      const everything = ["127.0.0.1", "::1", "0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1", "198.51.100.0/24", "2001:db8::/32"];
      const [, , black, lg] = drive([
        { op: "ensure", sets: [{ name: "watcher_white", kind: "networks" }, { name: "watcher_black", kind: "networks" }, { name: "watcher_LG", kind: "addresses" }] },
        { op: "restore", set: "watcher_white", elements: [{ address: FRIEND_V4, timeout: 0 }] },
        { op: "restore", set: "watcher_black", elements: everything.map((address) => ({ address, timeout: 0 })) },
        { op: "ban", set: "watcher_LG", elements: ["127.0.0.1", "::1", SERVER_V4, SERVER_V6].map((address) => ({ address, timeout: 600 })) },
      ]) as Outcome[];
      /* the sets drop: the attacker namespace gets nothing through, but from its whitelisted address */
      expect(net.reachable(ATTACKER_V4, 300)).toBe(false);
      expect(net.reachable(ATTACKER_V6, 300)).toBe(false);
      expect(net.reachable(FRIEND_V4, 3000)).toBe(true);
      /* the server reaches itself */
      expect(selfConnect("127.0.0.1", "127.0.0.1")).toBe(true);
      expect(selfConnect("::1", "::1")).toBe(true);
      expect(selfConnect(SERVER_V4, SERVER_V4)).toBe(true);
      expect(selfConnect(SERVER_V6, SERVER_V6)).toBe(true);
      /* ipset's hash:net takes no /0 (the two halves cover everything all the same) */
      expect(black!.refused.map((r) => r.address)).toEqual(backend === "nftables" ? [] : ["0.0.0.0/0", "::/0"]);
      expect(lg).toEqual({ refused: [], clamped: 0 });
    });

    /* last: it flushes the namespace's firewall */
    test("flushed under it (nft flush ruleset, iptables -F): intact() says so, and a ban is refused, never thrown, until ensure() puts the hook back", () => {
      const LG = { name: "watcher_LG", kind: "addresses" } as const;
      const ban: Operation = { op: "ban", set: "watcher_LG", elements: [{ address: ATTACKER_V4, timeout: 60 }] };
      expect(drive([{ op: "ensure", sets: [LG] }, { op: "intact" }])).toEqual([null, true]);
      expect(net.exec(net.server, backend === "nftables" ? ["nft", "flush", "ruleset"] : ["sh", "-c", "iptables -F && ip6tables -F"]).code).toBe(0);
      const [intact, banned] = drive([{ op: "intact" }, ban]) as [boolean, Outcome];
      expect(intact).toBe(false);
      /* nftables: the table went with its sets, and nothing can go in; ipset: the sets stay, unhooked */
      if (backend === "nftables") expect(banned).toEqual({ refused: [{ address: ATTACKER_V4, reason: expect.stringContaining("table inet watcher is gone") }], clamped: 0 });
      else expect(banned).toEqual({ refused: [], clamped: 0 });
      expect(drive([{ op: "ensure", sets: [LG] }, { op: "intact" }, ban])).toEqual([null, true, { refused: [], clamped: 0 }]);
      expect(net.reachable(ATTACKER_V4, 300)).toBe(false);
      /* one rule of watcher's taken away, the rest left: not intact either */
      const oneRule = backend === "nftables" ? ["nft", "flush", "chain", "inet", "watcher", "input"] : ["ip6tables", "-w", "-D", "WATCHER", "-m", "set", "--match-set", "watcher_LG_v6", "src", "-j", "DROP"];
      expect(net.exec(net.server, oneRule).code).toBe(0);
      expect(drive([{ op: "intact" }, { op: "ensure", sets: [LG] }, { op: "intact" }])).toEqual([false, null, true]);
    });
  });
}
