/**
 * Read-only access to a module database for reports and statistics: every query `report` and
 * `stat` run, beside the schema they read (module-db.ts). A report never writes: it may run
 * from cron while the module writes (WAL lets readers and one writer coexist), and it must
 * not create a database for a module that never ran. Times are epoch seconds here; the
 * report turns them into ISO text.
 */
import type { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { WatcherError } from "../core/errors";
import { openReadOnlyDatabase, schemaVersion } from "./sqlite";

/** events.reason arrived with schema version 5 (module-db.ts MIGRATIONS); older databases are upgraded by the module */
const NEEDED_SCHEMA = 5;

const HOUR = 3600;

/** The module's database opened read-only, or null when the module never wrote one. */
export function openReadOnly(path: string): Database | null {
  if (!existsSync(path)) return null;
  const db = openReadOnlyDatabase(path);
  const version = schemaVersion(db);
  if (version < NEEDED_SCHEMA) {
    db.close();
    /* version 0: a module is creating the file this moment; it holds nothing yet */
    if (version === 0) return null;
    throw new WatcherError(`database ${path} has schema version ${version}, older than reports need (${NEEDED_SCHEMA}); run "watcher module" or "watcher restart" once to upgrade it`);
  }
  return db;
}

/**
 * The SQL condition (and its parameters) that keeps a query to one vhost's events, or to
 * all events. Every events query of a report goes through it, so no figure of another vhost
 * can slip into a customer's report.
 */
function vhostFilter(vhost: string | null, alias = "events"): { sql: string; params: string[] } {
  return vhost === null ? { sql: "1", params: [] } : { sql: `${alias}.vhost = ?`, params: [vhost] };
}

export interface BanRow {
  time: number;
  address: string;
  rule: string;
  /** the ban's length in seconds */
  value: number;
  vhost: string | null;
  /** when an unban lifted it before its end, else null */
  lifted: number | null;
}

/** One module's events and hosts as a report reads them, for all vhosts or one. */
export class ReportReader {
  private readonly v: { sql: string; params: string[] };

  constructor(
    private readonly db: Database,
    private readonly vhost: string | null,
  ) {
    this.v = vhostFilter(vhost);
  }

  private one<T>(sql: string, ...params: (string | number)[]): T {
    return this.db.query<T, (string | number)[]>(sql).get(...params)!;
  }

  private all<T>(sql: string, ...params: (string | number)[]): T[] {
    return this.db.query<T, (string | number)[]>(sql).all(...params);
  }

  /** Addresses the module keeps state for; with a vhost, those that attacked it since `since`. */
  tracked(since: number): number {
    /* the networks of prefix counting (`2001:db8:1:2::/64`) are reported apart */
    if (this.vhost === null) return this.one<{ n: number }>("SELECT COUNT(*) n FROM hosts WHERE instr(address, '/') = 0").n;
    return this.one<{ n: number }>(`SELECT COUNT(DISTINCT address) n FROM events WHERE kind = 'affair' AND time >= ? AND ${this.v.sql}`, since, ...this.v.params).n;
  }

  /** Addresses banned now; with a vhost, by a ban this vhost caused that is still running and not lifted since. */
  banned(now: number): number {
    if (this.vhost === null) return this.one<{ n: number }>("SELECT COUNT(*) n FROM hosts WHERE banned_until > ? AND instr(address, '/') = 0", now).n;
    const e = vhostFilter(this.vhost, "e");
    return this.one<{ n: number }>(
      `SELECT COUNT(DISTINCT e.address) n FROM events e JOIN hosts h ON h.address = e.address
       WHERE e.kind = 'ban' AND e.time + e.value > ? AND h.banned_until > ? AND ${e.sql}`,
      now,
      now,
      ...e.params,
    ).n;
  }

  affairsSince(since: number): number {
    return this.one<{ n: number }>(`SELECT COALESCE(SUM(value), 0) n FROM events WHERE kind = 'affair' AND time >= ? AND ${this.v.sql}`, since, ...this.v.params).n;
  }

  byClass(since: number): { class: string | null; addresses: number; affairs: number }[] {
    return this.all(
      `SELECT class, COUNT(DISTINCT address) addresses, SUM(value) affairs FROM events
       WHERE kind = 'affair' AND time >= ? AND ${this.v.sql} GROUP BY class`,
      since,
      ...this.v.params,
    );
  }

  byRule(since: number): { rule: string; affairs: number; addresses: number; bans: number }[] {
    return this.all(
      `SELECT rule, SUM(CASE kind WHEN 'affair' THEN value ELSE 0 END) affairs, COUNT(DISTINCT address) addresses, SUM(kind = 'ban') bans
       FROM events WHERE kind IN ('affair', 'ban') AND time >= ? AND ${this.v.sql}
       GROUP BY rule ORDER BY affairs DESC, bans DESC, rule`,
      since,
      ...this.v.params,
    );
  }

  topAttackers(since: number, top: number): { address: string; affairs: number; bans: number; last: number; class: string | null }[] {
    /* SQLite takes the bare column `class` from the row of MAX(time): the latest class */
    return this.all(
      `SELECT address, SUM(CASE kind WHEN 'affair' THEN value ELSE 0 END) affairs, SUM(kind = 'ban') bans, MAX(time) last, class
       FROM events WHERE kind IN ('affair', 'ban') AND time >= ? AND ${this.v.sql}
       GROUP BY address ORDER BY affairs DESC, bans DESC, address LIMIT ?`,
      since,
      ...this.v.params,
      top,
    );
  }

  /** The latest bans, newest first, each with the unban that lifted it early (if any). */
  latestBans(since: number, top: number): BanRow[] {
    return this.all(
      `SELECT time, address, rule, value, vhost,
         (SELECT MIN(u.time) FROM events u WHERE u.address = b.address AND u.kind = 'unban' AND u.rowid > b.rowid AND u.time < b.time + b.value) lifted
       FROM events b WHERE kind = 'ban' AND time >= ? AND ${vhostFilter(this.vhost, "b").sql} ORDER BY time DESC, rowid DESC LIMIT ?`,
      since,
      ...this.v.params,
      top,
    );
  }

  /** Affairs in each of the 24 hours from `hourStart` (hours without any are absent). */
  hourly(hourStart: number): { h: number; n: number }[] {
    return this.all(
      `SELECT (time - ?) / ${HOUR} h, SUM(value) n FROM events WHERE kind = 'affair' AND time >= ? AND time < ? AND ${this.v.sql} GROUP BY h`,
      hourStart,
      hourStart,
      hourStart + 24 * HOUR,
      ...this.v.params,
    );
  }

  /** The prefix bans in force (hosts rows whose address is a network), soonest end first, with the reason of each one's last ban. */
  prefixBans(now: number): { address: string; banned_until: number; ban_count: number; reason: string | null }[] {
    return this.all(
      `SELECT address, banned_until, ban_count,
         (SELECT reason FROM events e WHERE e.address = hosts.address AND e.kind = 'ban' ORDER BY rowid DESC LIMIT 1) reason
       FROM hosts WHERE banned_until > ? AND instr(address, '/') > 0 ORDER BY banned_until, address`,
      now,
    );
  }

  /** The vhosts the events name, for one report each. */
  vhosts(): string[] {
    return this.all<{ vhost: string }>("SELECT DISTINCT vhost FROM events WHERE vhost IS NOT NULL ORDER BY vhost").map((r) => r.vhost);
  }

  /** `stat`'s rows of one period length, in period, rule, class, vhost order, streamed. */
  *statRows(periodSeconds: number, from: number, to: number): Generator<{ start: number; rule: string; class: string; vhost: string; events: number; affairs: number; addresses: number; bans: number }> {
    const size = Math.floor(periodSeconds);
    yield* this.db
      .query<{ start: number; rule: string; class: string; vhost: string; events: number; affairs: number; addresses: number; bans: number }, [number, number]>(
        `SELECT (time / ${size}) * ${size} start, rule, COALESCE(class, '') class, COALESCE(vhost, '') vhost,
           SUM(kind = 'affair') events, SUM(CASE kind WHEN 'affair' THEN value ELSE 0 END) affairs,
           COUNT(DISTINCT address) addresses, SUM(kind = 'ban') bans
         FROM events WHERE kind IN ('affair', 'ban') AND time >= ? AND time < ?
         GROUP BY start, rule, class, vhost ORDER BY start, rule, class, vhost`,
      )
      .iterate(from, to);
  }
}
