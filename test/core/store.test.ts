import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { WatcherError } from "../../src/core/errors";
import { openDatabase, schemaVersion } from "../../src/store/sqlite";
import { DryRunFirewall } from "../../src/core/firewall/dryrun";
import { FleetStore } from "../../src/store/fleet-db";
import { countedLines } from "../../src/store/ban-queries";
import { appendCountedLines, type EventKind, LINES_KEPT, MIGRATIONS, ModuleStore, parseCountedLines } from "../../src/store/module-db";
import { newHost } from "../../src/pipeline/decide";

const tmp = () => join(mkdtempSync(join(tmpdir(), "watcher-store-")), "var", "db", "LG.db");

describe("module store", () => {
  test("creates the schema in WAL mode and records its version", () => {
    const path = tmp();
    const store = new ModuleStore(path);
    expect(store.schemaVersion).toBe(MIGRATIONS.length);
    store.close();
    const db = new Database(path);
    expect((db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
    db.close();
    expect(new ModuleStore(path).schemaVersion).toBe(MIGRATIONS.length); /* reopening migrates nothing */
  });
  test("a resident module's commits leave the WAL to its timer's checkpoint, which copies it all into the database", () => {
    const path = tmp();
    const store = new ModuleStore(path);
    store.deferCheckpoints();
    const databasePages = () => statSync(path).size / 4096;
    const before = databasePages();
    /* 1,500 commits of a page or more: past the 1,000 pages at which a commit would checkpoint */
    for (let i = 0; i < 1500; i++) store.transaction(() => store.putHost({ ...newHost(`2001:db8::${i.toString(16)}`, 100, "failed-auth"), lines: "x".repeat(3000) }));
    expect(databasePages()).toBe(before); /* all of it still in the WAL */
    store.checkpoint();
    expect(databasePages()).toBeGreaterThan(1500);
    const reader = new Database(path, { readonly: true });
    /* nothing left to copy: a passive checkpoint by another connection finds every frame done */
    const left = reader.query("PRAGMA wal_checkpoint(PASSIVE)").get() as { log: number; checkpointed: number };
    expect(left.checkpointed).toBe(left.log);
    expect((reader.query("SELECT count(*) AS n FROM hosts").get() as { n: number }).n).toBe(1500);
    reader.close();
    store.close();
  });
  test("hosts round-trip; active bans; events in order", () => {
    const store = new ModuleStore(tmp());
    store.transaction(() => {
      store.putHost({ ...newHost("203.0.113.5", 100, "failed-auth"), affairs: 2 });
      store.putHost({ ...newHost("2001:db8::5", 100, "manual"), banCount: 1, bannedUntil: 5000 });
      store.addEvent({ time: 100, address: "203.0.113.5", rule: "failed-auth", kind: "affair", value: 2, user: "root", vhost: null }, null);
      store.addEvent({ time: 101, address: "2001:db8::5", rule: "manual", kind: "ban", value: 4900, user: null, vhost: null }, null);
    });
    expect(store.getHost("203.0.113.5")?.affairs).toBe(2);
    expect(store.getHost("192.0.2.1")).toBeNull();
    expect(store.activeBans(4999).map((h) => h.address)).toEqual(["2001:db8::5"]);
    expect(store.activeBans(5000)).toEqual([]);
    expect(store.events().map((e) => e.kind)).toEqual(["affair", "ban"]);
  });
  test("events written many a statement come out as written one by one, in order", () => {
    const events = Array.from({ length: 75 }, (_, i) => ({
      event: { time: 100 + i, address: `203.0.113.${i % 9}`, rule: i % 2 ? "failed-auth" : "invalid-user", kind: (i % 10 === 9 ? "ban" : "affair") as EventKind, value: i, user: i % 3 ? "u".repeat(70 + i) : null, vhost: i % 4 ? null : "www", reason: i % 10 === 9 ? `reason ${i}` : null },
      hostClass: i % 5 ? null : "NXDOMAIN",
    }));
    const rows = (store: ModuleStore, path: string) => {
      store.close();
      const db = new Database(path, { readonly: true });
      const all = db.query("SELECT rowid, * FROM events ORDER BY rowid").all();
      db.close();
      return all;
    };
    const [onePath, manyPath] = [tmp(), tmp()];
    const one = new ModuleStore(onePath);
    one.transaction(() => events.forEach((e) => one.addEvent(e.event, e.hostClass)));
    const many = new ModuleStore(manyPath);
    many.transaction(() => many.addEvents(events));
    const written = rows(many, manyPath);
    expect(written).toHaveLength(75);
    expect(written).toEqual(rows(one, onePath));
  });
  test("a failed transaction leaves nothing behind", () => {
    const store = new ModuleStore(tmp());
    expect(() =>
      store.transaction(() => {
        store.putHost(newHost("203.0.113.5", 1, "r"));
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(store.getHost("203.0.113.5")).toBeNull();
  });
  test("a version 1 database is migrated in place, its rows kept", () => {
    const path = tmp();
    mkdirSync(dirname(path), { recursive: true });
    const v1 = new Database(path);
    v1.exec(`CREATE TABLE hosts (address TEXT PRIMARY KEY, class TEXT, affairs INTEGER NOT NULL, recent TEXT NOT NULL,
      first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, ban_count INTEGER NOT NULL DEFAULT 0,
      banned_until INTEGER NOT NULL DEFAULT 0, last_rule TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE events (time INTEGER NOT NULL, address TEXT NOT NULL, rule TEXT NOT NULL, kind TEXT NOT NULL, value INTEGER NOT NULL, class TEXT);
      INSERT INTO hosts VALUES ('203.0.113.5', NULL, 1, '100', 100, 100, 0, 0, 'failed-auth');
      PRAGMA user_version = 1;`);
    v1.close();
    const store = new ModuleStore(path);
    expect(store.schemaVersion).toBe(MIGRATIONS.length);
    expect(store.getHost("203.0.113.5")).toMatchObject({ affairs: 1, recent: [100], vhost: null });
  });

  test("a host keeps its latest counted lines, oldest first, in its row", () => {
    let ring: string | null = null;
    for (let i = 1; i <= 7; i++) ring = appendCountedLines(ring, [{ time: 100 + i, rule: "failed-password", line: `line ${i}\twith a tab` }]);
    expect(parseCountedLines(ring).map((l) => l.line)).toEqual([3, 4, 5, 6, 7].map((i) => `line ${i}\twith a tab`));
    expect(parseCountedLines(ring)[0]).toEqual({ time: 103, rule: "failed-password", line: "line 3\twith a tab" });
    /* a journal message with a newline stays one entry */
    expect(parseCountedLines(appendCountedLines(null, [{ time: 1, rule: "r", line: "a\nb" }]))).toEqual([{ time: 1, rule: "r", line: "a b" }]);
    /* several lines at once make the ring that one at a time makes */
    const counted = (i: number) => ({ time: 200 + i, rule: "r", line: `more ${i}` });
    for (const n of [1, 2, 4, 5, 8]) {
      let oneByOne = ring;
      for (let i = 0; i < n; i++) oneByOne = appendCountedLines(oneByOne, [counted(i)]);
      expect(appendCountedLines(ring, Array.from({ length: n }, (_, i) => counted(i)))).toBe(oneByOne!);
      expect(appendCountedLines(null, Array.from({ length: n }, (_, i) => counted(i)))).toBe(parseCountedLines(oneByOne).slice(-n).map((l) => `${l.time}\tr\t${l.line}`).join("\n"));
    }
    const path = tmp();
    const store = new ModuleStore(path);
    store.transaction(() => store.putHost({ ...newHost("203.0.113.5", 100, "failed-password"), lines: ring }));
    /* a record without lines (a manual ban's) leaves them as they are */
    store.transaction(() => store.putHost({ ...newHost("203.0.113.5", 200, "manual"), bannedUntil: 900 }));
    expect(parseCountedLines(store.getHost("203.0.113.5")?.lines)).toHaveLength(LINES_KEPT);
    store.close();
    expect(countedLines(new Database(path, { readonly: true }), "203.0.113.5").map((l) => l.time)).toEqual([103, 104, 105, 106, 107]);
  });

  test("a version 6 database's counted lines move into their hosts, in the order why showed them", () => {
    const path = tmp();
    const v6 = openDatabase(path, MIGRATIONS.slice(0, 6));
    /* 7 lines written: the ring's slots 2, 3, 4, 0, 1 hold the 3rd to 7th (two of them at one second) */
    v6.exec(`INSERT INTO hosts (address, affairs, recent, first_seen, last_seen, last_rule, lines_written) VALUES ('203.0.113.5', 0, '', 1, 7, 'r', 7), ('203.0.113.6', 0, '', 1, 1, 'r', 0);
      INSERT INTO affair_lines VALUES ('203.0.113.5', 0, 6, 'r', 'sixth'), ('203.0.113.5', 1, 6, 'r', 'seventh'), ('203.0.113.5', 2, 3, 'r', 'third'), ('203.0.113.5', 3, 4, 'r', 'fourth'), ('203.0.113.5', 4, 5, 'r', 'fifth');`);
    expect(countedLines(v6, "203.0.113.5").map((l) => l.line)).toEqual(["third", "fourth", "fifth", "sixth", "seventh"]);
    v6.close();
    const store = new ModuleStore(path);
    expect(store.schemaVersion).toBe(MIGRATIONS.length);
    expect(parseCountedLines(store.getHost("203.0.113.5")?.lines).map((l) => l.line)).toEqual(["third", "fourth", "fifth", "sixth", "seventh"]);
    expect(store.getHost("203.0.113.6")?.lines).toBeUndefined();
    store.close();
  });

  test("outbox seqs never come back: a decision queued after the outbox emptied comes after a publisher's cursor", () => {
    const path = tmp();
    const v7 = openDatabase(path, MIGRATIONS.slice(0, 7));
    v7.exec(`INSERT INTO outbox (decision) VALUES ('a'), ('b'), ('c')`);
    v7.close();
    const store = new ModuleStore(path);
    expect(store.outbox(10).map((r) => [r.seq, r.decision])).toEqual([[1, "a"], [2, "b"], [3, "c"]]);
    /* all three published (the cursor is 3), then deleted */
    store.deleteOutbox(3);
    store.addOutbox("d");
    expect(store.outbox(10, 3).map((r) => [r.seq, r.decision])).toEqual([[4, "d"]]);
    expect(store.outboxLength(3)).toBe(1);
    expect(store.outboxLength(4)).toBe(0);
    store.close();
  });

  test("old events go in batches by time; the decisions of a ban in force and the newest event stay; a new file can give pages back", () => {
    const store = new ModuleStore(tmp());
    const ev = (time: number, address: string, kind: EventKind) => ({ event: { time, address, rule: "r", kind, value: 1, user: null, vhost: null }, hostClass: null });
    store.putHost({ ...newHost("203.0.113.1", 10, "r"), bannedUntil: 5000 });
    /* written out of time order, as a replay of old logs writes them */
    store.addEvents([ev(10, "192.0.2.2", "affair"), ev(10, "203.0.113.1", "ban"), ev(10, "203.0.113.1", "affair"), ev(20, "192.0.2.3", "ban"), ev(10, "192.0.2.3", "unban"), ev(5, "192.0.2.4", "affair"), ev(30, "192.0.2.1", "affair")]);
    expect(store.expirableEventCount(25, 100)).toBe(5);
    const batches: number[] = [];
    for (let from, left = true; left; ) {
      const batch = store.deleteExpirableEvents(25, 100, 2, from);
      batches.push(batch.deleted);
      left = batch.next !== null;
      from = batch.next ?? undefined;
    }
    expect(batches.reduce((a, b) => a + b)).toBe(5);
    expect(store.events().map((e) => [e.time, e.address, e.kind])).toEqual([[10, "203.0.113.1", "ban"], [30, "192.0.2.1", "affair"]]);
    /* past the ban's end its event goes too; the newest event stays whatever its age (the unbans cursor) */
    expect(store.expirableEventCount(1000, 6000)).toBe(1);
    expect(store.pages().incremental).toBe(true);
    store.close();
  });

  test("a database from a newer watcher is refused", () => {
    const path = tmp();
    new ModuleStore(path).close();
    const db = new Database(path);
    db.exec("PRAGMA user_version = 99");
    db.close();
    expect(() => new ModuleStore(path)).toThrow(WatcherError);
  });
});

describe("migrations", () => {
  test("all of them or none: a step that fails leaves the database at its old version, with none of the steps before it", () => {
    const path = tmp();
    expect(() => openDatabase(path, ["CREATE TABLE a (x)", "CREATE TABLE b (x)", "NOT SQL"])).toThrow(WatcherError);
    const db = new Database(path);
    /* a reader (why, report) never meets a version in between, which it would refuse */
    expect(schemaVersion(db)).toBe(0);
    expect(db.query("SELECT name FROM sqlite_master").all()).toEqual([]);
    db.close();
    openDatabase(path, ["CREATE TABLE a (x)", "CREATE TABLE b (x)"]).close();
    const done = new Database(path);
    expect(schemaVersion(done)).toBe(2);
    done.close();
  });
});

describe("fleet.db and the dry-run firewall's database", () => {
  test("files written before schema versions are taken over in place, their rows kept; a newer one is refused", async () => {
    const dir = dirname(tmp());
    mkdirSync(dir, { recursive: true });
    const fleetPath = join(dir, "fleet.db");
    const old = new Database(fleetPath);
    old.exec(`CREATE TABLE bans (address TEXT PRIMARY KEY, until INTEGER NOT NULL, module TEXT NOT NULL, rule TEXT NOT NULL, origin TEXT NOT NULL) WITHOUT ROWID;
      INSERT INTO bans VALUES ('203.0.113.7', 4000000000, 'LG', 'failed-auth', 'node-b');`);
    old.close();
    const fleet = new FleetStore(fleetPath);
    expect(fleet.activeBans(100).map((b) => b.address)).toEqual(["203.0.113.7"]);
    fleet.close();
    expect((new Database(fleetPath).query("PRAGMA user_version").get() as { user_version: number }).user_version).toBe(1);

    const dryPath = join(dir, "firewall-dryrun.db");
    const oldDry = new Database(dryPath);
    oldDry.exec(`CREATE TABLE sets (name TEXT PRIMARY KEY, kind TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE elements (set_name TEXT NOT NULL, address TEXT NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (set_name, address)) WITHOUT ROWID;
      INSERT INTO sets VALUES ('watcher_LG', 'addresses'); INSERT INTO elements VALUES ('watcher_LG', '203.0.113.8', 0);`);
    oldDry.close();
    const dry = new DryRunFirewall(dryPath, join(dir, "dry.log"));
    expect((await dry.list("watcher_LG")).map((e) => e.address)).toEqual(["203.0.113.8"]);
    await dry.close();

    const newer = new Database(fleetPath);
    newer.exec("PRAGMA user_version = 99");
    newer.close();
    expect(() => new FleetStore(fleetPath)).toThrow(WatcherError);
  });
});
