/**
 * Every path under the root, in one place. The root holds etc/ (watcher.toml, the lists, the
 * fleet key), rules/ (rule files that override or add to the shipped ones), and var/: db/
 * (one SQLite file per module, fleet.db, the dry-run firewall), fifo/ (Watch<MODULE>), run/
 * (pid, lock, status, positions, the configuration in force), log/ and dynload/. The folders
 * that watcher.toml may move (fifoBase, dbDir, logDir, runDir) come resolved in `Paths`.
 */
import { basename, join } from "node:path";

/** The folders of a root, resolved (see core/config.ts loadConfig). */
export interface Paths {
  readonly root: string;
  readonly configFile: string;
  readonly fifoBase: string;
  readonly dbDir: string;
  readonly logDir: string;
  readonly runDir: string;
  readonly whitelist: string;
  readonly blacklist: string;
  /** `<root>/rules`: per-module rule files overriding or extending the shipped ones */
  readonly rulesDir: string;
  readonly fleetKey: string;
}

export function configFile(root: string): string {
  return join(root, "etc", "watcher.toml");
}

export function etcDir(root: string): string {
  return join(root, "etc");
}

export function rulesDir(root: string): string {
  return join(root, "rules");
}

/** The run folder where watcher.toml does not say (or cannot be read). */
export function defaultRunDir(root: string): string {
  return join(root, "var", "run");
}

/** A module's database: hosts, events, the fleet outbox. */
export function dbPath(paths: Paths, module: string): string {
  return join(paths.dbDir, `${module}.db`);
}

/** The node's record of fleet decisions (see store/fleet-db.ts). */
export function fleetDbPath(paths: Paths): string {
  return join(paths.dbDir, "fleet.db");
}

/** The dry-run firewall's sets, and its log of what a real backend would have been told. */
export function dryRunFiles(paths: Paths): { db: string; log: string } {
  return { db: join(paths.dbDir, "firewall-dryrun.db"), log: join(paths.logDir, "firewall-dryrun.log") };
}

/** The master's log when it runs in the background. */
export function masterLogFile(paths: Paths): string {
  return join(paths.logDir, "watcher.log");
}

export function fifoPath(fifoBase: string, module: string): string {
  return join(fifoBase, `Watch${module}`);
}

export function pidFile(runDir: string): string {
  return join(runDir, "watcher.pid");
}

/** The file the master holds locked while it lives; it holds the master's pid. */
export function lockFile(runDir: string): string {
  return join(runDir, "master.lock");
}

/** The master's and each module's status (`master.json`, `LG.json`, `fleet.json`). */
export function statusFile(runDir: string, name: string): string {
  return join(runDir, `${name}.json`);
}

/** Where a module remembers how far it read a file: one small JSON per file in the run folder. */
export function positionFileFor(runDir: string, module: string, path: string): string {
  const hash = new Bun.CryptoHasher("sha256").update(path).digest("hex").slice(0, 12);
  return join(runDir, `${module}.${basename(path).replace(/[^A-Za-z0-9._-]/g, "_")}.${hash}.pos`);
}

/** The journal cursor of the last entry a module processed. */
export function journalCursorFile(runDir: string, module: string): string {
  return join(runDir, `${module}.journal-cursor`);
}

/** The configuration a resident module runs on: a fixed place, found even when watcher.toml is broken. */
export function inForceFile(root: string, module: string): string {
  return join(defaultRunDir(root), `${module}.in-force.json`);
}

/** The last good copies of the blocklists, with their validators. */
export function dynloadDir(paths: Paths): string {
  return join(paths.root, "var", "dynload");
}
