/**
 * How every watcher database is opened: the module databases, fleet.db and the dry-run
 * firewall's. Writable ones are WAL with a busy timeout and carry their schema version in
 * PRAGMA user_version, upgraded by numbered migrations that are never edited once released;
 * read-only ones work on a root mounted read-only too.
 */
import { constants, Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { WatcherError } from "../core/errors";

export function schemaVersion(db: Database): number {
  return (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
}

/** Apply the migrations the database lacks, all in one transaction with the newest version. */
function migrate(db: Database, migrations: readonly string[]): void {
  const version = schemaVersion(db);
  if (version > migrations.length) throw new Error(`schema version ${version} is newer than this watcher knows (${migrations.length}); upgrade watcher`);
  if (version === migrations.length) return;
  /* every step in one transaction: a command reading the file meanwhile (why, report) sees the old version or the newest, never one in between that it would refuse */
  db.transaction(() => {
    for (let v = version; v < migrations.length; v++) db.exec(migrations[v]!);
    db.exec(`PRAGMA user_version = ${migrations.length}`);
  }).immediate();
}

/**
 * Open (creating it and its folder) and upgrade a database; throws WatcherError naming the file.
 * `incrementalVacuum`: a database created now can give the pages of deleted rows back to the
 * file system in small steps (PRAGMA incremental_vacuum). SQLite takes the setting only before
 * the file's first page is written (journal_mode = WAL writes it); on an existing file it waits
 * for a VACUUM, which converts it.
 */
export function openDatabase(path: string, migrations: readonly string[], { incrementalVacuum = false } = {}): Database {
  try {
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path, { create: true, strict: true });
    db.exec(`PRAGMA busy_timeout = 5000; ${incrementalVacuum ? "PRAGMA auto_vacuum = INCREMENTAL;" : ""} PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;`);
    migrate(db, migrations);
    return db;
  } catch (e) {
    throw new WatcherError(`cannot open database ${path}: ${(e as Error).message}`);
  }
}

/**
 * A database opened for reading only, e.g. by `report` on a root mounted read-only. A WAL
 * database there cannot get its shared-memory file, so SQLite refuses it; then it is opened
 * immutable, which is true of a read-only medium. Throws WatcherError naming the file.
 */
export function openReadOnlyDatabase(path: string): Database {
  const check = (db: Database) => {
    db.exec("PRAGMA busy_timeout = 5000");
    schemaVersion(db);
    return db;
  };
  try {
    return check(new Database(path, { readonly: true, strict: true }));
  } catch (first) {
    try {
      return check(new Database(`file:${encodeURI(path)}?immutable=1`, constants.SQLITE_OPEN_READONLY | constants.SQLITE_OPEN_URI));
    } catch {
      throw new WatcherError(`cannot open database ${path} for reading: ${(first as Error).message}`);
    }
  }
}
