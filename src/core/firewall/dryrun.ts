/**
 * Dry-run firewall: needs no root and touches no kernel. It keeps the sets it would have in a
 * small SQLite file and appends every operation to a log, so `report`, tests and a curious
 * operator can see exactly what a real backend would have done. It takes timeouts up to the
 * longest a kernel backend takes (nftables'), has no size limit, and refuses what no backend
 * would take (an element that is not an address, a negative timeout).
 */
import type { Database } from "bun:sqlite";
import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { WatcherError } from "../errors";
import { openDatabase, openReadOnlyDatabase } from "../../store/sqlite";
import { dirname } from "node:path";
import { NFT_MAX_TIMEOUT } from "./nftables";
import { type Firewall, type FirewallOutcome, type ListedElement, prepareElements, type SetElement, type SetSpec } from "./types";
import { nowSeconds } from "../duration";

/** The dry-run sets' schema, in user_version steps (store/sqlite.ts); 1 matches the files written before versions. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS sets (name TEXT PRIMARY KEY, kind TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS elements (set_name TEXT NOT NULL, address TEXT NOT NULL, expires_at INTEGER NOT NULL,
     PRIMARY KEY (set_name, address)) WITHOUT ROWID;`,
];

export class DryRunFirewall implements Firewall {
  readonly backend = "dryrun";
  readonly maxTimeout = NFT_MAX_TIMEOUT;
  readonly maxElements = null;
  private readonly db: Database;

  constructor(
    dbPath: string,
    private readonly logPath: string,
    private readonly clock: () => number = nowSeconds,
  ) {
    try {
      mkdirSync(dirname(logPath), { recursive: true });
      this.db = openDatabase(dbPath, MIGRATIONS);
    } catch (e) {
      /* a read-only root: `report` and `status` may still look; changing it fails then */
      if (!existsSync(dbPath)) throw new WatcherError(`cannot open the dry-run firewall: ${(e as Error).message}`);
      this.db = openReadOnlyDatabase(dbPath);
    }
  }

  /** The operation into the log; a log that cannot be written (a full disk) loses the line, never the operation. */
  private log(op: string, set: string, detail: string): void {
    try {
      appendFileSync(this.logPath, `${new Date(this.clock() * 1000).toISOString()} ${op} ${set} ${detail}\n`);
    } catch {
      /* the module says what cannot be written (its database shares the disk) */
    }
  }

  private expiry(e: SetElement): number {
    return e.timeout > 0 ? this.clock() + e.timeout : 0;
  }

  async ensure(sets: readonly SetSpec[]): Promise<void> {
    const add = this.db.query("INSERT OR IGNORE INTO sets (name, kind) VALUES (?, ?)");
    this.db.transaction(() => {
      for (const s of sets) add.run(s.name, s.kind);
    })();
  }

  async ban(set: string, given: readonly SetElement[]): Promise<FirewallOutcome> {
    const { elements, refused, clamped } = prepareElements(given, this.maxTimeout);
    if (elements.length === 0) return { refused, clamped };
    const put = this.db.query("INSERT OR REPLACE INTO elements (set_name, address, expires_at) VALUES (?, ?, ?)");
    try {
      this.db.transaction(() => {
        for (const e of elements) put.run(set, e.address, this.expiry(e));
      })();
    } catch (e) {
      /* what a kernel refusing the batch would answer: said with each ban, never the module's end */
      const reason = `the dry-run firewall could not record it: ${(e as Error).message}`;
      return { refused: [...refused, ...elements.map((el) => ({ address: el.address, reason }))], clamped };
    }
    this.log("add", set, elements.map((e) => `${e.address} timeout ${e.timeout}s`).join(", "));
    return { refused, clamped };
  }

  async unban(set: string, addresses: readonly string[]): Promise<void> {
    if (addresses.length === 0) return;
    const del = this.db.query("DELETE FROM elements WHERE set_name = ? AND address = ?");
    this.db.transaction(() => {
      for (const a of addresses) del.run(set, a);
    })();
    this.log("delete", set, addresses.join(", "));
  }

  async restore(set: string, given: readonly SetElement[]): Promise<FirewallOutcome> {
    const { elements, refused, clamped } = prepareElements(given, this.maxTimeout);
    const put = this.db.query("INSERT OR REPLACE INTO elements (set_name, address, expires_at) VALUES (?, ?, ?)");
    this.db.transaction(() => {
      this.db.query("DELETE FROM elements WHERE set_name = ?").run(set);
      for (const e of elements) put.run(set, e.address, this.expiry(e));
    })();
    this.log("restore", set, `${elements.length} elements`);
    return { refused, clamped };
  }

  async list(set: string): Promise<ListedElement[]> {
    const now = this.clock();
    return this.db
      .query<{ address: string; expires_at: number }, [string, number]>(
        "SELECT address, expires_at FROM elements WHERE set_name = ? AND (expires_at = 0 OR expires_at > ?) ORDER BY address",
      )
      .all(set, now)
      .map((r) => ({ address: r.address, timeout: r.expires_at === 0 ? 0 : r.expires_at - now }));
  }

  async intact(): Promise<boolean> {
    return true; /* nothing outside watcher changes its database */
  }

  async teardown(): Promise<void> {
    this.db.exec("DELETE FROM elements; DELETE FROM sets;");
    this.log("teardown", "*", "");
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
