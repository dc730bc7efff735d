/**
 * Soak: sustained traffic through the FIFO with the scheduled jobs running, for minutes.
 * A real master (`watcher start`, dry-run firewall) reads its LG FIFO while this script
 * writes `--rate` lines a second into it, a third of them failed passwords from addresses
 * that rotate through 2001:db8::/32, and the expire job (every minute, expireAfter 2m)
 * forgets tens of thousands of hosts a minute beside it. It reports module restarts, lines
 * written against lines the module read (none may be lost), and the module's RSS per minute
 * (memory must stay flat). Exit 0 when nothing was lost and nothing restarted, 1 otherwise.
 *
 *   node_modules/.bin/bun bench/soak.ts [--minutes 5] [--rate 3000]
 */
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { minutes: { type: "string", default: "5" }, rate: { type: "string", default: "3000" }, keep: { type: "boolean", default: false } } });
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const WATCHER = process.env.WATCHER_CMD?.split(" ") ?? [join(import.meta.dir, "..", "dist", "watcher")];

const root = mkdtempSync(join(tmpdir(), "watcher-soak-"));
mkdirSync(join(root, "etc"));
writeFileSync(join(root, "etc", "watcher.toml"), `firewall = "dryrun"\n[schedule]\nexpire = "* * * * *"\n[modules.LG]\ndns = false\nexpireAfter = "2m"\n`);
const run = (...args: string[]) => Bun.spawnSync([...WATCHER, "--root", root, ...args], { stdout: "pipe", stderr: "pipe" });
const json = <T>(path: string): T | null => {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return null;
  }
};
const masterStatus = () => json<{ modules: Record<string, { pid: number | null; restarts: number }> }>(join(root, "var", "run", "master.json"));
const moduleLines = () => json<{ lines: number }>(join(root, "var", "run", "LG.json"))?.lines ?? 0;
const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);

const started = run("start");
if (started.exitCode !== 0) throw new Error(`watcher start: ${started.stderr}`);
const fifo = openSync(join(root, "var", "fifo", "WatchLG"), constants.O_WRONLY);
let written = 0;
let lost = 0;
let attacker = 0;
const line = (i: number) =>
  i % 3 === 0
    ? `Dec  6 10:00:00 srv sshd-session[${1000 + (i % 30000)}]: Failed password for root from 2001:db8:${((attacker >> 16) & 0xffff).toString(16)}:${(attacker++ & 0xffff).toString(16)}::1 port 4000 ssh2\n`
    : `Dec  6 10:00:00 srv CRON[${1000 + (i % 30000)}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n`;

const perMinute: { minute: number; rssKiB: number; restarts: number; behind: number }[] = [];
const tickMs = 100;
const perTick = Math.round((rate * tickMs) / 1000);
const end = Date.now() + minutes * 60_000;
let nextSample = Date.now() + 60_000;
let samples: number[] = [];
for (let next = Date.now(); Date.now() < end; ) {
  let text = "";
  for (let k = 0; k < perTick; k++) text += line(written + k);
  try {
    const bytes = Buffer.from(text);
    for (let off = 0; off < bytes.length; ) off += writeSync(fifo, bytes, off);
    written += perTick;
  } catch (e) {
    lost += perTick; /* EPIPE: no reader, as rsyslog would lose them */
    console.error(`write failed: ${(e as Error).message}`);
  }
  const pid = masterStatus()?.modules.LG?.pid;
  if (pid) samples.push(rssKiB(pid));
  if (Date.now() >= nextSample) {
    perMinute.push({ minute: perMinute.length + 1, rssKiB: Math.max(...samples), restarts: masterStatus()?.modules.LG?.restarts ?? -1, behind: written - moduleLines() });
    console.error(`minute ${perMinute.length}: ${written} lines written, peak RSS ${(perMinute.at(-1)!.rssKiB / 1024).toFixed(0)} MiB`);
    samples = [];
    nextSample += 60_000;
  }
  next += tickMs;
  await Bun.sleep(Math.max(0, next - Date.now()));
}
closeSync(fifo);
const caughtUp = Date.now() + 60_000;
while (moduleLines() < written && Date.now() < caughtUp) await Bun.sleep(100);
const read = moduleLines();
const restarts = masterStatus()?.modules.LG?.restarts ?? -1;
const expired = (readFileSync(join(root, "var", "log", "watcher.log"), "utf8").match(/expire LG: forgot (\d+) hosts/g) ?? []).map((m) => Number(/(\d+) hosts/.exec(m)![1]));
run("stop");

console.log(`## Soak: ${minutes} min at ${rate} lines/s through the FIFO, expire every minute\n`);
console.log("| minute | module peak RSS | restarts so far | lines not yet read |\n|---|---|---|---|");
for (const m of perMinute) console.log(`| ${m.minute} | ${(m.rssKiB / 1024).toFixed(0)} MiB | ${m.restarts} | ${m.behind} |`);
console.log(`\nlines written ${written}, read by the module ${read}, lost in writing ${lost}; module restarts ${restarts}; expire runs forgot ${expired.join(", ") || "nothing"} hosts`);
if (!values.keep) rmSync(root, { recursive: true, force: true });
process.exit(read === written && lost === 0 && restarts === 0 ? 0 : 1);
