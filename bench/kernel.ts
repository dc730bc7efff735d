/**
 * Kernel benchmarks (root; everything inside a network namespace this script creates and deletes):
 *   restore: watcher's bulk restore of 10k / 100k / 1M bans into one set, for nftables and
 *            ipset, against a bare `nft -f` / `ipset restore` of the same entries (ratio);
 *   latency: line-to-drop, FIFO write -> element present in the kernel set, p50/p99 over
 *            1,000 bans, with a real `watcher module LG` (maxAffairs = 1: every line bans).
 * Usage: sudo node_modules/.bin/bun bench/kernel.ts [--runs 3] [--sizes 10000,100000,1000000] [--bans 1000]
 * Prints a markdown table. Medians over the runs.
 */
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, closeSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NftablesFirewall } from "../src/core/firewall/nftables";
import { IpsetFirewall } from "../src/core/firewall/ipset";
import type { Firewall, SetElement } from "../src/core/firewall/types";

const REPO = join(import.meta.dir, "..");
const BUN = process.execPath;
const WATCHER = join(REPO, "dist", "watcher");
const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};

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
 * When did `address` reach the module's kernel set? nftables announces every element it adds
 * (`nft monitor`): the probe just listens, and takes no CPU or netlink lock from the module it
 * measures. ipset has no such events: it is asked, as fast as a process can be started.
 */
function membershipWatch(backend: string): { arrived(address: string, since: number): Promise<number>; close(): void } {
  if (backend === "nftables") {
    const monitor = Bun.spawn(["nft", "monitor", "elements"], { stdout: "pipe", stderr: "ignore" });
    const seen = new Map<string, number>();
    const waiting = new Map<string, (t: number) => void>();
    void (async () => {
      const decoder = new TextDecoder();
      let partial = "";
      for await (const chunk of monitor.stdout) {
        const now = performance.now();
        const lines = (partial + decoder.decode(chunk)).split("\n");
        partial = lines.pop()!;
        for (const line of lines) {
          const m = /^add element inet watcher watcher_LG_v4 \{ ([0-9.]+) /.exec(line);
          if (!m) continue;
          const resolve = waiting.get(m[1]!);
          if (resolve) resolve(now);
          else seen.set(m[1]!, now);
        }
      }
    })();
    return {
      arrived: (address) =>
        new Promise((resolve, reject) => {
          const t = seen.get(address);
          if (t !== undefined) return resolve(t);
          waiting.set(address, resolve);
          setTimeout(() => reject(new Error(`${address} never reached the kernel`)), 2000);
        }),
      close: () => monitor.kill(),
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

async function insideLatency(backend: string, bans: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "watcher-latency-"));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "${backend}"\n[modules.LG]\nmaxAffairs = 1\nbanTime = "1h"\ndns = false\n`);
  const module = Bun.spawn([WATCHER, "--root", root, "module", "LG"], { stdout: "ignore", stderr: "ignore" });
  const fifo = join(root, "var", "fifo", "WatchLG");
  while (!existsSync(fifo)) await Bun.sleep(10);
  await Bun.sleep(200);
  const watch = membershipWatch(backend);
  await Bun.sleep(200); /* the monitor is listening */
  const fd = openSync(fifo, "w");
  const list = addresses(bans, 11);
  const ms: number[] = [];
  try {
    for (const [i, a] of list.entries()) {
      const line = `Nov 25 10:00:00 srv sshd-session[${1000 + i}]: Failed password for root from ${a} port 4000 ssh2\n`;
      const t = performance.now();
      writeSync(fd, line);
      ms.push((await watch.arrived(a, t)) - t);
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
    else await insideLatency(args[2]!, Number(args[3]));
    return;
  }
  if (process.getuid?.() !== 0) throw new Error("bench/kernel.ts needs root (network namespaces)");
  if (!existsSync(WATCHER)) sh(["npm", "run", "build"]);
  const runs = Number(opt("runs", "3"));
  const sizes = opt("sizes", "10000,100000,1000000").split(",").map(Number);
  const bans = Number(opt("bans", "1000"));
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
    for (const backend of ["nftables", "ipset"]) {
      for (const n of sizes) {
        const r = inside("restore", backend, String(n), String(runs));
        console.log(`| ${backend} | restore ${n.toLocaleString("en")} bans (median of ${runs}) | ${r.ours.toFixed(3)} s | ${r.bare.toFixed(3)} s (${backend === "nftables" ? "nft -f" : "ipset restore"}) | ${(r.ours / r.bare).toFixed(2)}× |`);
      }
      const l = inside("latency", backend, String(bans));
      console.log(`| ${backend} | line-to-drop over ${bans} bans: p50 / p99 / max | ${l.p50.toFixed(3)} / ${l.p99.toFixed(3)} / ${l.max.toFixed(3)} ms | | |`);
    }
  } finally {
    Bun.spawnSync(["ip", "netns", "del", ns]);
  }
}

await main();
