/**
 * What DNS classes cost the loop, measured on whole processes: `dist/watcher module LG --stdin`
 * (dry-run firewall) reads a corpus with DNS off, and on against a resolver on loopback that
 * answers at once (every address a forward-confirmed TRUEHOST, so the work is the same as off
 * but for DNS), one that answers 200 ms late, and a dead one. Reports the CPU time (user + system)
 * and wall time of each, medians of the runs, and the ratio against DNS off: the median of each
 * round's own ratio (its range beside it), since on a shared machine the load drifts between rounds
 * more than a few per cent, and one round's runs follow each other.
 *
 * Two corpora: every line a failed login from a new address (the worst case: a lookup per
 * line), and bench/gen-corpus.ts (a day of a busy server: 300 attackers among benign lines).
 *
 * `--paired RESOLVER` (at-once, servfail, late, dead, or off for the noise floor) measures only
 * that resolver against DNS off, side by side: each round starts both processes at once (which
 * one first alternates) and takes the ratio of their CPU times; the median of those ratios, their
 * range and middle half. Run one after the other, a pair's ratio moved by ±10-30 % with the other
 * work on this 2-core machine; run together, both meet the same load, and the middle half of the
 * ratios spans a few per cent. Each process then has about one core, so the CPU figures are
 * higher than alone: read the ratio.
 *
 * Usage: node_modules/.bin/bun bench/dns.ts [--addresses 100000] [--lines 1000000] [--runs 7] [--only new|gen] [--paired at-once|servfail|late|dead|off]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsRecords, TestDnsServer } from "../test/helpers/dns-server";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const ADDRESSES = opt("addresses", 100_000);
const LINES = opt("lines", 1_000_000);
const RUNS = opt("runs", 7);
const ONLY = args.includes("--only") ? args[args.indexOf("--only") + 1] : null;
const PAIRED = args.includes("--paired") ? args[args.indexOf("--paired") + 1]! : null;
const WATCHER = process.env.WATCHER_CMD?.split(" ") ?? [join(import.meta.dir, "..", "dist", "watcher")];
const work = mkdtempSync(join(tmpdir(), "watcher-bench-dns-"));

function v6(i: number): string {
  return `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::9`;
}

/** Every line a failed login from an address never seen before. */
function newAddressCorpus(): string {
  let text = "";
  for (let i = 0; i < ADDRESSES; i++) text += `Nov 25 10:00:00 srv sshd-session[${1000 + i}]: Failed password for root from ${v6(i)} port 40000 ssh2\n`;
  return text;
}

function genCorpus(): string {
  const out = join(work, "gen.log");
  const p = Bun.spawnSync([process.execPath, join(import.meta.dir, "gen-corpus.ts"), "--lines", String(LINES), "--seed", "1", "--out", out]);
  if (p.exitCode !== 0) throw new Error(`gen-corpus: ${p.stderr.toString()}`);
  return out;
}

/** The address an ip6.arpa or in-addr.arpa name stands for, in full. */
function fromReverse(name: string): string {
  if (name.endsWith(".in-addr.arpa")) return name.split(".").slice(0, 4).reverse().join(".");
  const nibbles = name.split(".").slice(0, 32).reverse().join("");
  return nibbles.match(/.{4}/g)!.join(":");
}

/** A resolver that makes every address a TRUEHOST: PTR h6-<address>.example.net, whose AAAA is the address (h4-: A). */
function confirmingRecords(delayMs: number): DnsRecords {
  const hostName = (address: string) => (address.includes(":") ? `h6-${address.replaceAll(":", "-")}` : `h4-${address.replaceAll(".", "-")}`) + ".example.net";
  const back = (name: string) => {
    const m = /^h([46])-(.*)\.example\.net$/.exec(name);
    return m ? [m[2]!.replaceAll("-", m[1] === "6" ? ":" : ".")] : undefined;
  };
  const table = (get: (name: string) => string[] | undefined) => new Proxy({}, { get: (_t, name: string) => get(name), has: (_t, name: string) => get(name) !== undefined });
  return {
    ptr: table((name) => (name.endsWith(".arpa") ? [hostName(fromReverse(name))] : undefined)) as Record<string, string[]>,
    a: table((name) => back(name)?.filter((a) => !a.includes(":"))) as Record<string, string[]>,
    aaaa: table((name) => back(name)?.filter((a) => a.includes(":"))) as Record<string, string[]>,
    ...(delayMs > 0 ? { delayMs: new Proxy({}, { get: () => delayMs, has: () => true }) as Record<string, number> } : {}),
  };
}

interface Run {
  cpu: number;
  wall: number;
}

async function run(corpus: string, servers: string[] | null): Promise<Run> {
  const root = mkdtempSync(join(work, "root-"));
  mkdirSync(join(root, "etc"));
  const dns = servers ? `[dns]\nservers = ${JSON.stringify(servers)}\ntimeout = 1\nretries = 0\n` : "";
  writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "dryrun"\n${dns}[modules.LG]\ndns = ${servers !== null}\n`);
  const started = performance.now();
  const p = Bun.spawn([...WATCHER, "--root", root, "module", "LG", "--stdin"], { stdin: Bun.file(corpus), stdout: "ignore", stderr: "ignore" });
  const code = await p.exited;
  const wall = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`watcher module exited with ${code}`);
  const usage = p.resourceUsage()!;
  rmSync(root, { recursive: true, force: true });
  return { cpu: Number(usage.cpuTime.total) / 1e6, wall };
}

/** A resolver that answers every question SERVFAIL at once: our trouble, every address UNKNOWN. */
/* the server only asks its servfail list whether it includes a name */
const failingRecords: DnsRecords = { servfail: { includes: () => true } as unknown as string[] };

const atOnce = await new TestDnsServer(confirmingRecords(0)).start();
const slow = await new TestDnsServer(confirmingRecords(200)).start();
const failing = await new TestDnsServer(failingRecords).start();
const named: Record<string, [string, string[]]> = {
  "at-once": ["answering at once", [atOnce.address]],
  late: ["answering after 200 ms", [slow.address]],
  servfail: ["SERVFAIL at once", [failing.address]],
  dead: ["dead (no answer)", ["127.0.0.1:9"]],
};
if (PAIRED !== null && PAIRED !== "off" && !(PAIRED in named)) throw new Error(`--paired ${PAIRED}: off or one of ${Object.keys(named).join(", ")}`);
const resolvers: [string, string[] | null][] =
  PAIRED === null ? [["off", null], named["at-once"]!, named.late!, named.dead!] : [["off", null], PAIRED === "off" ? ["off again (the noise floor)", null] : named[PAIRED]!];
const corpora: [string, () => string][] = [
  [
    `${ADDRESSES.toLocaleString("en")} lines, each from a new address`,
    () => {
      const path = join(work, "new.log");
      writeFileSync(path, newAddressCorpus());
      return path;
    },
  ],
  [`bench/gen-corpus.ts, ${LINES.toLocaleString("en")} lines (300 attackers)`, genCorpus],
];
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const load = () => loadavg().map((l) => l.toFixed(1)).join(" ");
for (const [i, [title, write]] of corpora.entries()) {
  if (ONLY && ONLY !== ["new", "gen"][i]) continue;
  const corpus = write();
  const results = new Map<string, Run[]>(resolvers.map(([name]) => [name, []]));
  const loadBefore = load();
  const started = new Date().toISOString().slice(0, 16);
  /* each round starts with another resolver: the first run of a round (cold caches, the corpus
     just written) must not always fall to the same one */
  for (let r = 0; r < RUNS; r++) {
    const order = resolvers.map((_, i) => resolvers[(r + i) % resolvers.length]!);
    if (PAIRED) {
      const runs = await Promise.all(order.map(([, servers]) => run(corpus, servers)));
      order.forEach(([name], i) => results.get(name)!.push(runs[i]!));
    } else for (const [name, servers] of order) results.get(name)!.push(await run(corpus, servers));
  }
  const off = results.get("off")!;
  const heading = PAIRED ? `${RUNS} pairs side by side` : `${RUNS} rounds`;
  console.log(`\n### ${title}, ${heading}, from ${started} UTC, load average ${loadBefore} before, ${load()} after\n`);
  console.log("| DNS | CPU s (median) | vs off: median of the rounds' ratios (range; middle half) | wall s |\n|---|---|---|---|");
  for (const [name, runs] of results) {
    const ratios = sorted(runs.map((r, k) => r.cpu / off[k]!.cpu));
    const range = `${ratios[0]!.toFixed(3)}–${ratios[ratios.length - 1]!.toFixed(3)}; ${ratios[Math.floor((ratios.length - 1) / 4)]!.toFixed(3)}–${ratios[Math.ceil((3 * (ratios.length - 1)) / 4)]!.toFixed(3)}`;
    console.log(`| ${name} | ${median(runs.map((r) => r.cpu)).toFixed(2)} | ${median(ratios).toFixed(3)}× (${range}) | ${median(runs.map((r) => r.wall)).toFixed(2)} |`);
  }
}
atOnce.stop();
slow.stop();
failing.stop();
rmSync(work, { recursive: true, force: true });
