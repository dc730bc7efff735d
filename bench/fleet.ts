/**
 * Fleet benchmarks, with a real redis-server (Debian's, on loopback and a Unix socket in a temp
 * folder, AOF with fsync every second; ended by PID) and the compiled dist/watcher. Started by
 * bench/fleet; see bench/README.md, section "Fleet". Needs root (network namespaces, nftables).
 *
 *   throughput  publishDecisions (src/core/fleet.ts) of --decisions signed bans through a
 *               FleetLink in batches of 500, as a module's outbox drain does; --runs runs, with
 *               appendfsync everysec, then always; decisions/s
 *   memory      after the last everysec run: MEMORY USAGE of the stream, the active zset and the
 *               payload hash, and the used_memory delta, for --decisions active bans
 *   latency     node A (`watcher start`, maxAffairs = 1) reads a failed login in its FIFO;
 *               node B gets the decision from the stream. Each node runs in a network namespace
 *               of its own, with nftables, and reaches Redis through its Unix socket. Time from
 *               the FIFO write to the element in B's watcher_fleet_v4/_v6, as the kernel
 *               announces it in B's namespace (element-worker.ts); --bans bans, one at a
 *               time, then --bans more with a reader of the stream of our own for the split
 *   apply       --apply decisions published at once (A stopped): time until every one is an
 *               element of B's kernel set
 *   hot         `watcher module LG --stdin < corpus` (--lines, bench/gen-corpus.ts) with the
 *               fleet off; on against the live Redis, bans only and with shareAffairs; on
 *               with Redis unreachable (a loopback port nobody listens on), shareAffairs;
 *               --hot-runs rounds of the four, interleaved; lines/s of the whole process
 *
 * Usage: bench/fleet [--bans 1000] [--decisions 100000] [--runs 3] [--apply 10000]
 *                    [--lines 1000000] [--hot-runs 7] [--seed 1] [--only latency,throughput,hot] [--watcher PATH]
 * Markdown table on stdout, progress on stderr. Every process, the namespace and the temp
 * folders are removed at the end, also on error or Ctrl-C.
 */
import { RedisClient } from "bun";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type FleetConfig } from "../src/core/config";
import { type Decision, fleetKeys, newDecision, publishDecisions } from "../src/fleet/protocol";
import { FleetLink } from "../src/fleet/link";
import { parseIp } from "../src/core/ip";
import { isAlive, readJson } from "../src/core/runfiles";
import { freePort, TestRedis } from "../test/helpers/redis";
import { waitFor } from "../test/helpers/wait";
import { generate } from "./gen-corpus";
import { type ProcessRun, runTimed } from "./measure";

const REPO = join(import.meta.dir, "..");
/** `--watcher PATH`: another build (an older one, to compare); dist/watcher by default */
const watcherAt = process.argv.indexOf("--watcher");
const WATCHER = watcherAt > 0 ? process.argv[watcherAt + 1]! : join(REPO, "dist", "watcher");
const KEY = "fleet-bench-key-0123456789abcdef";
const BATCH = 500; /* DRAIN_BATCH in src/modules/fleet.ts */
const ARRIVAL_TIMEOUT_MS = 5000;

/* ---- arguments -------------------------------------------------------------------------- */

const USAGE =
  "usage: bench/fleet [--bans 1000] [--decisions 100000] [--runs 3] [--apply 10000] [--lines 1000000] [--hot-runs 7] [--seed 1] [--only latency,throughput,hot] [--watcher PATH]";
const PARTS = ["throughput", "latency", "hot"] as const;
type Part = (typeof PARTS)[number];

interface Opts {
  bans: number;
  decisions: number;
  runs: number;
  apply: number;
  lines: number;
  hotRuns: number;
  seed: number;
  only: Set<Part>;
}

function parseArgs(argv: string[]): Opts {
  const o: Opts = { bans: 1000, decisions: 100_000, runs: 3, apply: 10_000, lines: 1_000_000, hotRuns: 7, seed: 1, only: new Set(PARTS) };
  const numeric: Record<string, keyof Opts> = {
    "--bans": "bans",
    "--decisions": "decisions",
    "--runs": "runs",
    "--apply": "apply",
    "--lines": "lines",
    "--hot-runs": "hotRuns",
    "--seed": "seed",
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === "-h" || k === "--help") {
      console.log(USAGE);
      process.exit(0);
    }
    const v = argv[++i];
    if (k === "--watcher" && v !== undefined) continue; /* read above, as WATCHER */
    if (k === "--only" && v !== undefined) {
      const parts = v.split(",");
      const bad = parts.find((p) => !(PARTS as readonly string[]).includes(p));
      if (bad) throw new UsageError(`--only: unknown part ${JSON.stringify(bad)} (${PARTS.join(", ")})`);
      o.only = new Set(parts as Part[]);
      continue;
    }
    const field = numeric[k];
    if (!field || v === undefined || !/^\d+$/.test(v) || (Number(v) < 1 && field !== "seed")) {
      throw new UsageError(`bad argument ${JSON.stringify(k)}${v === undefined ? "" : ` ${JSON.stringify(v)}`}`);
    }
    (o as unknown as Record<string, number>)[field] = Number(v);
  }
  return o;
}

class UsageError extends Error {}

/* ---- small helpers ---------------------------------------------------------------------- */

const T0 = performance.now();
const progress = (message: string) => process.stderr.write(`bench/fleet [${((performance.now() - T0) / 1000).toFixed(1)} s]: ${message}\n`);
const nowS = () => Math.floor(Date.now() / 1000);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const canonical = (text: string): string => parseIp(text)!.text;
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
const rate = (n: number) => (n >= 999_500 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : n.toFixed(0));
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
const range = (xs: number[], f: (x: number) => string) => `${xs.length} runs (${f(Math.min(...xs))} – ${f(Math.max(...xs))})`;

function sh(argv: string[]): string {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${p.stderr.toString().trim()}`);
  return p.stdout.toString();
}

/** Documentation addresses only; 192.0.2.0/24 is left out (machines like this one use it). */
function latencyAddress(i: number): string {
  const j = i >> 1;
  if (i % 2 === 1) return canonical(`2001:db8:1::${(j + 1).toString(16)}`);
  if (j < 250) return `203.0.113.${j + 1}`;
  if (j < 500) return `198.51.100.${j - 249}`;
  return canonical(`2001:db8:2::${(j + 1).toString(16)}`); /* beyond 1,000 bans: IPv6 only */
}

/** The i-th of up to 2^32 distinct addresses in 2001:db8:<block>::/48. */
const v6Address = (block: number, i: number) => canonical(`2001:db8:${block.toString(16)}:0:0:0:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}`);

/* ---- what the bench starts, and always ends --------------------------------------------- */

const cleanups: (() => void | Promise<void>)[] = [];
const dirs: string[] = [];

function tempDir(label: string): string {
  const d = mkdtempSync(join(tmpdir(), `watcher-fleet-${label}-`));
  dirs.push(d);
  return d;
}

let cleaning: Promise<void> | null = null;

/** Once, whoever asks first (the end of main, or a signal); the other waits for the same. */
function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (e) {
        progress(`cleanup: ${(e as Error).message}`);
      }
    }
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  })();
  return cleaning;
}

function killPid(pid: number | null | undefined): void {
  if (!pid || !isAlive(pid)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* gone meanwhile */
  }
}

/** A network namespace of our own: lo only. Whatever runs in it when we are done is ours: killed by PID, then the namespace goes. */
function makeNamespace(node: string): string {
  const ns = `wt-fleet-${process.pid}-${node}`;
  sh(["ip", "netns", "add", ns]);
  cleanups.push(() => {
    const pids = Bun.spawnSync(["ip", "netns", "pids", ns], { stdout: "pipe", stderr: "ignore" }).stdout.toString();
    for (const pid of pids.split("\n").filter(Boolean)) killPid(Number(pid));
    Bun.spawnSync(["ip", "netns", "del", ns]);
  });
  sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
  return ns;
}

async function startRedis(): Promise<TestRedis> {
  const redis = new TestRedis();
  dirs.push(redis.dir);
  cleanups.push(() => redis.stop());
  await redis.start();
  /* AOF, fsync once a second (Redis's advice for AOF); the always rows set it per run */
  redis.cli("CONFIG", "SET", "appendfsync", "everysec");
  return redis;
}

function fleetKeyFile(root: string): void {
  writeFileSync(join(root, "etc", "fleet.key"), `${KEY}\n`);
  chmodSync(join(root, "etc", "fleet.key"), 0o600);
}

function makeRoot(label: string, toml: string): string {
  const root = tempDir(label);
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc", "watcher.toml"), toml);
  fleetKeyFile(root);
  return root;
}

/** The [fleet] settings as watcher reads them (defaults from src/core/config.ts). */
function fleetSettings(url: string, node: string): FleetConfig {
  const root = makeRoot("settings", `firewall = "dryrun"\n[fleet]\nurl = "${url}"\nnode = "${node}"\n`);
  return loadConfig(root).config.fleet!;
}

interface Node {
  root: string;
  proc: Bun.Subprocess;
  stop(): Promise<void>;
}

/** `watcher start --foreground` (in `ns` when given), ready once its fleet reader has synced and its LG module is connected. */
async function startNode(name: string, root: string, ns: string | null): Promise<Node> {
  const log = openSync(join(root, "master.log"), "a");
  const argv = [WATCHER, "--root", root, "start", "--foreground"];
  const proc = Bun.spawn(ns ? ["ip", "netns", "exec", ns, ...argv] : argv, { stdin: "ignore", stdout: log, stderr: log });
  closeSync(log);
  const run = join(root, "var", "run");
  const modulePids = () => Object.values(readJson<{ modules: Record<string, { pid: number | null }> }>(join(run, "master.json"))?.modules ?? {}).map((m) => m.pid);
  let pids: (number | null)[] = [];
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGTERM");
      const stopped = await Promise.race([proc.exited.then(() => true), Bun.sleep(15000).then(() => false)]);
      if (!stopped) {
        progress(`node ${name} did not stop within 15 s: killed`);
        proc.kill("SIGKILL");
        await proc.exited;
      }
    }
    for (const pid of pids) killPid(pid); /* modules of a master that died unclean */
  };
  cleanups.push(stop);
  try {
    await waitFor(`node ${name} to be ready`, () => {
      if (proc.exitCode !== null) throw new Error(`node ${name} exited (${proc.exitCode}); see ${join(root, "master.log")}`);
      const master = readJson<{ ready: boolean }>(join(run, "master.json"));
      const fleet = readJson<{ connected: boolean; syncs: number }>(join(run, "fleet.json"));
      const lg = readJson<{ fleet: { connected: boolean } | null }>(join(run, "LG.json"));
      return master?.ready && fleet?.connected && fleet.syncs >= 1 && lg?.fleet?.connected;
    }, 20000, 20);
  } finally {
    pids = modulePids();
  }
  return { root, proc, stop };
}

/* ---- probes ----------------------------------------------------------------------------- */

/** Arrival times (performance.now()) of addresses, fed by a reader; `arrived` resolves at once for one seen before. */
class Arrivals {
  readonly seen = new Map<string, number>();
  private readonly waiting = new Map<string, (t: number) => void>();

  mark(address: string, t: number): void {
    if (this.seen.has(address)) return;
    this.seen.set(address, t);
    this.waiting.get(address)?.(t);
    this.waiting.delete(address);
  }

  arrived(address: string, timeoutMs = ARRIVAL_TIMEOUT_MS): Promise<number | null> {
    const t = this.seen.get(address);
    if (t !== undefined) return Promise.resolve(t);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(address);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(address, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }
}

/**
 * The kernel's announcements of elements added to B's fleet sets, heard in B's namespace by a
 * thread of ours (element-worker.ts): when each address got there. Resolves once it listens.
 */
async function kernelProbe(ns: string): Promise<{ arrivals: Arrivals; close(): void }> {
  const arrivals = new Arrivals();
  const worker = new Worker(join(import.meta.dir, "element-worker.ts"));
  const close = () => worker.terminate();
  cleanups.push(close);
  await new Promise<void>((listening, failed) => {
    worker.onerror = (e) => failed(new Error(`kernel probe: ${e.message}`));
    worker.onmessage = (event: MessageEvent<{ ready: true } | { set: string; address: string; at: number }>) => {
      const m = event.data;
      if ("ready" in m) listening();
      else if (/^watcher_fleet_v[46]$/.test(m.set)) arrivals.mark(canonical(m.address), m.at - performance.timeOrigin);
    };
    worker.postMessage(ns);
  });
  return { arrivals, close };
}

/** A reader of the decision stream (like a node's): when each address's decision is in Redis. */
function streamProbe(url: string, stream: string): { arrivals: Arrivals; ready: Promise<void>; close(): void } {
  const arrivals = new Arrivals();
  let ready = () => {};
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const client = new RedisClient(url, { autoReconnect: false, enableOfflineQueue: false });
  let closed = false;
  const close = () => {
    closed = true;
    client.close();
  };
  cleanups.push(close);
  void (async () => {
    let cursor = "$";
    try {
      await client.connect();
      /* the stream's last id now: what comes after it is ours to time */
      const info = (await client.send("XINFO", ["STREAM", stream]).catch(() => null)) as Record<string, unknown> | null;
      if (info) cursor = String(info["last-generated-id"]);
    } catch (e) {
      progress(`stream probe: ${(e as Error).message}`);
      return;
    } finally {
      ready();
    }
    while (!closed) {
      let reply: Record<string, [string, string[]][]> | null;
      try {
        reply = (await client.send("XREAD", ["BLOCK", "0", "STREAMS", stream, cursor])) as typeof reply;
      } catch {
        return; /* closed */
      }
      const now = performance.now();
      for (const [id, fields] of reply?.[stream] ?? []) {
        cursor = id;
        const i = fields.indexOf("address");
        if (i >= 0 && i % 2 === 0) arrivals.mark(fields[i + 1]!, now);
      }
    }
  })();
  return { arrivals, ready: isReady, close };
}

/* ---- throughput and memory -------------------------------------------------------------- */

interface PublishRun {
  seconds: number;
  decisions: number;
}

function banDecisions(n: number, block: number, origin: string): Decision[] {
  const until = nowS() + 3600;
  return Array.from({ length: n }, (_, i) => newDecision(origin, "LG", "ban", v6Address(block, i), until, "failed-auth", nowS()));
}

/** Publish `decisions` in batches of 500 through one FleetLink, each batch awaited (drainOutbox's way). */
async function publishAll(settings: FleetConfig, decisions: readonly Decision[]): Promise<PublishRun> {
  const key = Buffer.from(KEY);
  const link = new FleetLink(settings);
  try {
    if (!(await link.start())) throw new Error(`cannot reach Redis: ${link.lastError}`);
    const t0 = performance.now();
    for (let i = 0; i < decisions.length; i += BATCH) {
      const sent = await link.run((c) => publishDecisions(c, settings, key, decisions.slice(i, i + BATCH)));
      if (sent === null) throw new Error(`lost Redis after ${i} decisions: ${link.lastError}`);
    }
    return { seconds: (performance.now() - t0) / 1000, decisions: decisions.length };
  } finally {
    link.close();
  }
}

function usedMemory(redis: TestRedis): number {
  return Number(/used_memory:(\d+)/.exec(redis.cli("INFO", "memory"))![1]);
}

interface Row {
  figure: string;
  value: string;
  detail: string;
}

async function throughputAndMemory(o: Opts, redis: TestRedis, rows: Row[]): Promise<void> {
  const settings = fleetSettings(redis.url, "bench");
  const k = fleetKeys(settings.prefix);
  for (const fsync of ["everysec", "always"] as const) {
    redis.cli("CONFIG", "SET", "appendfsync", fsync);
    const rates: number[] = [];
    let memory: { stream: number; active: number; payload: number; used: number; xlen: number; zcard: number; hlen: number } | null = null;
    for (let r = 0; r < o.runs; r++) {
      redis.cli("FLUSHALL", "SYNC");
      redis.cli("BGREWRITEAOF"); /* the AOF starts small again: each run writes into the same kind of file */
      await waitFor("the AOF rewrite", () => /aof_rewrite_in_progress:0/.test(redis.cli("INFO", "persistence")) && /aof_rewrite_scheduled:0/.test(redis.cli("INFO", "persistence")), 20000, 20);
      const decisions = banDecisions(o.decisions, 0xb, "web-01");
      const before = usedMemory(redis);
      const run = await publishAll(settings, decisions);
      rates.push(run.decisions / run.seconds);
      progress(`publish ${o.decisions} decisions, appendfsync ${fsync}, run ${r + 1}: ${run.seconds.toFixed(2)} s, ${rate(run.decisions / run.seconds)}/s`);
      if (fsync === "everysec" && r === o.runs - 1) {
        const usage = (key: string) => Number(redis.cli("MEMORY", "USAGE", key, "SAMPLES", "0").trim());
        memory = {
          stream: usage(k.stream),
          active: usage(k.active),
          payload: usage(k.payload),
          used: usedMemory(redis) - before,
          xlen: Number(redis.cli("XLEN", k.stream).trim()),
          zcard: Number(redis.cli("ZCARD", k.active).trim()),
          hlen: Number(redis.cli("HLEN", k.payload).trim()),
        };
      }
    }
    rows.push({
      figure: `publish ${o.decisions.toLocaleString("en")} signed bans, batches of ${BATCH} through one FleetLink (TCP loopback), AOF appendfsync ${fsync}`,
      value: `${rate(median(rates))} decisions/s`,
      detail: range(rates, (x) => `${rate(x)}/s`),
    });
    if (memory) {
      const m = memory;
      rows.push({
        figure: `Redis memory for ${o.decisions.toLocaleString("en")} active bans: stream / active zset / payload hash (MEMORY USAGE)`,
        value: `${mib(m.stream)} / ${mib(m.active)} / ${mib(m.payload)}`,
        detail: `${m.xlen.toLocaleString("en")} stream entries (MAXLEN ~ ${settings.streamLength.toLocaleString("en")}), ${m.zcard.toLocaleString("en")} in the zset, ${m.hlen.toLocaleString("en")} payloads; IPv6 addresses`,
      });
      rows.push({
        figure: `Redis memory for ${o.decisions.toLocaleString("en")} active bans: used_memory delta (INFO memory)`,
        value: mib(m.used),
        detail: `${((m.used / o.decisions) | 0).toLocaleString("en")} bytes per decision`,
      });
    }
  }
  redis.cli("CONFIG", "SET", "appendfsync", "everysec");
  redis.cli("FLUSHALL", "SYNC");
}

/* ---- propagation latency and apply rate ------------------------------------------------- */

async function latencyAndApply(o: Opts, redis: TestRedis, rows: Row[]): Promise<void> {
  redis.cli("FLUSHALL", "SYNC");
  const [nsA, ns] = [makeNamespace("a"), makeNamespace("b")];
  /* each node in a namespace of its own (nftables, as on a server), reaching Redis through its Unix socket */
  const rootA = makeRoot("node-a", `firewall = "nftables"\n[modules.LG]\ndns = false\nmaxAffairs = 1\n[fleet]\nurl = "${redis.socket}"\nnode = "a"\n`);
  const rootB = makeRoot("node-b", `firewall = "nftables"\n[modules.LG]\ndns = false\n[fleet]\nurl = "${redis.socket}"\nnode = "b"\n`);
  progress("starting node A and node B, each in a namespace of its own, nftables");
  const [a, b] = await Promise.all([startNode("a", rootA, nsA), startNode("b", rootB, ns)]);
  const settings = fleetSettings(redis.url, "bench");
  const stream = fleetKeys(settings.prefix).stream;
  const kernel = await kernelProbe(ns);

  const fd = openSync(join(rootA, "var", "fifo", "WatchLG"), "w");
  let sshdPid = 20000;
  /* one failed login on A: ms until the element is in B's kernel set, and until a third reader of the stream has the decision (when there is one) */
  const ban = async (address: string, inRedis: Arrivals | null) => {
    const line = `Nov 25 10:00:00 srv sshd-session[${sshdPid++}]: Failed password for root from ${address} port ${40000 + (sshdPid % 20000)} ssh2\n`;
    const t = performance.now();
    writeSync(fd, line);
    const arrived = await kernel.arrivals.arrived(address);
    const published = inRedis ? await inRedis.arrived(address, 1000) : null;
    return arrived === null ? null : { total: arrived - t, toStream: published === null ? null : published - t };
  };
  /* --bans bans timed with nothing else reading the stream (a fleet of two: A's and B's masters), then as many with the benchmark's own reader for the split */
  const total: number[] = [];
  const splitTotal: number[] = [];
  const toStream: number[] = [];
  const fromStream: number[] = [];
  let missed = 0;
  try {
    for (let i = 0; i < 10; i++) if ((await ban(v6Address(0xe, i), null)) === null) throw new Error("warm-up: a ban never reached node B's kernel set");
    progress(`latency: ${o.bans} bans, one at a time`);
    for (let i = 0; i < o.bans; i++) {
      const r = await ban(latencyAddress(i), null);
      if (r === null) missed++;
      else total.push(r.total);
      if ((i + 1) % 250 === 0) progress(`latency: ${i + 1} bans, p50 ${ms(percentile(total, 50))} ms so far`);
    }
    const inRedis = streamProbe(redis.url, stream);
    await inRedis.ready;
    progress(`latency: ${o.bans} more bans, with a reader of the stream for the split`);
    for (let i = 0; i < o.bans; i++) {
      const r = await ban(v6Address(0xb, i), inRedis.arrivals);
      if (r === null) missed++;
      else splitTotal.push(r.total);
      if (r?.toStream != null) {
        toStream.push(r.toStream);
        fromStream.push(r.total - r.toStream);
      }
    }
    inRedis.close();
  } finally {
    closeSync(fd);
  }
  const pct = (xs: number[]) => (xs.length ? `${ms(percentile(xs, 50))} / ${ms(percentile(xs, 99))} / ${ms(Math.max(...xs))} ms` : "—");
  rows.push({
    figure: `propagation: failed login in A's FIFO → element in B's kernel set (nftables, own namespace), ${o.bans.toLocaleString("en")} bans: p50 / p99 / max`,
    value: pct(total),
    detail: `${total.length} timed${missed ? `, ${missed} never arrived within ${ARRIVAL_TIMEOUT_MS / 1000} s` : ""}; alternately IPv4 and IPv6; the stream read by A's and B's masters only`,
  });
  rows.push({
    figure: `… the same with a third reader of the stream (the benchmark's, for the split below), ${o.bans.toLocaleString("en")} more bans: p50 / p99 / max`,
    value: pct(splitTotal),
    detail: `${splitTotal.length} timed; IPv6`,
  });
  rows.push({
    figure: "… of which: FIFO → decision in the stream (seen by a reader like B's): p50 / p99 / max",
    value: pct(toStream),
    detail: "A's module: rules, SQLite commit, outbox, XADD",
  });
  rows.push({
    figure: "… of which: stream → B's kernel set: p50 / p99 / max",
    value: pct(fromStream),
    detail: "B's master: XREAD BLOCK returns, verify, nftables, fleet.db",
  });

  /* apply rate: A stopped (it would apply the same decisions into its dry-run set, on the same 2 cores) */
  await a.stop();
  const decisions = banDecisions(o.apply, 0xa, "bench");
  progress(`apply: ${o.apply} decisions at once into the stream`);
  const t0 = performance.now();
  const published = await publishAll(settings, decisions);
  const last = await waitFor(
    `node B to hold all ${o.apply} decisions`,
    () => {
      let latest = 0;
      for (const d of decisions) {
        const t = kernel.arrivals.seen.get(d.address);
        if (t === undefined) return null;
        latest = Math.max(latest, t);
      }
      return latest;
    },
    120000,
    20,
  );
  kernel.close();
  const seconds = (last - t0) / 1000;
  await Bun.sleep(1200); /* B writes its counters once a second */
  const counted = readJson<{ applied: number; badSignature: number; duplicates: number }>(join(rootB, "var", "run", "fleet.json"));
  rows.push({
    figure: `apply: ${o.apply.toLocaleString("en")} decisions published at once → all in B's kernel set`,
    value: `${seconds.toFixed(2)} s, ${rate(o.apply / seconds)} decisions/s`,
    detail:
      `publishing took ${published.seconds.toFixed(2)} s of it; B reads 1,000 per XREAD` +
      (counted ? `; B's counters over the whole run: ${counted.applied} applied, ${counted.duplicates} duplicates, ${counted.badSignature} bad signatures` : ""),
  });
  await b.stop();
}

/* ---- the hot path with the fleet off and on ----------------------------------------------- */

async function hotPath(o: Opts, redis: TestRedis, rows: Row[]): Promise<void> {
  const dir = tempDir("corpus");
  const corpus = join(dir, "corpus.log");
  progress(`corpus: ${o.lines} lines (bench/gen-corpus.ts, seed ${o.seed})`);
  generate({ lines: o.lines, seed: o.seed, out: corpus });
  const dead = await freePort();
  const base = `firewall = "dryrun"\n[modules.LG]\ndns = false\n`;
  const configs = [
    { name: "fleet off", toml: base },
    { name: "fleet on, Redis live (TCP loopback), bans only", toml: `${base}[fleet]\nurl = "${redis.url}"\nnode = "hot"\n`, live: true },
    { name: "fleet on, Redis live (TCP loopback), shareAffairs", toml: `${base}[fleet]\nurl = "${redis.url}"\nnode = "hot"\nshareAffairs = true\n`, live: true },
    { name: "fleet on, Redis unreachable (a loopback port nothing listens on), shareAffairs", toml: `${base}[fleet]\nurl = "redis://127.0.0.1:${dead}"\nnode = "hot"\nshareAffairs = true\n` },
  ];
  const results = configs.map(() => [] as ProcessRun[]);
  const notes = configs.map(() => "");
  for (let r = 0; r < o.hotRuns; r++) {
    for (const [c, config] of configs.entries()) {
      if (config.live) redis.cli("FLUSHALL", "SYNC");
      const root = makeRoot(`hot-${c}`, config.toml);
      const run = await runTimed([WATCHER, "--root", root, "module", "LG", "--stdin"], { cwd: REPO, stdinFile: corpus });
      rmSync(root, { recursive: true, force: true });
      const stopped = /stopped: (\d+) lines, \d+ matched, (\d+) affairs, (\d+) bans/.exec(run.stderr);
      if (run.code !== 0 || !stopped || Number(stopped[1]) !== o.lines) {
        throw new Error(`module LG --stdin (${config.name}) failed (exit ${run.code}): ${run.stderr.trim().split("\n").slice(-5).join("\n")}`);
      }
      results[c]!.push(run);
      let note = `${stopped[2]} affairs, ${stopped[3]} bans`;
      if (config.live) {
        const k = fleetKeys("{watcher}");
        const affairKeys = redis.cli("KEYS", k.affairs("LG", "*")).split("\n").filter(Boolean).length;
        note += `; in Redis: ${redis.cli("XLEN", k.stream).trim()} decisions, ${affairKeys} affair counters`;
      }
      notes[c] = note;
      progress(`hot path, ${config.name}, run ${r + 1}: ${run.wall.toFixed(2)} s, ${rate(o.lines / run.wall)} lines/s (${note})`);
    }
  }
  redis.cli("FLUSHALL", "SYNC");
  const offWall = median(results[0]!.map((x) => x.wall));
  for (const [c, config] of configs.entries()) {
    const runs = results[c]!;
    const wall = median(runs.map((x) => x.wall));
    rows.push({
      figure: `hot path: \`module LG --stdin\` < ${o.lines.toLocaleString("en")} lines, ${config.name}: lines/s (wall)`,
      value: `${rate(o.lines / wall)} lines/s`,
      detail:
        `${range(runs.map((x) => o.lines / x.wall), (x) => rate(x))}; ${c === 0 ? "baseline" : `${(wall / offWall).toFixed(3)}× fleet-off's time (median of the ${runs.length} rounds' own ratios: ${median(runs.map((x, r) => x.wall / results[0]![r]!.wall)).toFixed(3)}×)`}; ` +
        `CPU ${median(runs.map((x) => x.cpu)).toFixed(2)} s, peak RSS ${median(runs.map((x) => x.rssMiB)).toFixed(0)} MiB; ${notes[c]}`,
    });
  }
}

/* ---- main ------------------------------------------------------------------------------- */

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new UsageError("bench/fleet needs root (a network namespace, nftables)");
  for (const tool of ["redis-server", "redis-cli", "nft", "ip"]) {
    if (Bun.spawnSync(["sh", "-c", `command -v ${tool}`]).exitCode !== 0) throw new Error(`${tool} is not installed`);
  }
  if (!existsSync(WATCHER)) {
    progress("building dist/watcher");
    sh([join(REPO, "node_modules", ".bin", "bun"), "run", "build"]);
  }
  const started = performance.now();
  const rows: Row[] = [];
  const redis = await startRedis();
  const version = /redis_version:(\S+)/.exec(redis.cli("INFO", "server"))?.[1] ?? "?";
  if (o.only.has("throughput")) await throughputAndMemory(o, redis, rows);
  if (o.only.has("latency")) await latencyAndApply(o, redis, rows);
  if (o.only.has("hot")) await hotPath(o, redis, rows);
  console.log(`Fleet, ${new Date().toISOString().slice(0, 16).replace("T", " ")} (machine clock), redis-server ${version} (AOF), dist/watcher, Bun ${Bun.version}:\n`);
  console.log("| figure | median | runs, notes |");
  console.log("|---|---|---|");
  for (const r of rows) console.log(`| ${r.figure} | ${r.value} | ${r.detail} |`);
  progress(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return 0;
}

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    progress(`${signal}: cleaning up`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

let code = 1;
try {
  code = await main();
} catch (e) {
  if (interrupted) {
    code = 130; /* what failed was cut off by the cleanup */
  } else if (e instanceof UsageError) {
    console.error(`bench/fleet: ${e.message}\n${USAGE}`);
    code = 2;
  } else {
    console.error(`bench/fleet: ${(e as Error).stack ?? e}`);
    code = 1;
  }
} finally {
  await cleanupAll();
}
process.exit(code);
