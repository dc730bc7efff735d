/**
 * Kernel benchmarks (root; everything inside a network namespace this script creates and deletes):
 *   restore: watcher's bulk restore of 10k / 100k / 1M bans into one set, for nftables and
 *            ipset, against a bare `nft -f` / `ipset restore` of the same entries (ratio); and
 *            start's whole restore of as many bans recorded in a module database;
 *   latency: line-to-drop, FIFO write -> element present in the kernel set, p50/p99 over
 *            1,000 bans, with a real `watcher module LG` (maxAffairs = 1: every line bans).
 * Usage: sudo node_modules/.bin/bun bench/kernel.ts [--runs 3] [--sizes 10000,100000,1000000] [--bans 1000]
 *          [--watcher PATH] [--only restore|latency] [--backends nftables,ipset] [--gap 0] [--warmup 0]
 * `--watcher`: the executable whose module is timed (an older build, to compare); dist/watcher by default.
 * `--gap MS`: wait this long after each ban before writing the next line (0: back to back, when
 * the next line comes while the module still commits the last chunk).
 * `--warmup N`: N bans first, not timed (a module that has run a while: its ban path compiled by
 * the JIT); 0 by default, the issue's figure, from the module's start.
 * Prints a markdown table. Medians over the runs.
 */
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, closeSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NftablesFirewall } from "../src/core/firewall/nftables";
import { IpsetFirewall } from "../src/core/firewall/ipset";
import type { Firewall, SetElement } from "../src/core/firewall/types";
import { ElementAnnouncements, keyText, listenAtRealTimePriority } from "./element-announcements";
import { loadConfig } from "../src/core/config";
import { dbPath } from "../src/core/layout";
import { checkBeforeStart, moduleEnvironment } from "../src/master/master";
import { restoreFirewall } from "../src/master/restore";
import { ModuleStore } from "../src/store/module-db";

const REPO = join(import.meta.dir, "..");
const BUN = process.execPath;
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const WATCHER = opt("watcher", join(REPO, "dist", "watcher"));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** n distinct addresses under a /8 (16M); the namespace is private, nothing leaves it */
function addresses(n: number, first = 10): string[] {
  const out: string[] = [];
  for (let i = 1; i <= n; i++) out.push(`${first}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  return out;
}

function sh(argv: string[], stdin?: string): void {
  const p = Bun.spawnSync(argv, { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${p.stderr.toString()}`);
}

function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

async function timedAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

/* ---- inside the namespace ------------------------------------------------------------ */

async function insideRestore(backend: string, n: number, runs: number): Promise<void> {
  const list = addresses(n);
  const elements: SetElement[] = list.map((address) => ({ address, timeout: 3600 }));
  const ours: number[] = [];
  const bare: number[] = [];
  for (let r = 0; r < runs; r++) {
    const fw: Firewall = backend === "nftables" ? new NftablesFirewall() : new IpsetFirewall();
    await fw.ensure([{ name: "watcher_LG", kind: "addresses" }]);
    ours.push(await timedAsync(() => fw.restore("watcher_LG", elements)));
    await fw.teardown();
    await fw.close();
    if (backend === "nftables") {
      const script = `add table inet bare\nadd set inet bare s { type ipv4_addr; flags timeout; }\nflush set inet bare s\nadd element inet bare s {\n${list.map((a) => `${a} timeout 3600s`).join(",\n")}\n}\n`;
      const file = join(tmpdir(), `bare-${process.pid}.nft`);
      writeFileSync(file, script);
      bare.push(timed(() => sh(["nft", "-f", file])));
      sh(["nft", "delete", "table", "inet", "bare"]);
      rmSync(file);
    } else {
      const script = `create bare hash:ip family inet timeout 0 maxelem 1048576\n${list.map((a) => `add bare ${a} timeout 3600`).join("\n")}\n`;
      bare.push(timed(() => sh(["ipset", "restore"], script)));
      sh(["ipset", "destroy", "bare"]);
    }
  }
  console.log(JSON.stringify({ backend, n, ours: median(ours), bare: median(bare) }));
}

/**
 * `watcher start`'s restore of n bans recorded in a module database (restoreFirewall: the
 * databases read, each address checked against the lists, every set loaded), in a root of its
 * own whose only module is LG; the same n entries through the bare tool are the other column.
 */
async function insideRestoreFromDatabase(backend: string, n: number, runs: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "watcher-restore-"));
  mkdirSync(join(root, "etc"));
  const off = ["MX", "MB", "WB", "DB", "AD", "NS", "VP", "FT"].map((m) => `[modules.${m}]\nenabled = false\n`).join("");
  writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "${backend}"\n[modules.LG]\ndns = false\n${off}`);
  const loaded = loadConfig(root);
  const now = Math.floor(Date.now() / 1000);
  const store = new ModuleStore(dbPath(loaded.paths, "LG"));
  store.transaction(() => {
    for (const [i, address] of addresses(n).entries()) {
      const seen = now - 60 + (i % 50);
      store.putHost({ address, class: null, affairs: 5, recent: [seen - 40, seen - 30, seen - 20, seen - 10, seen], preset: 0, firstSeen: seen - 40, lastSeen: seen, banCount: 1, bannedUntil: now + 3600 + (i % 3600), lastRule: "sshd-password", vhost: null });
    }
  });
  store.close();
  const { modules, lists } = checkBeforeStart(loaded);
  const ours: number[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      const fw: Firewall = backend === "nftables" ? new NftablesFirewall() : new IpsetFirewall();
      ours.push(await timedAsync(() => restoreFirewall(loaded, fw, modules, lists, now)));
      await fw.teardown();
      await fw.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ backend, n, ours: median(ours) }));
}

/**
 * When did `address` reach the module's kernel set? nftables announces every element it adds:
 * the probe just listens, and takes no CPU or netlink lock from the module it measures. ipset
 * has no such events: it is asked, as fast as a process can be started.
 */
function membershipWatch(backend: string): { arrived(address: string, since: number): Promise<number>; close(): void } {
  if (backend === "nftables") {
    const announcements = new ElementAnnouncements(2);
    if (!listenAtRealTimePriority()) throw new Error("cannot give the probe real-time priority (sched_setscheduler: root or CAP_SYS_NICE needed)");
    return {
      arrived: async (address) => {
        for (;;) {
          const message = announcements.receive();
          if (message === null) throw new Error(`${address} never reached the kernel`);
          if (message.elements.some((e) => e.set === "watcher_LG_v4" && keyText(e.key) === address)) return message.at;
        }
      },
      close: () => announcements.close(),
    };
  }
  return {
    arrived: async (address, since) => {
      while (Bun.spawnSync(["ipset", "test", "watcher_LG_v4", address], { stderr: "ignore", stdout: "ignore" }).exitCode !== 0) {
        if (performance.now() - since > 2000) throw new Error(`${address} never reached the kernel`);
      }
      return performance.now();
    },
    close: () => {},
  };
}

async function insideLatency(backend: string, bans: number, watcher: string, gapMs: number, warmup: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "watcher-latency-"));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "${backend}"\n[modules.LG]\nmaxAffairs = 1\nbanTime = "1h"\ndns = false\n`);
  /* in the environment the master gives its modules */
  const module = Bun.spawn([watcher, "--root", root, "module", "LG"], { stdout: "ignore", stderr: "ignore", env: moduleEnvironment() });
  const fifo = join(root, "var", "fifo", "WatchLG");
  while (!existsSync(fifo)) await Bun.sleep(10);
  await Bun.sleep(200);
  const watch = membershipWatch(backend);
  await Bun.sleep(200); /* the monitor is listening */
  const fd = openSync(fifo, "w");
  const list = addresses(warmup + bans, 11);
  const ms: number[] = [];
  try {
    for (const [i, a] of list.entries()) {
      const line = `Nov 25 10:00:00 srv sshd-session[${1000 + i}]: Failed password for root from ${a} port 4000 ssh2\n`;
      const t = performance.now();
      writeSync(fd, line);
      const took = (await watch.arrived(a, t)) - t;
      if (i >= warmup) ms.push(took);
      if (gapMs > 0) await Bun.sleep(gapMs);
    }
  } finally {
    watch.close();
    closeSync(fd);
    module.kill("SIGTERM");
    await module.exited;
    rmSync(root, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ backend, bans, p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms) }));
}

/* ---- outside: orchestration ---------------------------------------------------------- */

async function main(): Promise<void> {
  if (args[0] === "--inside") {
    if (args[1] === "restore") await insideRestore(args[2]!, Number(args[3]), Number(args[4]));
    else if (args[1] === "restore-db") await insideRestoreFromDatabase(args[2]!, Number(args[3]), Number(args[4]));
    else await insideLatency(args[2]!, Number(args[3]), args[4]!, Number(args[5]), Number(args[6]));
    return;
  }
  if (process.getuid?.() !== 0) throw new Error("bench/kernel.ts needs root (network namespaces)");
  if (!existsSync(WATCHER)) sh(["npm", "run", "build"]);
  const runs = Number(opt("runs", "3"));
  const sizes = opt("sizes", "10000,100000,1000000").split(",").map(Number);
  const bans = Number(opt("bans", "1000"));
  const only = opt("only", "");
  const backends = opt("backends", "nftables,ipset").split(",");
  const ns = `wt-bench-${process.pid}`;
  sh(["ip", "netns", "add", ns]);
  const inside = (...a: string[]) => {
    const p = Bun.spawnSync(["ip", "netns", "exec", ns, BUN, import.meta.path, "--inside", ...a], { stdout: "pipe", stderr: "pipe" });
    if (p.exitCode !== 0) throw new Error(p.stderr.toString());
    return JSON.parse(p.stdout.toString().trim().split("\n").at(-1)!);
  };
  try {
    console.log(`| backend | measure | watcher | bare tool | ratio |`);
    console.log(`|---|---|---|---|---|`);
    for (const backend of backends) {
      for (const n of only === "latency" ? [] : sizes) {
        const r = inside("restore", backend, String(n), String(runs));
        console.log(`| ${backend} | restore ${n.toLocaleString("en")} bans (median of ${runs}) | ${r.ours.toFixed(3)} s | ${r.bare.toFixed(3)} s (${backend === "nftables" ? "nft -f" : "ipset restore"}) | ${(r.ours / r.bare).toFixed(2)}× |`);
        const d = inside("restore-db", backend, String(n), String(runs));
        console.log(`| ${backend} | … from a module database (start's whole restore) | ${d.ours.toFixed(3)} s | | ${(d.ours / r.bare).toFixed(2)}× |`);
      }
      if (only === "restore") continue;
      const warmup = opt("warmup", "0");
      const l = inside("latency", backend, String(bans), WATCHER, opt("gap", "0"), warmup);
      const how = `${opt("gap", "0") === "0" ? "" : `, ${opt("gap", "0")} ms apart`}${warmup === "0" ? "" : `, after ${Number(warmup).toLocaleString("en")} untimed`}`;
      console.log(`| ${backend} | line-to-drop over ${bans} bans${how}: p50 / p99 / max | ${l.p50.toFixed(3)} / ${l.p99.toFixed(3)} / ${l.max.toFixed(3)} ms | | |`);
    }
  } finally {
    Bun.spawnSync(["ip", "netns", "del", ns]);
  }
}

await main();
