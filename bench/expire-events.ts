/**
 * Event expiry on a big database, beside a writer. An LG.db is filled with `--events` affairs
 * older than eventRetention (about 91 bytes each, as a flood writes them); a second process
 * commits one event every 5 ms as a running module does (IMMEDIATE transactions, busy_timeout);
 * then `watcher expire` deletes them in batches, and, on a copy of the same file, one plain
 * DELETE does it in one transaction. It reports the run's time, the file's size before and
 * after, and the writer's waits for its commits (median, p99, max) under each.
 *
 *   node_modules/.bin/bun bench/expire-events.ts [--events 2000000] [--before-incremental]
 *
 * `--before-incremental`: the file is made as watcher made it before auto_vacuum INCREMENTAL
 * (expire rewrites it once, with VACUUM, where what it keeps is small).
 */
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type EventRecord, ModuleStore } from "../src/store/module-db";

const { values } = parseArgs({ options: { events: { type: "string", default: "2000000" }, writer: { type: "string" }, "before-incremental": { type: "boolean", default: false } } });
const WATCHER = process.env.WATCHER_CMD?.split(" ") ?? [join(import.meta.dir, "..", "dist", "watcher")];

/* the writer process: commits until SIGTERM, then prints its waits as JSON */
if (values.writer) {
  const store = new ModuleStore(values.writer);
  store.deferCheckpoints();
  const waits: number[] = [];
  let stop = false;
  process.on("SIGTERM", () => (stop = true));
  for (let i = 0; !stop; i++) {
    const started = performance.now();
    store.transaction(() => store.addEvent({ time: Math.floor(Date.now() / 1000), address: `2001:db8::${i.toString(16)}`, rule: "failed-auth", kind: "affair", value: 1, user: null, vhost: null }, null));
    waits.push(performance.now() - started);
    await Bun.sleep(5);
  }
  store.close();
  console.log(JSON.stringify(waits));
  process.exit(0);
}

const events = Number(values.events);
const root = mkdtempSync(join(tmpdir(), "watcher-expire-bench-"));
mkdirSync(join(root, "etc"));
mkdirSync(join(root, "var", "db"), { recursive: true });
writeFileSync(join(root, "etc", "watcher.toml"), 'firewall = "dryrun"\n[modules.LG]\ndns = false\n');
const db = join(root, "var", "db", "LG.db");
const filled = join(root, "filled.db");

if (values["before-incremental"]) {
  const old = new Database(filled, { create: true });
  old.exec("PRAGMA journal_mode = WAL");
  old.close();
}
const store = new ModuleStore(filled);
const old = Math.floor(Date.now() / 1000) - 200 * 86400;
for (let i = 0; i < events; i += 10000) {
  const batch: { event: EventRecord; hostClass: string | null }[] = [];
  for (let j = i; j < Math.min(events, i + 10000); j++) batch.push({ event: { time: old + Math.floor(j / 200), address: `198.51.${(j >> 8) & 255}.${j & 255}`, rule: "failed-auth", kind: "affair", value: 1, user: "root", vhost: null }, hostClass: "UNKNOWN" });
  store.transaction(() => store.addEvents(batch));
}
store.checkpoint();
store.close();

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
const size = () => statSync(db).size + (existsSync(`${db}-wal`) ? statSync(`${db}-wal`).size : 0);

async function beside(label: string, run: () => void): Promise<void> {
  for (const s of ["", "-wal", "-shm"]) rmSync(`${db}${s}`, { force: true });
  copyFileSync(filled, db);
  const before = size();
  const writer = Bun.spawn([process.execPath, import.meta.path, "--writer", db], { stdout: "pipe" });
  await Bun.sleep(500); /* the writer's first commits */
  const started = performance.now();
  run();
  const seconds = (performance.now() - started) / 1000;
  writer.kill("SIGTERM");
  const waits = (JSON.parse(await new Response(writer.stdout).text()) as number[]).sort((a, b) => a - b);
  const at = (q: number) => waits[Math.floor(q * (waits.length - 1))]!.toFixed(1);
  console.log(`| ${label} | ${seconds.toFixed(1)} s | ${mb(before)} → ${mb(size())} | ${waits.length} | ${at(0.5)} / ${at(0.99)} / ${at(1)} ms |`);
}

console.log(`${events} events older than eventRetention${values["before-incremental"] ? " (a file made before auto_vacuum INCREMENTAL)" : ""}\n`);
console.log("| run | time | file (with WAL) | writer's commits | commit wait median / p99 / max |\n|---|---|---|---|---|");
await beside("`watcher expire` (batches)", () => {
  const p = Bun.spawnSync([...WATCHER, "--root", root, "expire"], { stdout: "pipe", stderr: "inherit" });
  if (p.exitCode !== 0) throw new Error(`watcher expire failed (${p.exitCode})`);
});
await beside("one DELETE", () => {
  const one = new Database(db);
  one.exec("PRAGMA busy_timeout = 5000");
  one.run("DELETE FROM events WHERE time < ?", [Math.floor(Date.now() / 1000) - 90 * 86400]);
  one.close();
});
rmSync(root, { recursive: true, force: true });
