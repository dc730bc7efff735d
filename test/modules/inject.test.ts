/**
 * `inject --direct` joins the chunks it reads into pieces of whole lines, each one transaction
 * (injectDirect): whatever the chunks, a replay must write what the lines say, the same hosts,
 * events and bans, over-long lines and characters cut between chunks included.
 */
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { openModule } from "../../src/modules/context";
import { injectDirect } from "../../src/modules/inject";
import { ModuleRuntime, partsOf } from "../../src/pipeline/run";
import { makeRoot, SAFE_CONFIG } from "../helpers/root";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0) / 1000;

/* ~400 KiB of failed logins from 60 addresses, a user name of two-byte characters, and a line
   over MAX_LINE in the middle: several pieces, the long line across two of them */
function log(): Uint8Array {
  const lines: string[] = [];
  for (let i = 0; i < 4000; i++) {
    const host = `198.51.100.${i % 60}`;
    const user = i % 7 === 0 ? "\u00e9t\u00e9" : `user${i}`;
    lines.push(`Nov 25 11:${String(Math.floor(i / 100)).padStart(2, "0")}:${String(i % 60).padStart(2, "0")} srv sshd[${2000 + i}]: Failed password for invalid user ${user} from ${host} port 40000 ssh2`);
    if (i === 3500) lines.push(`Nov 25 11:20:00 srv sshd[1]: Invalid user ${"x".repeat(300 << 10)} from 203.0.113.9 port 22`);
  }
  return new TextEncoder().encode(`${lines.join("\n")}\n`);
}

async function* chunksOf(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  /* one reused buffer, as the sources hand out their reads */
  const buffer = new Uint8Array(size);
  for (let at = 0; at < bytes.length; at += size) {
    const n = Math.min(size, bytes.length - at);
    buffer.set(bytes.subarray(at, at + n));
    yield buffer.subarray(0, n);
  }
}

function tables(root: string) {
  const db = new Database(join(root, "var/db/LG.db"), { readonly: true });
  const hosts = db.query("SELECT * FROM hosts ORDER BY address").all();
  const events = db.query("SELECT * FROM events ORDER BY rowid").all();
  db.close();
  return { hosts, events };
}

async function replay(chunks: AsyncIterable<Uint8Array> | readonly string[]) {
  const root = makeRoot("inject-pieces", { "etc/watcher.toml": SAFE_CONFIG });
  const ctx = openModule(root, "LG");
  const { stats, bans } = await injectDirect(ctx, chunks, null, () => NOW);
  await ctx.close();
  return { stats, bans, ...tables(root) };
}

describe("a replay writes the same whatever the chunks it reads", () => {
  const bytes = log();
  test.each([7, 4096, 1 << 16, 300 << 10, bytes.length])("chunks of %p bytes: as 64 KiB chunks", async (size) => {
    const expected = await replay(chunksOf(bytes, 1 << 16));
    expect(expected.stats.lines).toBe(4001);
    expect(expected.stats.skipped.tooLong).toBe(1);
    expect(expected.bans.length).toBeGreaterThan(0);
    expect(await replay(chunksOf(bytes, size))).toEqual(expected);
  }, 60_000);

  test("as the text handed over whole (inject's arguments), which no piece cuts", async () => {
    expect(await replay([new TextDecoder().decode(bytes)])).toEqual(await replay(chunksOf(bytes, 1 << 16)));
  }, 60_000);
});

describe("a replay holds its writes over several chunks (chunksPerCommit)", () => {
  /* 4,000 lines in 20 blocks, one runtime writing each block, the other every 4 */
  const lines = new TextDecoder().decode(log()).split("\n").filter((l) => l.length < 1000);
  const blocks = Array.from({ length: 20 }, (_, i) => `${lines.slice(i * 200, (i + 1) * 200).join("\n")}\n`);

  async function run(chunksPerCommit: number, afterBlock: (i: number, root: string) => void = () => {}, input = blocks) {
    const root = makeRoot("inject-held", { "etc/watcher.toml": SAFE_CONFIG });
    const ctx = openModule(root, "LG");
    const bans: unknown[] = [];
    const rt = new ModuleRuntime({ ...partsOf(ctx), clock: () => NOW, useLineTime: true, chunksPerCommit, onBan: (b) => bans.push(b) });
    for (const [i, block] of input.entries()) {
      await rt.processBlock(block);
      afterBlock(i, root);
    }
    expect(rt.flushPending(true)).toBe(true);
    await ctx.close();
    return { stats: rt.stats, bans, ...tables(root) };
  }

  test("nothing reaches the database until the 4th chunk; then the same as a commit per chunk", async () => {
    const written: number[] = [];
    const held = await run(4, (_, root) => written.push(tables(root).events.length));
    expect(written.slice(0, 3)).toEqual([0, 0, 0]);
    expect(written[3]).toBeGreaterThan(0);
    expect(written[4]).toBe(written[3]!);
    const each = await run(1);
    expect(each.events.length).toBeGreaterThan(1000);
    expect(held).toEqual(each);
  }, 60_000);

  test("no other writer comes between held chunks' reads and their writes: it waits for them", async () => {
    const tryWrite = (root: string) => {
      const other = new Database(join(root, "var", "db", "LG.db"));
      other.exec("PRAGMA busy_timeout = 0");
      try {
        other.exec("BEGIN IMMEDIATE; UPDATE hosts SET banned_until = 0; COMMIT");
        return "written";
      } catch (e) {
        return (e as Error).message;
      } finally {
        other.close();
      }
    };
    const tries: string[] = [];
    await run(4, (i, root) => {
      if (i < 8) tries.push(tryWrite(root));
    });
    /* chunks 0-2 and 4-6 hold the lock (a `watcher unban` meanwhile would have been overwritten); 3 and 7 wrote and let go */
    expect(tries.map((t) => (t === "written" ? "written" : /locked|busy/i.test(t) ? "waits" : t))).toEqual(["waits", "waits", "waits", "written", "waits", "waits", "waits", "written"]);
  }, 60_000);

  test("held writes go out before they grow past their bound, whatever chunksPerCommit says", async () => {
    const twice = [...blocks, ...blocks];
    const written: number[] = [];
    const held = await run(1000, (_, root) => written.push(tables(root).events.length), twice);
    /* 8,000 affairs: the bound (4,096 hosts and events) is passed on the way, not at the end only */
    expect(written.some((n) => n > 0 && n < held.events.length)).toBe(true);
    expect(held).toEqual(await run(1, undefined, twice));
  }, 60_000);
});
