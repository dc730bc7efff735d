// Whole-run benchmarks of the LG (sshd) module; see bench/README.md. Started by bench/run.
//
//   bench/run [--lines 1000000] [--runs 5] [--seed 1] [--keep]
//
// Generates one corpus (bench/gen-corpus.ts), then times whole processes, each --runs times,
// and prints a markdown table of medians, measured by bench/measure.ts (wall, CPU, and peak RSS
// through GNU time). Watcher commands run inside `unshare --net` (a network namespace with
// nothing in it) when that works, so that no benchmark run can send a packet or touch the
// host's firewall; there, inject is measured with the nftables backend too.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { generate, type TruthFile } from "./gen-corpus";
import { type ProcessRun, runTimed } from "./measure";

const ROOT = dirname(import.meta.dir);
const BUN = join(ROOT, "node_modules/.bin/bun");

interface Opts {
  lines: number;
  runs: number;
  seed: number;
  keep: boolean;
}

function parseArgs(argv: string[]): Opts {
  const usage = "usage: bench/run [--lines 1000000] [--runs 5] [--seed 1] [--keep]";
  const o: Opts = { lines: 1_000_000, runs: 5, seed: 1, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === "--keep") {
      o.keep = true;
      continue;
    }
    if (k === "-h" || k === "--help") {
      console.log(usage);
      process.exit(0);
    }
    const v = argv[++i];
    if (!["--lines", "--runs", "--seed"].includes(k) || v === undefined || !/^\d+$/.test(v)) {
      throw new Error(`bad argument ${JSON.stringify(k)}${v === undefined ? "" : ` ${JSON.stringify(v)}`}\n${usage}`);
    }
    o[k.slice(2) as "lines" | "runs" | "seed"] = Number(v);
  }
  if (o.lines < 1 || o.runs < 1) throw new Error(`--lines and --runs must be at least 1\n${usage}`);
  return o;
}

// ---------------------------------------------------------------------------------------------
// One whole process, timed (bench/measure.ts)

const timed = (cmd: string[], stdinFile?: string): Promise<ProcessRun> => runTimed(cmd, { cwd: ROOT, stdinFile });

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function lastJson(out: string): Record<string, unknown> | undefined {
  const tryParse = (s: string): Record<string, unknown> | undefined => {
    try {
      const v: unknown = JSON.parse(s);
      return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  const whole = tryParse(out.trim());
  if (whole) return whole;
  const lines = out.trim().split("\n");
  return tryParse(lines[lines.length - 1] ?? "");
}

const num = (o: Record<string, unknown>, k: string): number | undefined =>
  typeof o[k] === "number" && Number.isFinite(o[k]) ? (o[k] as number) : undefined;

function tail(s: string, n = 6): string {
  if (s.trim() === "") return "";
  const l = s.trim().split("\n");
  return l.slice(-n).map((x) => `    ${x}`).join("\n");
}

// ---------------------------------------------------------------------------------------------
// Which watcher to run

interface Watcher {
  cmd: string[];
  how: string;
}

function newestMtime(dir: string): number {
  if (!existsSync(dir)) return 0;
  let t = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) t = Math.max(t, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return t;
}

async function findWatcher(): Promise<Watcher | string> {
  const env = process.env.WATCHER_CMD?.trim();
  if (env) return { cmd: env.split(/\s+/), how: `WATCHER_CMD=${env}` };
  const bin = join(ROOT, "dist/watcher");
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts?: Record<string, string> };
  if (!existsSync(bin) && pkg.scripts?.build !== undefined) {
    console.error("bench: dist/watcher missing; running npm run build ...");
    const b = await timed(["npm", "run", "build"]);
    if (b.code !== 0) console.error(`bench: npm run build failed (exit ${b.code}):\n${tail(b.stdout + b.stderr)}`);
  }
  if (existsSync(bin)) {
    const built = statSync(bin).mtimeMs;
    const src = Math.max(...["src", "commands", "rules"].map((d) => newestMtime(join(ROOT, d))));
    const stale = src > built ? " (WARNING: older than src/, commands/ or rules/; delete it to rebuild)" : "";
    return { cmd: [bin], how: `dist/watcher${stale}` };
  }
  if (existsSync(join(ROOT, "src/cli.ts"))) {
    return { cmd: [BUN, "src/cli.ts"], how: "node_modules/.bin/bun src/cli.ts (no dist/watcher, no build script)" };
  }
  return "no watcher to run: dist/watcher is missing, package.json has no build script, and src/cli.ts does not exist (set WATCHER_CMD to choose one)";
}

// ---------------------------------------------------------------------------------------------
// Measurements

interface Row {
  metric: string;
  values: number[]; // one per run; empty when missing
  unit: "s" | "lines/s" | "MiB";
  ratio?: (m: number) => string;
  note?: string; // shown instead of figures when values is empty
}

function fmt(v: number, unit: Row["unit"]): string {
  if (!Number.isFinite(v)) return "n/a";
  if (unit === "lines/s") return v >= 1e6 ? `${(v / 1e6).toFixed(2)}M lines/s` : `${(v / 1e3).toFixed(0)}k lines/s`;
  if (unit === "MiB") return `${v.toFixed(0)} MiB`;
  return v < 1 ? `${(v * 1000).toFixed(0)} ms` : `${v.toFixed(2)} s`;
}

function table(rows: Row[]): string {
  const out = ["| metric | median | runs | ratio vs baseline |", "|---|---|---|---|"];
  for (const r of rows) {
    if (r.values.length === 0) {
      out.push(`| ${r.metric} | ${r.note ?? "n/a"} | 0 | — |`);
      continue;
    }
    const m = median(r.values);
    const lo = Math.min(...r.values);
    const hi = Math.max(...r.values);
    const spread = r.values.length > 1 ? ` (${fmt(lo, r.unit)} – ${fmt(hi, r.unit)})` : "";
    out.push(`| ${r.metric} | ${fmt(m, r.unit)} | ${r.values.length}${spread} | ${r.ratio ? r.ratio(m) : "—"} |`);
  }
  return out.join("\n");
}

/** Runs cmd `runs` times; stops early, with a reason, at the first failure. */
async function series(
  label: string,
  runs: number,
  make: (i: number) => { cmd: string[]; stdin?: string },
  check: (r: ProcessRun) => string | undefined,
): Promise<{ runs: ProcessRun[]; error?: string }> {
  const done: ProcessRun[] = [];
  for (let i = 0; i < runs; i++) {
    const { cmd, stdin } = make(i);
    const r = await timed(cmd, stdin);
    const bad = r.code !== 0 ? `exit code ${r.code}` : check(r);
    if (bad !== undefined) {
      return {
        runs: done,
        error: `${label}: ${bad}\n  command: ${cmd.join(" ")}${stdin ? ` < ${stdin}` : ""}\n  stderr (tail):\n${tail(r.stderr) || "    (empty)"}\n  stdout (tail):\n${tail(r.stdout.slice(-2000)) || "    (empty)"}`,
      };
    }
    done.push(r);
    process.stderr.write(`bench: ${label} run ${i + 1}/${runs}: ${r.wall.toFixed(3)} s\n`);
  }
  return { runs: done };
}

function which(name: string, extra: string[] = []): string | undefined {
  const found = Bun.which(name);
  if (found) return found;
  return extra.find((p) => existsSync(p));
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const tmp = mkdtempSync(join(tmpdir(), "watcher-bench-"));
  const corpus = join(tmp, "corpus.log");
  const truthFile = join(tmp, "truth.json");
  const problems: string[] = [];
  try {
    const g0 = performance.now();
    const truth: TruthFile = generate({ lines: o.lines, seed: o.seed, out: corpus, truth: truthFile });
    const genSecs = (performance.now() - g0) / 1000;
    const attempts = Object.values(truth.failed).reduce((a, b) => a + b, 0);
    const attackers = new Set(Object.keys(truth.seen));
    const bytes = statSync(corpus).size;

    // Never let a benchmark send a packet (DNS classification, fleet, blocklists): run watcher
    // in an empty network namespace when we may.
    const netns = (await timed(["unshare", "--net", "true"]).catch(() => undefined))?.code === 0 ? ["unshare", "--net"] : [];
    const watcher = await findWatcher();

    const rows: Row[] = [];
    const rowsOf = (prefix: string, rs: ProcessRun[], perLine: boolean, base?: { wall: number; rate: number }): void => {
      if (perLine) {
        rows.push({
          metric: `${prefix}: lines/s (wall)`, unit: "lines/s", values: rs.map((r) => o.lines / r.wall),
          ratio: base ? (m) => `${(m / base.rate).toFixed(3)}× grep's rate` : undefined,
        });
      }
      rows.push({
        metric: `${prefix}: wall time`, unit: "s", values: rs.map((r) => r.wall),
        ratio: base ? (m) => `${(m / base.wall).toFixed(1)}× grep's time` : undefined,
      });
      rows.push({ metric: `${prefix}: CPU user+sys`, unit: "s", values: rs.map((r) => r.cpu) });
      rows.push({ metric: `${prefix}: peak RSS`, unit: "MiB", values: rs.map((r) => r.rssMiB) });
    };

    // --- baselines ---------------------------------------------------------------------------
    const wc = await series("wc -l", o.runs, () => ({ cmd: ["wc", "-l", corpus] }), (r) =>
      Number.parseInt(r.stdout, 10) === o.lines ? undefined : `counted ${r.stdout.trim()}, expected ${o.lines}`);
    const grep = await series("grep -c", o.runs, () => ({ cmd: ["grep", "-c", "Failed password", corpus] }), () => undefined);
    for (const e of [wc.error, grep.error]) if (e) problems.push(e);
    const grepWall = grep.runs.length ? median(grep.runs.map((r) => r.wall)) : Number.NaN;
    const base = Number.isFinite(grepWall) ? { wall: grepWall, rate: o.lines / grepWall } : undefined;
    rows.push({
      metric: "baseline `wc -l`: wall time", unit: "s", values: wc.runs.map((r) => r.wall),
      ratio: base ? (m) => `${(m / base.wall).toFixed(2)}× grep's time` : undefined,
    });
    rows.push({ metric: "baseline `grep -c 'Failed password'`: wall time", unit: "s", values: grep.runs.map((r) => r.wall), ratio: () => "baseline" });
    rows.push({ metric: "baseline `grep -c 'Failed password'`: lines/s", unit: "lines/s", values: grep.runs.map((r) => o.lines / r.wall), ratio: () => "baseline" });

    // --- watcher rules test -----------------------------------------------------------------
    let rulesOut: Record<string, unknown> | undefined;
    let injectOut: Record<string, unknown> | undefined;
    if (typeof watcher === "string") {
      problems.push(watcher);
      for (const m of ["rules test LG", "inject LG --direct"]) rows.push({ metric: m, unit: "s", values: [], note: "not run: no watcher" });
    } else {
      const rules = await series(
        "rules test LG",
        o.runs,
        () => ({ cmd: [...netns, ...watcher.cmd, "rules", "test", "LG", corpus, "--json"] }),
        (r) => {
          const j = lastJson(r.stdout);
          if (!j) return "stdout is not one JSON object";
          if (num(j, "lines") === undefined || num(j, "seconds") === undefined) return "JSON lacks numeric `lines` / `seconds`";
          if (num(j, "lines") !== o.lines) return `JSON says lines=${String(j.lines)}, the corpus has ${o.lines}`;
          return undefined;
        },
      );
      if (rules.error) problems.push(rules.error);
      if (rules.runs.length) {
        const js = rules.runs.map((r) => lastJson(r.stdout)!);
        rulesOut = js[0];
        rows.push({
          metric: "rules test LG: rule engine lines/s (lines ÷ reported seconds)", unit: "lines/s",
          values: js.map((j) => num(j, "lines")! / num(j, "seconds")!),
          ratio: base ? (m) => `${(m / base.rate).toFixed(2)}× grep's rate` : undefined,
        });
        rowsOf("rules test LG (whole process)", rules.runs, false, base);
      } else {
        rows.push({ metric: "rules test LG", unit: "s", values: [], note: "failed, see below" });
      }

      // --- watcher inject --direct: the full pipeline -------------------------------------
      // Each run gets a fresh root whose etc/watcher.toml names the firewall backend: dryrun
      // always; nftables too when the runs are isolated in an empty network namespace, where a
      // fresh, empty kernel ruleset is ours to fill (never the host's).
      const backends = netns.length && Bun.which("nft") ? (["dryrun", "nftables"] as const) : (["dryrun"] as const);
      if (backends.length === 1) rows.push({ metric: "inject LG --direct, nftables", unit: "s", values: [], note: "not run: needs root, unshare --net and nft" });
      for (const fw of backends) {
        const label = `inject LG --direct (${fw === "dryrun" ? "dry-run firewall" : "nftables, empty netns"})`;
        const roots: string[] = [];
        const inject = await series(
          label,
          o.runs,
          (i) => {
            const root = join(tmp, `root-${fw}-${i}`);
            mkdirSync(join(root, "etc"), { recursive: true });
            writeFileSync(join(root, "etc/watcher.toml"), `# written by bench/run\nfirewall = "${fw}"\n`);
            roots.push(root);
            return { cmd: [...netns, ...watcher.cmd, "--root", root, "inject", "LG", "--direct", "--json"], stdin: corpus };
          },
          (r) => {
            const j = lastJson(r.stdout);
            if (!j) return "stdout is not one JSON object";
            if (num(j, "lines") === undefined || !Array.isArray(j.bans)) return "JSON lacks numeric `lines` or array `bans`";
            if (num(j, "lines") !== o.lines) return `JSON says lines=${String(j.lines)}, the corpus has ${o.lines}`;
            return undefined;
          },
        );
        if (inject.error) problems.push(inject.error);
        if (inject.runs.length) {
          if (fw === "dryrun") injectOut = lastJson(inject.runs[0]!.stdout);
          rowsOf(`${label}, whole process`, inject.runs, true, base);
          const dbBytes = roots.map((r) => newestSize(join(r, "var/db")));
          if (fw === "dryrun" && dbBytes.some((b) => b > 0)) {
            rows.push({ metric: "inject LG --direct: size of var/db/ after the run", unit: "MiB", values: dbBytes.map((b) => b / 1048576) });
          }
        } else {
          rows.push({ metric: label, unit: "s", values: [], note: "failed, see below" });
        }
      }
    }

    // --- other tools, where installed (never installed by this script) ------------------------
    const f2b = which("fail2ban-regex");
    if (f2b) {
      const s = await series("fail2ban-regex", o.runs, () => ({ cmd: [f2b, corpus, "sshd"] }), () => undefined);
      if (s.error) problems.push(s.error);
      rowsOf("fail2ban-regex CORPUS sshd", s.runs, true, base);
    } else {
      rows.push({ metric: "fail2ban-regex CORPUS sshd", unit: "s", values: [], note: "not installed" });
    }
    const sshg = which("sshg-parser", ["/usr/libexec/sshguard/sshg-parser", "/usr/lib/sshguard/sshg-parser", "/usr/local/libexec/sshg-parser"]);
    if (sshg) {
      const s = await series("sshg-parser", o.runs, () => ({ cmd: [sshg], stdin: corpus }), () => undefined);
      if (s.error) problems.push(s.error);
      rowsOf("sshg-parser < CORPUS", s.runs, true, base);
    } else {
      rows.push({ metric: "sshg-parser < CORPUS", unit: "s", values: [], note: "not installed" });
    }

    // --- report ---------------------------------------------------------------------------------
    const cores = navigator.hardwareConcurrency;
    console.log(`## watcher LG benchmark, ${new Date().toISOString().slice(0, 10)}\n`);
    console.log(`- machine: ${cores} cores, Bun ${Bun.version}, ${process.platform}`);
    console.log(`- corpus: ${o.lines} lines (${(bytes / 1048576).toFixed(1)} MiB), seed ${o.seed}, generated in ${genSecs.toFixed(2)} s; ` +
      `${truth.attackLines} sshd attack lines, ${attempts} failed password attempts from ${Object.keys(truth.failed).length} addresses, ` +
      `${attackers.size} attacker addresses, ${truth.decoys.length} decoy addresses in user names`);
    console.log(`- watcher: ${typeof watcher === "string" ? "missing" : watcher.how}`);
    console.log(`- runs: ${o.runs} per figure, median shown, (min – max) beside; network: ${netns.length ? "watcher ran in an empty network namespace (unshare --net)" : "NOT isolated (unshare --net unavailable)"}\n`);
    console.log(table(rows));
    const agree = agreement(truth, await defaultLimits(), attackers, rulesOut, injectOut);
    if (agree.length) console.log(`\n### Agreement with the corpus's ground truth\n\n${agree.join("\n")}`);
    if (problems.length) {
      console.log(`\n### Not measured\n`);
      for (const p of problems) console.log(`- ${p.replace(/\n/g, "\n  ")}`);
    }
    return problems.length ? 1 : 0;
  } finally {
    if (o.keep) console.error(`bench: kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

function newestSize(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  }
  return n;
}

/** Address in a ban or match entry, whichever shape the CLI chose. */
function addressOf(x: unknown): string | undefined {
  if (typeof x === "string") return x;
  if (typeof x !== "object" || x === null) return undefined;
  const o = x as Record<string, unknown>;
  for (const k of ["address", "host", "ip", "addr"]) if (typeof o[k] === "string") return o[k] as string;
  return undefined;
}

interface Limits {
  maxAffairs: number;
  findTime: number;
  from: string;
}

/** The LG limits of a config-less root, read from src/core/config.ts when it loads. */
async function defaultLimits(): Promise<Limits> {
  try {
    const mod = (await import(join(ROOT, "src/core/config.ts"))) as {
      parseConfig?: (file: string, text: string) => { modules: { LG: { maxAffairs: number; findTime: number } } };
    };
    const lg = mod.parseConfig?.("(defaults)", "").modules.LG;
    if (lg && typeof lg.maxAffairs === "number" && typeof lg.findTime === "number") {
      return { maxAffairs: lg.maxAffairs, findTime: lg.findTime, from: "defaults of src/core/config.ts" };
    }
  } catch {
    /* fall through */
  }
  return { maxAffairs: 5, findTime: 3600, from: "assumed defaults" };
}

/** Attackers with maxAffairs failed passwords inside some findTime window: one attempt, one affair. */
function expectedBans(truth: TruthFile, l: Limits): Set<string> {
  const out = new Set<string>();
  for (const [a, ts] of Object.entries(truth.failedAt)) {
    for (let i = 0; i + l.maxAffairs - 1 < ts.length; i++) {
      if (ts[i + l.maxAffairs - 1]! - ts[i]! < l.findTime) {
        out.add(a);
        break;
      }
    }
  }
  return out;
}

function agreement(
  truth: TruthFile,
  limits: Limits,
  attackers: Set<string>,
  rules: Record<string, unknown> | undefined,
  inject: Record<string, unknown> | undefined,
): string[] {
  const out: string[] = [];
  const decoys = new Set(truth.decoys);
  const attempts = Object.values(truth.failed).reduce((a, b) => a + b, 0);
  if (rules) {
    const perRule = rules.rules;
    if (typeof perRule === "object" && perRule !== null) {
      const hits = Object.entries(perRule as Record<string, unknown>)
        .map(([k, v]) => `${k}=${typeof v === "number" ? v : typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)}`)
        .join(", ");
      out.push(`- rules test: ${String(rules.matched)} lines matched; per rule: ${hits}`);
    }
    if (Array.isArray(rules.matches)) {
      const hosts = new Map<string, number>();
      let noHost = 0;
      let notCounted = 0;
      for (const m of rules.matches) {
        // with an action field, only what counts (or bans) must come from an attacker
        const action = typeof m === "object" && m !== null ? (m as Record<string, unknown>).action : undefined;
        if (typeof action === "string" && action !== "count" && action !== "ban") {
          notCounted++;
          continue;
        }
        const a = addressOf(m);
        if (a === undefined) noHost++;
        else hosts.set(a, (hosts.get(a) ?? 0) + 1);
      }
      const outside = [...hosts.keys()].filter((a) => !attackers.has(a));
      const decoyHits = [...hosts.keys()].filter((a) => decoys.has(a));
      const missed = Object.keys(truth.failed).filter((a) => !hosts.has(a));
      out.push(
        `- rules test matches: ${rules.matches.length} entries (${notCounted} with an action other than count/ban, left out here), ${hosts.size} distinct hosts` +
          `${noHost ? `, ${noHost} without a host` : ""}; hosts that are not attackers: ${outside.length}` +
          `${outside.length ? ` (e.g. ${outside.slice(0, 5).join(", ")})` : ""}; decoys extracted: ${decoyHits.length}; ` +
          `attackers with failed passwords but no match: ${missed.length}`,
      );
    }
  }
  if (inject) {
    const bans = Array.isArray(inject.bans) ? inject.bans.map(addressOf) : [];
    const banned = new Set(bans.filter((a): a is string => a !== undefined));
    const wrong = [...banned].filter((a) => !attackers.has(a));
    const decoyBans = [...banned].filter((a) => decoys.has(a));
    const expected = expectedBans(truth, limits);
    const missed = [...expected].filter((a) => !banned.has(a));
    out.push(
      `- inject: ${String(inject.matched)} lines matched, ${String(inject.affairs)} affairs ` +
        `(truth: ${attempts} failed password attempts, ${Object.values(truth.probes).reduce((a, b) => a + b, 0)} probe sessions, ` +
        `${Object.values(truth.publickey).reduce((a, b) => a + b, 0)} failed publickey lines; ` +
        `attack sessions by kind: ${Object.entries(truth.sessions).map(([k, n]) => `${k}=${n}`).join(", ")})`,
    );
    out.push(
      `- inject bans: ${banned.size} addresses; expected (≥${limits.maxAffairs} failed passwords within a sliding ${limits.findTime} s, ${limits.from}): ` +
        `${expected.size}, of which banned: ${[...expected].filter((a) => banned.has(a)).length}` +
        `${missed.length ? ` (not banned: ${missed.slice(0, 5).join(", ")}${missed.length > 5 ? ", ..." : ""})` : ""}; ` +
        `banned attackers not expected: ${[...banned].filter((a) => attackers.has(a) && !expected.has(a)).length}; ` +
        `banned non-attackers: ${wrong.length}${wrong.length ? ` (${wrong.slice(0, 5).join(", ")})` : ""}; decoys banned: ${decoyBans.length}` +
        `${bans.length !== banned.size ? `; ${bans.length} ban entries in all (repeat bans, or entries without an address)` : ""}`,
    );
  }
  return out;
}

try {
  process.exit(await main());
} catch (e) {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(2);
}
