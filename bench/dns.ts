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
import { moduleEnvironment } from "../src/master/master";

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

const TYPE_A = 1;
const TYPE_PTR = 12;
const TYPE_AAAA = 28;

/** The address an ip6.arpa or in-addr.arpa name stands for, in full (IPv6: eight groups of four digits). */
function fromReverse(labels: string[]): string {
  if (labels[4] === "in-addr") return labels.slice(0, 4).reverse().join(".");
  return labels.slice(0, 32).reverse().join("").match(/.{4}/g)!.join(":");
}

/** `address`'s bytes, from the full form fromReverse writes. */
function addressBytes(address: string): number[] {
  if (!address.includes(":")) return address.split(".").map(Number);
  return address.split(":").flatMap((g) => [parseInt(g.slice(0, 2), 16), parseInt(g.slice(2), 16)]);
}

function wire(name: string): number[] {
  return [...name.split(".").flatMap((l) => [l.length, ...Buffer.from(l, "latin1")]), 0];
}

/**
 * The answer of a resolver that makes every address a TRUEHOST (PTR h6-<address>.example.net,
 * whose AAAA is the address; h4-: A), or of one that fails every question (`fail`: SERVFAIL).
 * Built straight from the question: the test server (test/helpers/dns-server.ts) builds its
 * answers from tables, through proxies and spreads, at ~220 µs of CPU a query here, and on two
 * cores a resolver's CPU is taken from the module's share; a real one on loopback spends a few.
 */
function answer(q: Uint8Array, fail: boolean): Uint8Array {
  const labels: string[] = [];
  let at = 12;
  for (; q[at]! !== 0; at += 1 + q[at]!) labels.push(Buffer.from(q.subarray(at + 1, at + 1 + q[at]!)).toString("latin1").toLowerCase());
  const question = q.subarray(12, at + 5);
  const type = (q[at + 1]! << 8) | q[at + 2]!;
  const name = labels.join(".");
  let rdata: number[] | null = null;
  if (type === TYPE_PTR && name.endsWith(".arpa")) {
    const address = fromReverse(labels);
    rdata = wire(`h${address.includes(":") ? 6 : 4}-${address.replaceAll(/[:.]/g, "-")}.example.net`);
  }
  const forward = /^h([46])-(.*)\.example\.net$/.exec(name);
  if (forward && type === (forward[1] === "6" ? TYPE_AAAA : TYPE_A)) rdata = addressBytes(forward[2]!.replaceAll("-", forward[1] === "6" ? ":" : "."));
  const rcode = fail ? 2 : rdata || forward ? 0 : 3;
  const record = rdata && !fail ? [0xc0, 12, type >> 8, type & 255, 0, 1, 0, 0, 0x0e, 0x10, rdata.length >> 8, rdata.length & 255, ...rdata] : [];
  const out = new Uint8Array(12 + question.length + record.length);
  out.set([q[0]!, q[1]!, 0x84 | (q[2]! & 1), 0x80 | rcode, 0, 1, 0, record.length > 0 ? 1 : 0, 0, 0, 0, 0]);
  out.set(question, 12);
  out.set(record, 12 + question.length);
  return out;
}

/** A resolver on 127.0.0.1 answering as `answer` says, after `delayMs`. */
async function resolver(o: { fail?: boolean; delayMs?: number }): Promise<{ address: string; stop(): void }> {
  const socket = await Bun.udpSocket({
    hostname: "127.0.0.1",
    socket: {
      data: (sock, q, port, address) => {
        const reply = answer(q, o.fail ?? false);
        const send = () => {
          try {
            sock.send(reply, port, address);
          } catch {
            /* the module asked and exited meanwhile (ICMP port unreachable) */
          }
        };
        if (o.delayMs) setTimeout(send, o.delayMs);
        else send();
      },
      /* the ICMP error of a late answer to a module that had exited: nothing to do */
      error: () => {},
    },
  });
  return { address: `127.0.0.1:${socket.port}`, stop: () => socket.close() };
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
  /* in the environment the master gives its modules (FTL off), as on a server */
  const p = Bun.spawn([...WATCHER, "--root", root, "module", "LG", "--stdin"], { stdin: Bun.file(corpus), stdout: "ignore", stderr: "ignore", env: moduleEnvironment() });
  const code = await p.exited;
  const wall = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`watcher module exited with ${code}`);
  const usage = p.resourceUsage()!;
  rmSync(root, { recursive: true, force: true });
  return { cpu: Number(usage.cpuTime.total) / 1e6, wall };
}

const atOnce = await resolver({});
const slow = await resolver({ delayMs: 200 });
const failing = await resolver({ fail: true });
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
