/**
 * The read queries of `watcher bans` and `watcher why`: bans in force in a module database and
 * in fleet.db, and everything one address left behind. They only read (a database opened
 * read-only, never created), so they run beside the modules that write, and on a read-only root.
 */
import type { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { WatcherError } from "../core/errors";
import type { FleetBan, ReceivedDecision } from "./fleet-db";
import { type CountedLine, type EventKind, type HostRecord, type HostRow, hostFromRow, LINES_KEPT, parseCountedLines } from "./module-db";
import { openReadOnlyDatabase, schemaVersion } from "./sqlite";

/** events.reason arrived with schema version 5, affair_lines with 6, hosts.lines (in place of affair_lines) with 7 (module-db.ts) */
const REASON_SCHEMA = 5;
const LINES_SCHEMA = 6;
const HOST_LINES_SCHEMA = 7;

/** A database opened read-only, or null when it was never written. */
export function openForReading(path: string): Database | null {
  return existsSync(path) ? openReadOnlyDatabase(path) : null;
}

/** A module database these queries can read: schema 5 or later (a module run once upgrades it). */
export function openModuleForReading(path: string): Database | null {
  const db = openForReading(path);
  const version = db ? schemaVersion(db) : REASON_SCHEMA;
  if (db && version < REASON_SCHEMA) {
    db.close();
    /* version 0: a module is creating the file this moment; it holds nothing yet */
    if (version === 0) return null;
    throw new WatcherError(`database ${path} has schema version ${version}, older than this command reads (${REASON_SCHEMA}); run "watcher module" or "watcher restart" once to upgrade it`);
  }
  return db;
}

/** A ban in force in a module: the host's state and the ban event that made it. */
export interface ModuleBanRow {
  readonly address: string;
  readonly until: number;
  readonly class: string | null;
  readonly banCount: number;
  readonly vhost: string | null;
  /** the ban event, null when it is not recorded (a database older than its events) */
  readonly since: number | null;
  readonly seconds: number | null;
  readonly rule: string;
  readonly reason: string | null;
}

/** Every ban of the module lasting beyond `now`, with the latest ban event of each. */
export function moduleBans(db: Database, now: number): ModuleBanRow[] {
  return db
    .query<ModuleBanRow, [number]>(
      `SELECT h.address, h.banned_until AS until, h.class, h.ban_count AS banCount, h.vhost,
              e.time AS since, e.value AS seconds, coalesce(e.rule, h.last_rule) AS rule, e.reason
         FROM hosts h
         LEFT JOIN events e ON e.rowid = (
           SELECT rowid FROM events WHERE address = h.address AND kind <> 'affair' AND kind = 'ban' ORDER BY time DESC, rowid DESC LIMIT 1)
        WHERE h.banned_until > ?`,
    )
    .all(now);
}

/** Network rows (prefixes, manual CIDRs) of the module, banned or counting. */
export function networkHosts(db: Database): HostRecord[] {
  return db
    .query<HostRow, []>("SELECT * FROM hosts WHERE address LIKE '%/%'")
    .all()
    .map(hostFromRow);
}

export function hostOfAddress(db: Database, address: string): HostRecord | null {
  const row = db.query<HostRow, [string]>("SELECT * FROM hosts WHERE address = ?").get(address);
  return row ? hostFromRow(row) : null;
}

export interface StoredEvent {
  readonly time: number;
  readonly kind: EventKind;
  readonly rule: string;
  readonly value: number;
  readonly class: string | null;
  readonly user: string | null;
  readonly vhost: string | null;
  readonly reason: string | null;
}

/** Every event of `address` (an address or a network), oldest first; at most `limit`, the latest kept. */
export function eventsOf(db: Database, address: string, limit: number): { events: StoredEvent[]; total: number } {
  const total = (db.query("SELECT count(*) AS n FROM events WHERE address = ?").get(address) as { n: number }).n;
  const events = db
    .query<StoredEvent, [string, number]>(
      `SELECT * FROM (SELECT rowid AS id, time, kind, rule, value, class, user, vhost, reason FROM events WHERE address = ? ORDER BY time DESC, rowid DESC LIMIT ?)
        ORDER BY time, id`,
    )
    .all(address, limit)
    .map(({ time, kind, rule, value, class: cls, user, vhost, reason }) => ({ time, kind, rule, value, class: cls, user, vhost, reason }));
  return { events, total };
}

/** Every ban and unban of `address`, oldest first (the events_decisions index: no affair is read). */
export function decisionsOf(db: Database, address: string): StoredEvent[] {
  return db
    .query<StoredEvent, [string]>("SELECT time, kind, rule, value, class, user, vhost, reason FROM events WHERE address = ? AND kind <> 'affair' ORDER BY time, rowid")
    .all(address);
}

/** The latest counted log lines of `address` (pipeline/persist.ts), oldest first. */
export function countedLines(db: Database, address: string): CountedLine[] {
  const version = schemaVersion(db);
  if (version >= HOST_LINES_SCHEMA) {
    const row = db.query<{ lines: string | null }, [string]>("SELECT lines FROM hosts WHERE address = ?").get(address);
    /* in the order they were counted; a replayed log may be slightly out of time order */
    return parseCountedLines(row?.lines).sort((a, b) => a.time - b.time);
  }
  if (version < LINES_SCHEMA) return [];
  /* schema 6 (a database its module has not upgraded yet): the ring's oldest slot is the next one to be written, lines_written % LINES_KEPT */
  return db
    .query<CountedLine, [number, string]>(
      `SELECT l.time, l.rule, l.line FROM affair_lines l LEFT JOIN hosts h ON h.address = l.address
        WHERE l.address = ?2 ORDER BY l.time, (l.slot - coalesce(h.lines_written, 0) % ?1 + ?1) % ?1`,
    )
    .all(LINES_KEPT, address);
}

/** Fleet bans in force here (fleet.db, read-only), with the time of the latest ban decision received for each. */
export function fleetBans(db: Database, now: number): (FleetBan & { since: number | null })[] {
  return db
    .query<FleetBan & { since: number | null }, [number]>(
      `SELECT address, until, module, rule, origin,
              (SELECT max(time) FROM received r WHERE r.address = b.address AND r.action = 'ban') AS since
         FROM bans b WHERE until > ?`,
    )
    .all(now);
}

/** Every decision this node received about `address`, oldest first. */
export function fleetDecisionsAbout(db: Database, address: string): ReceivedDecision[] {
  return db
    .query<ReceivedDecision, [string]>("SELECT id, action, address, module, until, rule, origin, time, outcome, received FROM received WHERE address = ? ORDER BY received, time")
    .all(address);
}
