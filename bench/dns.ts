/**
 * DNS must never slow the loop: the full pipeline (rules, sessions, SQLite, dry-run firewall)
 * over a corpus with 100k distinct attacker addresses, with DNS off and with DNS on against a
 * slow resolver on loopback (every answer 200 ms late) and a dead one (no answers at all).
 * Reports lines/s, medians of the runs, and the ratio against DNS off.
 * Usage: node_modules/.bin/bun bench/dns.ts [--addresses 100000] [--runs 3]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DnsClient } from "../src/core/dns";
import { openModule } from "../src/modules/context";
import { LineSplitter } from "../src/modules/lines";
import { ModuleRuntime, partsOf } from "../src/modules/runtime";
import { TestDnsServer } from "../test/helpers/dns-server";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const ADDRESSES = opt("addresses", 100000);
const RUNS = opt("runs", 3);

/** Each attacker fails twice; four benign lines per attack line. */
function corpus(): string {
  const out: string[] = [];
  for (let round = 0; round < 2; round++) {
    for (let i = 1; i <= ADDRESSES; i++) {
      const a = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      out.push(`Nov 25 10:00:00 srv sshd-session[${i + round * ADDRESSES}]: Failed password for root from ${a} port 40000 ssh2`);
      out.push(`Nov 25 10:00:00 srv CRON[${i}]: pam_unix(cron:session): session closed for user root`);
      out.push(`Nov 25 10:00:00 srv sshd[${i}]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)`);
      out.push(`Nov 25 10:00:00 srv systemd-logind[412]: New session ${i} of user deploy.`);
      out.push(`Nov 25 10:00:00 srv kernel: [UFW BLOCK] IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2`);
    }
  }
  return `${out.join("\n")}\n`;
}

async function run(text: string, servers: string[] | null): Promise<{ seconds: number; lookups: number; dropped: number }> {
  const root = mkdtempSync(join(tmpdir(), "watcher-bench-dns-"));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc", "watcher.toml"), 'firewall = "dryrun"\n');
  const ctx = openModule(root, "LG");
  const client = servers ? new DnsClient({ servers, timeout: 2, retries: 1 }) : null;
  const rt = new ModuleRuntime({
    ...partsOf(ctx),
    clock: () => Math.floor(Date.now() / 1000), useLineTime: false,
    dns: client ? { client, options: ctx.config.dns } : undefined,
  });
  const bytes = new TextEncoder().encode(text);
  const splitter = new LineSplitter();
  const started = performance.now();
  for (let at = 0; at < bytes.length; at += 65536) await rt.processBlock(splitter.push(bytes.subarray(at, at + 65536)));
  await rt.processBlock(splitter.end());
  const seconds = (performance.now() - started) / 1000;
  const stats = { seconds, lookups: rt.dns?.stats.lookups ?? 0, dropped: rt.dns?.stats.dropped ?? 0 };
  client?.close();
  await ctx.close();
  rmSync(root, { recursive: true, force: true });
  return stats;
}

const text = corpus();
const lines = text.split("\n").length - 1;
const slow = await new TestDnsServer({ delayMs: new Proxy({}, { get: () => 200, has: () => true }) as Record<string, number> }).start();
const dead = "127.0.0.1:9";
const results: Record<string, { seconds: number; lookups: number; dropped: number }[]> = { off: [], slow: [], dead: [] };
for (let r = 0; r < RUNS; r++) {
  results.off!.push(await run(text, null));
  results.slow!.push(await run(text, [slow.address]));
  results.dead!.push(await run(text, [dead]));
}
slow.stop();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(results.off!.map((r) => r.seconds));
console.log(`${lines.toLocaleString("en")} lines, ${ADDRESSES.toLocaleString("en")} distinct attacker addresses, median of ${RUNS} runs\n`);
console.log("| DNS | lines/s | seconds | vs DNS off | lookups started | requests dropped (queue full) |");
console.log("|---|---|---|---|---|---|");
for (const [name, label] of [["off", "off"], ["slow", "slow resolver (200 ms per answer)"], ["dead", "dead resolver (no answer)"]] as const) {
  const s = median(results[name]!.map((r) => r.seconds));
  const last = results[name]!.at(-1)!;
  console.log(`| ${label} | ${Math.round(lines / s).toLocaleString("en")} | ${s.toFixed(2)} | ${(s / base).toFixed(2)}× | ${last.lookups.toLocaleString("en")} | ${last.dropped.toLocaleString("en")} |`);
}
process.exit(0);
