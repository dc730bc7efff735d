// Whole-run benchmark of `report` and `stat` on a module database of 1M events.
//
//   node_modules/.bin/bun bench/report.ts [--events 1000000] [--runs 3] [--keep]
//
// The database is filled with direct SQL inserts (the pipeline's own speed is bench/run's
// business): WB events over the last 30 days, 20 vhosts, 10,000 addresses, a few rules and
// host classes, 3% of them bans. Each command runs --runs times as its own process; the median
// wall time and the peak RSS (bench/measure.ts) are printed as a markdown table. The
// dry-run firewall is used: nothing touches the kernel.
import { Database } from "bun:sqlite";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ModuleStore } from "../src/store/module-db";
import { type ProcessRun, runTimed } from "./measure";

const ROOT = dirname(import.meta.dir);
const BUN = join(ROOT, "node_modules/.bin/bun");
const DAY = 86400;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}
const EVENTS = arg("--events", 1_000_000);
const RUNS = arg("--runs", 3);
const KEEP = process.argv.includes("--keep");

/** Deterministic (mulberry32), so every run measures the same database. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fill(root: string, now: number): void {
  const path = join(root, "var", "db", "WB.db");
  new ModuleStore(path).close(); /* the real schema, migrations applied */
  const db = new Database(path, { strict: true });
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;");
  const random = prng(1);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const v4 = ["192.0.2", "198.51.100", "203.0.113"].flatMap((net) => Array.from({ length: 256 }, (_, i) => `${net}.${i}`));
  const addresses = [...v4, ...Array.from({ length: 10_000 - v4.length }, (_, i) => `2001:db8::${(i + 1).toString(16)}`)];
  const vhosts = Array.from({ length: 20 }, (_, i) => `site${i}.example.com`);
  const rules = ["scanner-probe", "bad-bot", "login-flood", "apache-auth-failed", "nginx-auth-failed", "apache-denied", "nginx-limited"];
  const classes = [null, "NXDOMAIN", "FAKEHOST", "TRUEHOST", "UNKNOWN"];
  const lastSeen = new Map<string, number>();
  const insert = db.query("INSERT INTO events (time, address, rule, kind, value, class, user, vhost) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)");
  db.transaction(() => {
    for (let i = 0; i < EVENTS; i++) {
      /* time grows with i: the table is in time order, as the pipeline writes it */
      const time = now - 30 * DAY + Math.floor((i / EVENTS) * 30 * DAY);
      /* a skewed pool: a few addresses do most of the attacking */
      const address = addresses[Math.floor(random() ** 3 * addresses.length)]!;
      const ban = random() < 0.03;
      insert.run(time, address, pick(rules), ban ? "ban" : "affair", ban ? 3600 : 1, pick(classes), pick(vhosts));
      lastSeen.set(address, time);
    }
    const host = db.query("INSERT INTO hosts (address, class, affairs, recent, first_seen, last_seen, ban_count, banned_until, last_rule, vhost) VALUES (?, NULL, 1, '', ?, ?, 1, ?, 'scanner-probe', ?)");
    for (const [address, last] of lastSeen) host.run(address, now - 30 * DAY, last, last + 3600, pick(vhosts));
  })();
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

/** dist/watcher once src/cli.ts registers the commands; until then a runner of the command modules. */
function watcherCommand(dir: string): string[] {
  const binary = join(ROOT, "dist", "watcher");
  const help = Bun.spawnSync([binary, "--help"], { stdout: "pipe", stderr: "ignore" });
  if (help.exitCode === 0 && /^ +watcher stat /m.test(help.stdout.toString())) return [binary];
  const runner = join(dir, "runner.ts");
  writeFileSync(
    runner,
    `import yargs from "yargs";
import { reportCommand } from "${ROOT}/commands/report";
import { statCommand } from "${ROOT}/commands/stat";
await yargs(process.argv.slice(2)).option("root", { type: "string", global: true }).command(reportCommand).command(statCommand).strict().parseAsync();
`,
  );
  return [BUN, runner];
}

async function timed(cmd: string[]): Promise<ProcessRun> {
  const run = await runTimed(cmd);
  if (run.code !== 0) throw new Error(`${cmd.join(" ")} exited ${run.code}: ${run.stderr.trim()}`);
  return run;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = mkdtempSync(join(tmpdir(), "watcher-bench-report-"));
try {
  mkdirSync(join(dir, "etc"));
  writeFileSync(join(dir, "etc", "watcher.toml"), 'firewall = "dryrun"\n[modules.LG]\nenabled = false\ndns = false\n[modules.WB]\nenabled = true\ndns = false\n');
  const now = Math.floor(Date.now() / 1000);
  const t0 = performance.now();
  fill(dir, now);
  process.stderr.write(`filled ${EVENTS} events in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const watcher = [...watcherCommand(dir), "--root", dir];
  const cases: [string, string[]][] = [
    ["report (24 h)", ["report"]],
    ["report --since 30d", ["report", "--since", "30d"]],
    ["report --json --since 30d", ["report", "--json", "--since", "30d"]],
    ["report --vhost site3.example.com --since 30d", ["report", "--vhost", "site3.example.com", "--since", "30d"]],
    ["report --out DIR --per-vhost --since 30d (20 vhosts)", ["report", "--out", join(dir, "out"), "--per-vhost", "--since", "30d"]],
    ["stat (by day, all)", ["stat", "--out", join(dir, "day.csv")]],
    ["stat --by hour (all)", ["stat", "--by", "hour", "--out", join(dir, "hour.csv")]],
  ];
  console.log(`\n${EVENTS.toLocaleString("en")} events, ${watcher[0] === BUN ? "bun + command modules (not yet in dist/watcher)" : "dist/watcher"}, median of ${RUNS} runs\n`);
  console.log("| command | wall s (median) | peak RSS MiB |\n|---|---:|---:|");
  for (const [label, args] of cases) {
    const runs: ProcessRun[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(await timed([...watcher, ...args]));
    console.log(`| ${label} | ${median(runs.map((r) => r.wall)).toFixed(2)} | ${Math.max(...runs.map((r) => r.rssMiB)).toFixed(0)} |`);
  }
} finally {
  if (KEEP) process.stderr.write(`kept ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
