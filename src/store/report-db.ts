/**
 * Read-only access to a module database for reports and statistics. A report never writes:
 * it may run from cron while the module writes (WAL lets readers and one writer coexist), and
 * it must not create a database for a module that never ran.
 */
import type { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { WatcherError } from "../core/errors";
import { openReadOnlyDatabase } from "./module-db";

/** events.vhost and hosts.vhost arrived with schema version 2 (src/core/store.ts) */
const NEEDED_SCHEMA = 2;

/** The module's database opened read-only, or null when the module never wrote one. */
export function openReadOnly(path: string): Database | null {
  if (!existsSync(path)) return null;
  const db = openReadOnlyDatabase(path);
  const version = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  if (version < NEEDED_SCHEMA) {
    db.close();
    throw new WatcherError(`database ${path} has schema version ${version}, older than reports need (${NEEDED_SCHEMA}); run "watcher module" or "watcher restart" once to upgrade it`);
  }
  return db;
}

/**
 * The SQL condition (and its parameters) that keeps a report to one vhost's events, or to
 * all events. Every events query of a report goes through it, so no figure of another vhost
 * can slip into a customer's report.
 */
export function vhostFilter(vhost: string | null, alias = "events"): { sql: string; params: string[] } {
  return vhost === null ? { sql: "1", params: [] } : { sql: `${alias}.vhost = ?`, params: [vhost] };
}
