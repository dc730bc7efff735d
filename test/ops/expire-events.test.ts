/**
 * `watcher expire` deletes the events older than eventRetention: real databases, the real
 * `dist/watcher` (expire, ban, unban, bans, why, report, stat, module) run as an operator runs
 * them. Old events go; recent ones, and the ban event of a ban in force however old, stay; the
 * file gives the space back; a module counting beside the expiry loses no commit.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { nowSeconds } from "../../src/core/duration";
import { type EventRecord, ModuleStore } from "../../src/store/module-db";
import { cleanedUpAfterAll, makeRoot, WATCHER, watcher } from "../helpers/root";
import { timeoutForHangsOnly, waitFor } from "../helpers/wait";

timeoutForHangsOnly();
const made = cleanedUpAfterAll();
const DAY = 86400;

function rootWith(config: string): string {
  const root = makeRoot("expire-events", { "etc/watcher.toml": `firewall = "dryrun"\n[modules.LG]\ndns = false\n${config}` });
  made.roots.push(root);
  return root;
}

const lgDb = (root: string) => join(root, "var", "db", "LG.db");

/** `count` affairs at `time`, one an address of `net` (198.51 or 192.0), written as the module writes them. */
function addAffairs(store: ModuleStore, count: number, time: number, net = "198.51"): void {
  for (let i = 0; i < count; i += 10000) {
    const events: { event: EventRecord; hostClass: string | null }[] = [];
    for (let j = i; j < Math.min(count, i + 10000); j++) {
      events.push({ event: { time, address: `${net}.${(j >> 8) & 255}.${j & 255}`, rule: "failed-auth", kind: "affair", value: 1, user: "root", vhost: null }, hostClass: "UNKNOWN" });
    }
    store.transaction(() => store.addEvents(events));
  }
}

function query<T>(root: string, sql: string, ...params: (string | number)[]): T[] {
  const db = new Database(lgDb(root), { readonly: true });
  try {
    return db.query<T, (string | number)[]>(sql).all(...params);
  } finally {
    db.close();
  }
}

/** Size of the database with its WAL: what it takes on disk. */
function onDisk(root: string): number {
  const size = (p: string) => (Bun.file(p).size > 0 ? statSync(p).size : 0);
  return size(lgDb(root)) + size(`${lgDb(root)}-wal`);
}

function expireJson(root: string): { module: string; eventRetention: number; eventsExpired: number; bytesFreed: number }[] {
  const r = watcher(root, "expire", "--json");
  expect([r.code, r.err]).toEqual([0, ""]);
  return JSON.parse(r.out);
}

describe("expire and events", () => {
  test("old events go, recent ones and the ban event of a ban in force stay; --dry-run counts; bans, why, report and stat read on", () => {
    const root = rootWith('eventRetention = "30d"\n');
    expect(watcher(root, "ban", "LG", "203.0.113.7", "--time", "forever").code).toBe(0);
    expect(watcher(root, "ban", "LG", "203.0.113.8", "--time", "1h").code).toBe(0);
    expect(watcher(root, "unban", "203.0.113.8").code).toBe(0);
    const now = nowSeconds();
    const store = new ModuleStore(lgDb(root));
    addAffairs(store, 1000, now - 40 * DAY);
    addAffairs(store, 10, now - DAY, "192.0");
    store.close();
    /* both bans decided 200 days ago: their events are made older, rather than the test waiting */
    const db = new Database(lgDb(root));
    db.run("UPDATE events SET time = time - 200 * 86400 WHERE address IN ('203.0.113.7', '203.0.113.8')");
    db.close();
    const decisionsOf8 = query<{ n: number }>(root, "SELECT count(*) n FROM events WHERE address = '203.0.113.8'")[0]!.n;
    expect(decisionsOf8).toBe(2); /* a ban and its unban */
    const total = query<{ n: number }>(root, "SELECT count(*) n FROM events")[0]!.n;

    const dry = watcher(root, "expire", "--dry-run");
    expect([dry.code, dry.out]).toEqual([0, "LG: would forget 0 hosts not seen for 30d; would delete 1002 events older than 30d\n"]);
    expect(JSON.parse(watcher(root, "expire", "--dry-run", "--json").out)).toMatchObject([{ module: "LG", dryRun: true, eventRetention: 30 * DAY, eventsExpired: 1002 }]);
    expect(query<{ n: number }>(root, "SELECT count(*) n FROM events")[0]!.n).toBe(total);

    expect(expireJson(root)).toMatchObject([{ module: "LG", eventRetention: 30 * DAY, eventsExpired: 1002 }]);
    expect(query<{ address: string; kind: string }>(root, "SELECT address, kind FROM events WHERE time < ? ORDER BY rowid", now - 30 * DAY)).toEqual([{ address: "203.0.113.7", kind: "ban" }]);
    expect(query<{ n: number }>(root, "SELECT count(*) n FROM events WHERE address LIKE '192.0.%'")[0]!.n).toBe(10);

    /* the permanent ban's row in `bans` and its story in `why` keep their reason and time */
    const bans = JSON.parse(watcher(root, "bans", "--json").out) as { address: string; since: string | null; reason: string | null }[];
    const ban7 = bans.find((b) => b.address === "203.0.113.7")!;
    expect(ban7.reason).toContain("manual ban");
    expect(Date.parse(ban7.since!) / 1000).toBeLessThan(now - 199 * DAY);
    const why = JSON.parse(watcher(root, "why", "203.0.113.7", "--json").out) as { modules: { bans: { reason: string | null }[] }[] };
    expect(why.modules[0]!.bans).toHaveLength(1);
    expect(why.modules[0]!.bans[0]!.reason).toContain("manual ban");

    const report = watcher(root, "report", "--json", "--since", "7d");
    expect(report.code).toBe(0);
    expect(JSON.parse(report.out).modules[0]).toMatchObject({ module: "LG", affairs: 10 });
    const stat = watcher(root, "stat", "--module", "LG");
    expect(stat.code).toBe(0);
    /* the header, the recent affairs' day and the kept ban's day */
    expect(stat.out.trimEnd().split("\r\n")).toHaveLength(3);

    expect(expireJson(root)).toMatchObject([{ eventsExpired: 0 }]);
  });

  test("the space comes back: a big database shrinks, one made before incremental vacuum is rewritten once; eventRetention = 0 keeps all", () => {
    const old = nowSeconds() - 200 * DAY;
    for (const made of ["now", "before"] as const) {
      const root = rootWith("");
      if (made === "before") {
        /* a database of an earlier watcher: WAL set before the first table, auto_vacuum NONE */
        mkdirSync(join(root, "var", "db"), { recursive: true });
        const db = new Database(lgDb(root), { create: true });
        db.exec("PRAGMA journal_mode = WAL");
        db.close();
      }
      const store = new ModuleStore(lgDb(root));
      addAffairs(store, 300_000, old);
      expect(store.pages().incremental).toBe(made === "now");
      store.close();
      const before = onDisk(root);
      expect(before).toBeGreaterThan(20e6);
      const [r] = expireJson(root);
      /* the newest event stays whatever its age: its rowid is the running module's cursor of unbans */
      expect(r).toMatchObject({ eventsExpired: 299_999 });
      expect(r!.bytesFreed).toBeGreaterThan(before * 0.8);
      expect(onDisk(root)).toBeLessThan(before / 10);
      expect(query<{ auto_vacuum: number }>(root, "PRAGMA auto_vacuum")[0]!.auto_vacuum).toBe(2);
    }
    const keep = rootWith("eventRetention = 0\n");
    const store = new ModuleStore(lgDb(keep));
    addAffairs(store, 100, old);
    store.close();
    expect(watcher(keep, "expire").out).toBe("LG: forgot 0 hosts not seen for 30d; kept all events\n");
    expect(query<{ n: number }>(keep, "SELECT count(*) n FROM events")[0]!.n).toBe(100);
  });

  test("a module counting beside the expiry loses no commit", async () => {
    const root = rootWith("maxAffairs = 1000\n");
    const store = new ModuleStore(lgDb(root));
    addAffairs(store, 400_000, nowSeconds() - 200 * DAY);
    store.close();
    const module = Bun.spawn([WATCHER, "--root", root, "module", "LG", "--stdin"], { stdin: "pipe", stdout: "ignore", stderr: "pipe" });
    let stderr = "";
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of module.stderr) stderr += decoder.decode(chunk, { stream: true });
    })();
    try {
      await waitFor("the module reading stdin", () => stderr.includes("reading"));
      const expiry = Bun.spawn([WATCHER, "--root", root, "expire", "--json"], { stdout: "pipe", stderr: "pipe" });
      /* one failed login a line from a new address, fed for as long as the expiry runs */
      let sent = 0;
      while (expiry.exitCode === null) {
        let lines = "";
        for (const end = sent + 50; sent < end; sent++) lines += `Dec  6 10:00:00 host sshd[${1000 + sent}]: Invalid user u${sent} from 2001:db8:1:${sent.toString(16)}::9 port 4000\n`;
        module.stdin.write(lines);
        await module.stdin.flush();
        await Bun.sleep(5);
      }
      expect(await expiry.exited).toBe(0);
      const [r] = JSON.parse(await new Response(expiry.stdout).text());
      /* the module's events are the newest: every old one goes */
      expect(r).toMatchObject({ eventsExpired: 400_000 });
      expect(sent).toBeGreaterThan(0);
      module.stdin.end();
      expect(await module.exited).toBe(0);
      await reading;
      expect(stderr).not.toContain("counting and banning from memory");
      expect(query<{ n: number }>(root, "SELECT count(*) n FROM events WHERE address LIKE '2001:db8:%'")[0]!.n).toBe(sent);
    } finally {
      if (module.exitCode === null) module.kill("SIGKILL");
    }
  });
});
