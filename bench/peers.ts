// The speed rows of issue 21, each against its peer in the same run: SSHGuard's C parser
// (`sshg-parser`) and watcher take turns on the same corpus, round after round, so that the
// machine's load moves both alike; each ratio is the median of the rounds' own ratios. See
// bench/README.md ("Against SSHGuard").
//
//   node_modules/.bin/bun bench/peers.ts [--runs 5] [--lines 1000000] [--corpus FILE]... [--before CMD] [--rss-lines 1000000]
//
// Corpora: bench/gen-corpus.ts's --lines lines (seed 1; --lines 0 for none), then each --corpus
// FILE (the issue's attack-heavy one: /work/shared/hooks/gen_auth.py 1000000); --rss-lines 0
// leaves out the memory row. WATCHER_CMD (split on spaces) chooses the watcher, else
// dist/watcher; --before CMD adds a second watcher (an older build) that takes its turn in
// every round, for before/after figures. Rows per corpus: the rule
// engine (`rules test LG --json`, the JSON's own seconds), the same command's whole process,
// and `inject LG --direct --json` (dry-run firewall, a fresh root each run); the whole processes
// also by their CPU seconds (user+sys, against sshg-parser's), steadier than wall time under load. Then the peak RSS
// of `module LG --stdin` (in the environment the master gives its modules) fed one failed login
// from each of --rss-lines distinct addresses.
// Watcher runs inside `unshare --net` when that works (no packet can leave).

import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { generate } from "./gen-corpus";
import { type ProcessRun, runTimed } from "./measure";
import { moduleEnvironment } from "../src/master/master";

const ROOT = dirname(import.meta.dir);
const SSHG_PARSER = ["/usr/libexec/sshguard/sshg-parser", "/usr/lib/sshguard/sshg-parser", "/usr/local/libexec/sshg-parser"];
const USAGE = "usage: bun bench/peers.ts [--runs 5] [--lines 1000000] [--corpus FILE]... [--before CMD] [--rss-lines 1000000]";

interface Opts {
  runs: number;
  /** lines of the generated corpus; 0: none */
  lines: number;
  corpora: string[];
  before: string[] | null;
  rssLines: number;
}

function parseArgs(argv: string[]): Opts {
  const o: Opts = { runs: 5, lines: 1_000_000, corpora: [], before: null, rssLines: 1_000_000 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[++i];
    if (v === undefined) throw new Error(`${k} needs a value\n${USAGE}`);
    if (k === "--corpus") {
      if (!existsSync(v)) throw new Error(`--corpus ${v}: no such file`);
      o.corpora.push(v);
    } else if (k === "--before") o.before = v.split(/\s+/);
    else if (k === "--lines" && /^\d+$/.test(v)) o.lines = Number(v);
    else if (k === "--rss-lines" && /^\d+$/.test(v)) o.rssLines = Number(v);
    else if (k === "--runs" && /^\d+$/.test(v) && Number(v) > 0) o.runs = Number(v); else throw new Error(`bad argument ${JSON.stringify(k)} ${JSON.stringify(v)}\n${USAGE}`);
  }
  return o;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const rate = (v: number): string => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : `${(v / 1e3).toFixed(0)}k`);

/** Lines in a file: the rates' numerator. */
async function lineCount(file: string): Promise<number> {
  const r = await runTimed(["wc", "-l", file]);
  return Number.parseInt(r.stdout, 10);
}

function lastJson(out: string): Record<string, unknown> {
  const text = out.trim();
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return JSON.parse(text.slice(text.lastIndexOf("\n") + 1)) as Record<string, unknown>;
  }
}

/** A fresh root whose firewall is the dry-run one. */
function freshRoot(tmp: string): string {
  const root = mkdtempSync(join(tmp, "root-"));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc/watcher.toml"), `# written by bench/peers.ts\nfirewall = "dryrun"\n\n[modules.LG]\ndns = false\n`);
  return root;
}

async function checked(cmd: string[], stdinFile?: string, env?: Record<string, string | undefined>): Promise<ProcessRun> {
  const r = await runTimed(cmd, { cwd: ROOT, stdinFile, env });
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} exited ${r.code}: ${r.stderr.trim().split("\n").slice(-3).join(" / ")}`);
  return r;
}

/** One failed login from each of n distinct IPv6 addresses, each in its own /64 of 2001:db8::/32. */
function distinctAttackers(file: string, n: number): void {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = i % 60;
    const m = Math.floor(i / 60) % 60;
    const time = `Nov 24 ${String(Math.floor(i / 3600) % 24).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
    out.push(`${time} srv sshd[${1000 + (i % 30000)}]: Failed password for root from 2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1 port ${1024 + (i % 60000)} ssh2`);
  }
  writeFileSync(file, `${out.join("\n")}\n`);
}

interface Watcher {
  label: string;
  cmd: string[];
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const tmp = mkdtempSync(join(tmpdir(), "watcher-peers-"));
  try {
    const sshg = SSHG_PARSER.find((p) => existsSync(p)) ?? Bun.which("sshg-parser");
    if (!sshg) throw new Error("sshg-parser not found: apt-get install -y sshguard");
    const env = process.env.WATCHER_CMD?.trim();
    const after: Watcher = { label: "watcher", cmd: env ? env.split(/\s+/) : [join(ROOT, "dist/watcher")] };
    if (!env && !existsSync(after.cmd[0]!)) throw new Error("dist/watcher missing: node_modules/.bin/bun run build");
    const watchers = o.before ? [{ label: "before", cmd: o.before }, { ...after, label: "after" }] : [after];
    const netns = (await runTimed(["unshare", "--net", "true"]).catch(() => undefined))?.code === 0 ? ["unshare", "--net"] : [];
    if (o.lines > 0) {
      const file = join(tmp, "gen-corpus.log");
      generate({ lines: o.lines, seed: 1, out: file, truth: join(tmp, "truth.json") });
      o.corpora.unshift(file);
    }
    const load = () => (require("node:os") as typeof import("node:os")).loadavg()[0]!.toFixed(1);
    const loads: string[] = [load()];
    console.log(`## watcher against sshg-parser, ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC\n`);
    console.log(`- machine: ${navigator.hardwareConcurrency} cores, Bun ${Bun.version}; ${o.runs} rounds, each tool in turn; watcher ${netns.length ? "in an empty network namespace" : "NOT isolated"}`);
    console.log(`- watchers: ${watchers.map((w) => `${w.label} = ${w.cmd.join(" ")}`).join("; ")}\n`);
    console.log("| corpus | figure | watcher | median | rounds (min – max) | × sshg-parser (median of rounds) |");
    console.log("|---|---|---|---|---|---|");
    for (const corpus of o.corpora) {
      const lines = await lineCount(corpus);
      const name = `${corpus.split("/").at(-1)} (${(lines / 1e6).toFixed(2)}M lines, ${(statSync(corpus).size / 1048576).toFixed(0)} MiB)`;
      const sshgRate: number[] = [];
      const sshgCpuRate: number[] = [];
      const rows = new Map<string, number[]>();
      const ratios = new Map<string, number[]>();
      const note = (key: string, value: number, peer: number) => {
        (rows.get(key) ?? rows.set(key, []).get(key)!).push(value);
        (ratios.get(key) ?? ratios.set(key, []).get(key)!).push(value / peer);
      };
      for (let round = 0; round < o.runs; round++) {
        const peerRun = await checked([sshg], corpus);
        const peer = lines / peerRun.wall;
        /* CPU seconds (user+sys) too: on a machine shared with other work, wall time measures the scheduler as much as the tool */
        const peerCpu = lines / peerRun.cpu;
        sshgRate.push(peer);
        sshgCpuRate.push(peerCpu);
        for (const w of watchers) {
          const rt = await checked([...netns, ...w.cmd, "rules", "test", "LG", corpus, "--json"]);
          const j = lastJson(rt.stdout);
          note(`rule engine (JSON's seconds)\t${w.label}`, lines / (j.seconds as number), peer);
          note(`rules test --json, whole process\t${w.label}`, lines / rt.wall, peer);
          note(`rules test --json, whole process, CPU\t${w.label}`, lines / rt.cpu, peerCpu);
          const root = freshRoot(tmp);
          const inj = await checked([...netns, ...w.cmd, "--root", root, "inject", "LG", "--direct", "--json"], corpus);
          note(`inject --direct, dry-run, whole process\t${w.label}`, lines / inj.wall, peer);
          note(`inject --direct, dry-run, whole process, CPU\t${w.label}`, lines / inj.cpu, peerCpu);
          rmSync(root, { recursive: true, force: true });
        }
        loads.push(load());
        process.stderr.write(`peers: ${name} round ${round + 1}/${o.runs}\n`);
      }
      console.log(`| ${name} | sshg-parser | — | ${rate(median(sshgRate))} lines/s | ${rate(Math.min(...sshgRate))} – ${rate(Math.max(...sshgRate))} | 1 |`);
      console.log(`| ${name} | sshg-parser, CPU | — | ${rate(median(sshgCpuRate))} lines/s | ${rate(Math.min(...sshgCpuRate))} – ${rate(Math.max(...sshgCpuRate))} | 1 |`);
      for (const [key, values] of rows) {
        const [figure, label] = key.split("\t");
        const r = ratios.get(key)!;
        console.log(`| ${name} | ${figure} | ${label} | ${rate(median(values))} lines/s | ${rate(Math.min(...values))} – ${rate(Math.max(...values))} | ${median(r).toFixed(2)}× (${Math.min(...r).toFixed(2)} – ${Math.max(...r).toFixed(2)}) |`);
      }
    }
    /* memory bounded by caches, not by the number of hosts: one line from each of many addresses */
    const flood = join(tmp, "distinct.log");
    if (o.rssLines > 0) distinctAttackers(flood, o.rssLines);
    /* peak RSS hardly moves with load: one run each, in the environment the master gives its modules (FTL off) */
    for (const w of o.rssLines > 0 ? watchers : []) {
      const root = freshRoot(tmp);
      const r = await checked([...netns, ...w.cmd, "--root", root, "module", "LG", "--stdin"], flood, moduleEnvironment());
      console.log(`| ${o.rssLines} distinct attackers | module LG --stdin: peak RSS | ${w.label} | ${r.rssMiB.toFixed(0)} MiB | one run, ${r.wall.toFixed(2)} s | — |`);
      rmSync(root, { recursive: true, force: true });
    }
    console.log(`\n- load average (1 min) before and after each round: ${loads.join(", ")}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (e) {
  console.error(`peers: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
