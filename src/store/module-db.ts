/**
 * One SQLite database per module (bun:sqlite, WAL, busy_timeout), schema versioned in
 * PRAGMA user_version. Hosts hold the counting state of each address; events keep what
 * happened (affairs, bans, unbans) for statistics and reports.
 */
import type { Database, Statement } from "bun:sqlite";
import { WatcherError } from "../core/errors";
import { openDatabase, openReadOnlyDatabase, schemaVersion } from "./sqlite";

export interface HostRecord {
  address: string;
  /** DNS class (NXDOMAIN, FAKEHOST, TRUEHOST, UNKNOWN); null until classified */
  class: string | null;
  /** affairs within findTime of the last one (as of the last update) */
  affairs: number;
  /** times of those affairs, oldest first: the sliding window (at most maxAffairs) */
  recent: number[];
  /** how many of the oldest `recent` a DNS class preset (NXDOMAIN, FAKEHOST) rather than the logs */
  preset: number;
  firstSeen: number;
  lastSeen: number;
  banCount: number;
  /** epoch seconds; 0 when never banned */
  bannedUntil: number;
  lastRule: string;
  /** the web server instance of the last affair (WB), else null */
  vhost: string | null;
  /**
   * A prefix's record (its address is a network, `2001:db8:1:2::/64`): the affairs and bans of
   * its addresses within findTime, as JSON of pipeline/prefixes.ts. Absent or null for an address.
   */
  prefixWindow?: string | null;
  /**
   * Its latest LINES_KEPT counted log lines, oldest first, as the text appendCountedLines makes
   * (`watcher why` shows them). Absent: left as stored (putHost never clears them).
   */
  lines?: string | null;
}

/** How many of a host's latest counted log lines are kept (`watcher why`), and how many bytes of each. */
export const LINES_KEPT = 5;
export const LINE_EXCERPT_BYTES = 512;

/** banned_until of a ban that lasts until it is lifted (`ban --time forever`): 9999-12-31T23:59:59Z. */
export const PERMANENT_UNTIL = 253_402_300_799;

/** A recorded ban's time left, as a kernel element's timeout: Infinity (the longest the backend takes) for one kept until unbanned. */
export function kernelTimeout(bannedUntil: number, now: number): number {
  return bannedUntil >= PERMANENT_UNTIL ? Infinity : bannedUntil - now;
}

/** A counted log line, as `watcher why` shows it. */
export interface CountedLine {
  time: number;
  rule: string;
  /** at most LINE_EXCERPT_BYTES bytes of the line */
  line: string;
}

/*
 * A host's counted lines are kept in its row, one per text line: `time TAB rule TAB line`. A log
 * line never holds a newline (lines are split at them) and a rule name never a tab, so no escaping
 * is needed, and the row is written once per chunk with its counts (a row per line cost a write
 * per affair, and the pages of a second table in every commit).
 */

/** The ring `lines` with `added` appended (oldest first), the oldest dropped beyond LINES_KEPT. */
export function appendCountedLines(lines: string | null | undefined, added: readonly CountedLine[]): string {
  /* a journal message may hold newlines: they would split the entry */
  const entries = added.slice(-LINES_KEPT).map((l) => `${l.time}\t${l.rule}\t${l.line.includes("\n") ? l.line.replaceAll("\n", " ") : l.line}`);
  const text = entries.join("\n");
  if (!lines || entries.length === LINES_KEPT) return text;
  let cut = lines.length;
  for (let kept = entries.length; kept < LINES_KEPT && cut > 0; kept++) cut = lines.lastIndexOf("\n", cut - 1);
  return `${cut <= 0 ? lines : lines.slice(cut + 1)}\n${text}`;
}

/** A host's counted lines, oldest first. */
export function parseCountedLines(lines: string | null | undefined): CountedLine[] {
  if (!lines) return [];
  return lines.split("\n").map((entry) => {
    const a = entry.indexOf("\t");
    const b = entry.indexOf("\t", a + 1);
    return { time: Number(entry.slice(0, a)), rule: entry.slice(a + 1, b), line: entry.slice(b + 1) };
  });
}

export type EventKind = "affair" | "ban" | "unban";

/** A place in the events' time order (index events_time): a time and, among equal times, a rowid. */
export interface EventCursor {
  time: number;
  rowid: number;
}

export interface EventRecord {
  time: number;
  address: string;
  rule: string;
  kind: EventKind;
  /** affairs for "affair", ban seconds for "ban" */
  value: number;
  /** the account the line named (MB, LG), at most 64 characters */
  user: string | null;
  vhost: string | null;
  /** why a ban was made, where the rule does not say it (a prefix ban: its affairs and addresses) */
  reason?: string | null;
}

/** Migrations in order; user_version is the number applied. Never edit a released one. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE hosts (
     address      TEXT PRIMARY KEY,
     class        TEXT,
     affairs      INTEGER NOT NULL,
     recent       TEXT NOT NULL,
     first_seen   INTEGER NOT NULL,
     last_seen    INTEGER NOT NULL,
     ban_count    INTEGER NOT NULL DEFAULT 0,
     banned_until INTEGER NOT NULL DEFAULT 0,
     last_rule    TEXT NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX hosts_banned_until ON hosts (banned_until) WHERE banned_until > 0;
   CREATE TABLE events (
     time    INTEGER NOT NULL,
     address TEXT NOT NULL,
     rule    TEXT NOT NULL,
     kind    TEXT NOT NULL CHECK (kind IN ('affair', 'ban', 'unban')),
     value   INTEGER NOT NULL,
     class   TEXT
   );
   CREATE INDEX events_time ON events (time);`,
  /* 2: which account was attacked (mail, logins) and which web server instance (WB) */
  `ALTER TABLE events ADD COLUMN user TEXT;
   ALTER TABLE events ADD COLUMN vhost TEXT;
   ALTER TABLE hosts ADD COLUMN vhost TEXT;
   CREATE INDEX events_vhost ON events (vhost, time) WHERE vhost IS NOT NULL;`,
  /* 3: fleet decisions waiting for Redis, written in the transaction of the ban they publish */
  `CREATE TABLE outbox (seq INTEGER PRIMARY KEY, decision TEXT NOT NULL);`,
  /* 4: affairs a DNS class preset, so that a ban's reason tells them from the logged ones */
  `ALTER TABLE hosts ADD COLUMN preset INTEGER NOT NULL DEFAULT 0;`,
  /* 5: prefix bans (a rotating IPv6 /64): a prefix's window of affairs and bans, and a ban's reason */
  `ALTER TABLE hosts ADD COLUMN prefix_window TEXT;
   ALTER TABLE events ADD COLUMN reason TEXT;`,
  /* 6: a host's latest counted lines, a ring of LINES_KEPT slots, gone when the host expires
     (a rowid table: rewriting a slot cost several times more WITHOUT ROWID, measured);
     the bans and unbans of an address found without reading every affair */
  `ALTER TABLE hosts ADD COLUMN lines_written INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE affair_lines (
     address TEXT NOT NULL,
     slot    INTEGER NOT NULL,
     time    INTEGER NOT NULL,
     rule    TEXT NOT NULL,
     line    TEXT NOT NULL,
     PRIMARY KEY (address, slot)
   );
   CREATE INDEX events_decisions ON events (address, time) WHERE kind <> 'affair';`,
  /* 7: a host's counted lines move into its row (appendCountedLine), in the order `why` showed
     them (time, then the ring's order; 5 was LINES_KEPT): one row write per host and chunk */
  `ALTER TABLE hosts ADD COLUMN lines TEXT;
   UPDATE hosts SET lines = (
     SELECT group_concat(l.time || char(9) || l.rule || char(9) || l.line, char(10) ORDER BY l.time, (l.slot - hosts.lines_written % 5 + 5) % 5)
       FROM affair_lines l WHERE l.address = hosts.address)
    WHERE lines_written > 0;
   DROP TABLE affair_lines;
   ALTER TABLE hosts DROP COLUMN lines_written;`,
  /* 8: outbox seqs never come back once their rows are gone (AUTOINCREMENT): a running module
     publishes from a cursor (the last seq it sent) and deletes what went later */
  `CREATE TABLE outbox_next (seq INTEGER PRIMARY KEY AUTOINCREMENT, decision TEXT NOT NULL);
   INSERT INTO outbox_next (seq, decision) SELECT seq, decision FROM outbox;
   DROP TABLE outbox;
   ALTER TABLE outbox_next RENAME TO outbox;`,
];

/** A hosts row as SQLite returns it. */
export interface HostRow {
  address: string;
  class: string | null;
  affairs: number;
  recent: string;
  first_seen: number;
  last_seen: number;
  ban_count: number;
  banned_until: number;
  last_rule: string;
  vhost: string | null;
  preset: number;
  prefix_window: string | null;
  /** absent before schema 7 */
  lines?: string | null;
}

export function hostFromRow(r: HostRow): HostRecord {
  return {
    address: r.address,
    class: r.class,
    affairs: r.affairs,
    recent: r.recent === "" ? [] : r.recent.split(",").map(Number),
    preset: r.preset,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    banCount: r.ban_count,
    bannedUntil: r.banned_until,
    lastRule: r.last_rule,
    vhost: r.vhost,
    ...(r.prefix_window !== null ? { prefixWindow: r.prefix_window } : {}),
    ...(r.lines ? { lines: r.lines } : {}),
  };
}

type EventValues = [number, string, string, string, number, string | null, string | null, string | null, string | null];
const EVENT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
const EVENTS_A_STATEMENT = 32;

function eventValues(e: EventRecord, hostClass: string | null): EventValues {
  return [e.time, e.address, e.rule, e.kind, e.value, hostClass, e.user === null ? null : e.user.slice(0, 64), e.vhost, e.reason ?? null];
}

export class ModuleStore {
  private readonly db: Database;
  private readonly selectHost: Statement<HostRow, [string]>;
  private readonly upsertHost: Statement<unknown, [string, string | null, number, string, number, number, number, number, string, string | null, number, string | null, string | null]>;
  private readonly insertOutbox: Statement<unknown, [string]>;
  private readonly insertEvent: Statement<unknown, EventValues>;
  private readonly insertEvents: Statement<unknown, EventValues[number][]>;

  /** `readOnly`: for commands that only look (a dry run on a read-only root); the database must exist and be current. */
  constructor(
    readonly path: string,
    { readOnly = false } = {},
  ) {
    if (readOnly) {
      this.db = openReadOnlyDatabase(path);
      if (this.schemaVersion !== MIGRATIONS.length) {
        this.db.close();
        throw new WatcherError(`database ${path} has schema version ${this.schemaVersion}, not ${MIGRATIONS.length}; run "watcher module" or "watcher restart" once to upgrade it`);
      }
    } else {
      this.db = openDatabase(path, MIGRATIONS, { incrementalVacuum: true });
    }
    this.selectHost = this.db.query("SELECT * FROM hosts WHERE address = ?");
    this.upsertHost = this.db.query(
      `INSERT INTO hosts (address, class, affairs, recent, first_seen, last_seen, ban_count, banned_until, last_rule, vhost, preset, prefix_window, lines)
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
       ON CONFLICT (address) DO UPDATE SET class = ?2, affairs = ?3, recent = ?4, first_seen = ?5,
         last_seen = ?6, ban_count = ?7, banned_until = ?8, last_rule = ?9, vhost = ?10, preset = ?11, prefix_window = ?12, lines = coalesce(?13, lines)`,
    );
    this.insertOutbox = this.db.query("INSERT INTO outbox (decision) VALUES (?)");
    this.insertEvent = this.db.query(`INSERT INTO events (time, address, rule, kind, value, class, user, vhost, reason) VALUES ${EVENT_ROW}`);
    this.insertEvents = this.db.query(`INSERT INTO events (time, address, rule, kind, value, class, user, vhost, reason) VALUES ${Array(EVENTS_A_STATEMENT).fill(EVENT_ROW).join(", ")}`);
  }

  get schemaVersion(): number {
    return schemaVersion(this.db);
  }

  /**
   * Run fn in one write transaction (one per read chunk on the hot path). It begins IMMEDIATE:
   * in WAL mode a transaction that begins as a reader and then writes, after another connection
   * (expire, `watcher ban`) committed, gets SQLITE_BUSY at once whatever busy_timeout says.
   */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * A write transaction left open across calls, until commitOpen() or rollbackOpen(): a replay's
   * chunks whose writes wait in memory (PendingWrites) read in it, so no other writer (`watcher
   * ban`, `unban`) comes between their reads and those writes; it waits for them (busy_timeout).
   * Begins IMMEDIATE, as transaction() does.
   */
  beginOpen(): void {
    this.db.exec("BEGIN IMMEDIATE");
  }

  commitOpen(): void {
    this.db.exec("COMMIT");
  }

  rollbackOpen(): void {
    if (this.db.inTransaction) this.db.exec("ROLLBACK");
  }

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  /**
   * SQLite no longer copies the WAL into the database (and syncs both) inside whichever commit
   * crosses 1,000 pages, only past 10,000 (40 MB). The resident module calls checkpoint() from its
   * timer in quiet moments instead (CheckpointPolicy): those syncs took up to 47 ms, and the line
   * whose commit ran one waited for it; only a flood reaches the bound. A replay (`inject --direct`), which
   * rewrites the same hosts' pages commit after commit, leaves the copy to the bound and its close.
   */
  deferCheckpoints(): void {
    this.db.exec("PRAGMA wal_autocheckpoint = 10000");
  }

  /**
   * Copy what the WAL holds into the database, without waiting for readers (a PASSIVE
   * checkpoint). It never throws: on a full disk the frames stay in the WAL for the next try, and
   * the commits' own handling of the full disk (persist.ts) says so.
   */
  checkpoint(): void {
    try {
      this.db.exec("PRAGMA wal_checkpoint(PASSIVE)");
    } catch {
      /* tried again on the next timer run */
    }
  }

  getHost(address: string): HostRecord | null {
    const row = this.selectHost.get(address);
    return row ? hostFromRow(row) : null;
  }

  putHost(h: HostRecord): void {
    this.upsertHost.run(h.address, h.class, h.affairs, h.recent.join(","), h.firstSeen, h.lastSeen, h.banCount, h.bannedUntil, h.lastRule, h.vhost, h.preset, h.prefixWindow ?? null, h.lines ?? null);
  }

  addEvent(e: EventRecord, hostClass: string | null): void {
    this.insertEvent.run(...eventValues(e, hostClass));
  }

  /** Events in order, EVENTS_A_STATEMENT rows an INSERT: a statement run per event cost a third more. */
  addEvents(events: readonly { event: EventRecord; hostClass: string | null }[]): void {
    let i = 0;
    for (; i + EVENTS_A_STATEMENT <= events.length; i += EVENTS_A_STATEMENT) {
      const values: EventValues[number][] = [];
      for (let j = i; j < i + EVENTS_A_STATEMENT; j++) values.push(...eventValues(events[j]!.event, events[j]!.hostClass));
      this.insertEvents.run(...values);
    }
    for (; i < events.length; i++) this.addEvent(events[i]!.event, events[i]!.hostClass);
  }

  /* each `banned_until > ?` query spells out `banned_until > 0` too: only then may SQLite answer it
     from the partial index hosts_banned_until instead of reading every host */

  /** Hosts whose ban lasts beyond `now`, soonest expiry first. */
  activeBans(now: number): HostRecord[] {
    return this.db
      .query<HostRow, [number]>("SELECT * FROM hosts WHERE banned_until > ?1 AND banned_until > 0 ORDER BY banned_until")
      .all(now)
      .map(hostFromRow);
  }

  /**
   * The addresses whose ban lasts beyond `now`, and until when, soonest expiry first: what a
   * restore loads. Two columns, not activeBans' whole rows (5-7x faster for 100,000 bans), and
   * `banned_until > 0` spelt out, so that the partial index hosts_banned_until answers it alone.
   */
  activeBanTimes(now: number): { address: string; bannedUntil: number }[] {
    return this.db
      .query<{ address: string; bannedUntil: number }, [number]>("SELECT address, banned_until AS bannedUntil FROM hosts WHERE banned_until > ?1 AND banned_until > 0 ORDER BY banned_until")
      .all(now);
  }

  /** Network bans (prefixes, manual CIDRs) lasting beyond `now`. */
  bannedNetworks(now: number): HostRecord[] {
    return this.db.query<HostRow, [number]>("SELECT * FROM hosts WHERE banned_until > ?1 AND banned_until > 0 AND address LIKE '%/%'").all(now).map(hostFromRow);
  }

  /** Unbans recorded after event `after` (a rowid; 0: the start), oldest first, and the last event's rowid: a cursor for "lifted since". */
  unbansAfter(after: number): { unbans: { rowid: number; address: string }[]; last: number } {
    const unbans = this.db.query<{ rowid: number; address: string }, [number]>("SELECT rowid, address FROM events WHERE rowid > ? AND kind = 'unban' ORDER BY rowid").all(after);
    const last = this.db.query<{ last: number | null }, []>("SELECT MAX(rowid) last FROM events").get()?.last ?? 0;
    return { unbans, last: Math.max(last, unbans.at(-1)?.rowid ?? 0) };
  }

  /** Hosts banned at or after `since` (a ban is the host's last sight) whose ban lasts beyond `now`. */
  bansSince(since: number, now: number): HostRecord[] {
    return this.db
      .query<HostRow, [number, number]>("SELECT * FROM hosts WHERE banned_until > ?1 AND banned_until > 0 AND last_seen >= ?2")
      .all(now, since)
      .map(hostFromRow);
  }

  /**
   * Hosts expiry may forget: last affair before `lastSeenBefore` and no ban running at `now`. A
   * running ban keeps its host (a ban until lifted, PERMANENT_UNTIL, always): forgetting it would
   * end the ban early and lose the ban count that lengthens the next one.
   */
  expirableHosts(lastSeenBefore: number, now: number): HostRecord[] {
    return this.db.query<HostRow, [number, number]>("SELECT * FROM hosts WHERE last_seen < ? AND banned_until <= ?").all(lastSeenBefore, now).map(hostFromRow);
  }

  /** Forget these hosts (and their counted lines) if they are still expirable: an affair or a ban that came meanwhile keeps its host. */
  deleteExpirableHosts(addresses: readonly string[], lastSeenBefore: number, now: number): void {
    const del = this.db.query("DELETE FROM hosts WHERE address = ? AND last_seen < ? AND banned_until <= ?");
    this.transaction(() => {
      for (const a of addresses) del.run(a, lastSeenBefore, now);
    });
  }

  /**
   * Events expiry deletes: older than `before`, except the bans and unbans of a host whose ban
   * runs at `now` (`bans` and `why` show its ban and reason however old) and the newest event (its
   * rowid is the cursor of the unbans a running module looks for, unbansAfter: were the table
   * emptied, new rowids would start again below it). The (time, rowid) walk is the order of the
   * index events_time, which holds the rowid.
   */
  private static readonly EXPIRABLE_EVENTS = `time < ?1 AND rowid < (SELECT max(rowid) FROM events)
    AND (kind = 'affair' OR NOT EXISTS (SELECT 1 FROM hosts h WHERE h.address = events.address AND h.banned_until > ?2 AND h.banned_until > 0))`;

  /** How many events deleteExpirableEvents would delete (a dry run). */
  expirableEventCount(before: number, now: number): number {
    return this.db.query<{ n: number }, [number, number]>(`SELECT count(*) n FROM events WHERE ${ModuleStore.EXPIRABLE_EVENTS}`).get(before, now)!.n;
  }

  /**
   * Delete the expirable events (see EXPIRABLE_EVENTS) among the next `limit` events older than
   * `before` after `from` in time order, in one short write transaction; returns how many went and
   * where the next batch starts (null: none is left). Batches keep the write lock short, so a
   * module's commit waits for one batch at most (its busy_timeout), never for the whole expiry.
   */
  deleteExpirableEvents(before: number, now: number, limit: number, from: EventCursor = { time: Number.MIN_SAFE_INTEGER, rowid: 0 }): { deleted: number; next: EventCursor | null } {
    return this.transaction(() => {
      const last = this.db
        .query<EventCursor, [number, number, number, number]>("SELECT time, rowid FROM events WHERE time < ?1 AND (time, rowid) > (?2, ?3) ORDER BY time, rowid LIMIT 1 OFFSET ?4")
        .get(before, from.time, from.rowid, limit - 1);
      const deleted = this.db
        .query<unknown, [number, number, number, number, number]>(
          `DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE time < ?1 AND (time, rowid) > (?3, ?4) ORDER BY time, rowid LIMIT ?5)
             AND ${ModuleStore.EXPIRABLE_EVENTS}`,
        )
        .run(before, now, from.time, from.rowid, limit).changes;
      return { deleted, next: last ?? null };
    });
  }

  /** The file's pages, those free (left by deleted rows, reused by the next writes), their size, and whether incrementalVacuum can give free ones back. */
  pages(): { total: number; free: number; size: number; incremental: boolean } {
    const pragma = (name: string) => Object.values(this.db.query(`PRAGMA ${name}`).get() as Record<string, number>)[0]!;
    return { total: pragma("page_count"), free: pragma("freelist_count"), size: pragma("page_size"), incremental: pragma("auto_vacuum") === 2 };
  }

  /** Give at most `pages` free pages back to the file system (a database with auto_vacuum INCREMENTAL), in one short write transaction. */
  incrementalVacuum(pages: number): void {
    this.db.exec(`PRAGMA incremental_vacuum(${Math.max(1, Math.floor(pages))})`);
  }

  /**
   * Rewrite the file whole with auto_vacuum INCREMENTAL, so that incrementalVacuum works on it from
   * then on (a database created before it). It holds the write lock for as long as it takes, about
   * 17 ms per MB of rows kept on the build machine, and needs that much free disk beside the file.
   */
  vacuumIntoIncremental(): void {
    this.db.exec("PRAGMA auto_vacuum = INCREMENTAL");
    this.db.exec("VACUUM");
  }

  /** A fleet decision to publish (JSON), in the caller's transaction. */
  addOutbox(decision: string): void {
    this.insertOutbox.run(decision);
  }

  /** The oldest waiting decisions after seq `after`. */
  outbox(limit: number, after = 0): { seq: number; decision: string }[] {
    return this.db.query<{ seq: number; decision: string }, [number, number]>("SELECT seq, decision FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?").all(after, limit);
  }

  /** Published: gone from the outbox. */
  deleteOutbox(throughSeq: number): void {
    this.db.query("DELETE FROM outbox WHERE seq <= ?").run(throughSeq);
  }

  /** Decisions waiting after seq `after`. */
  outboxLength(after = 0): number {
    return (this.db.query("SELECT count(*) AS n FROM outbox WHERE seq > ?").get(after) as { n: number }).n;
  }

  /** Keep at most `max` waiting decisions, dropping the oldest; returns how many were dropped. */
  trimOutbox(max: number): number {
    return this.db.query("DELETE FROM outbox WHERE seq <= (SELECT max(seq) FROM outbox) - ?").run(max).changes;
  }

  events(since = 0): EventRecord[] {
    return this.db
      .query<EventRecord, [number]>("SELECT time, address, rule, kind, value, user, vhost FROM events WHERE time >= ? ORDER BY rowid")
      .all(since);
  }

  close(): void {
    this.db.close();
  }
}
