/** The node's record of the fleet, `var/db/fleet.db` (see FleetStore). */
import type { Database } from "bun:sqlite";
import type { Decision } from "../fleet/protocol";
import { openDatabase, openReadOnlyDatabase } from "./sqlite";

/** What became of a decision received from another node. */
export type Outcome = "applied" | "protected" | "not-accepted" | "expired";

export interface FleetBan {
  readonly address: string;
  readonly until: number;
  readonly module: string;
  readonly rule: string;
  readonly origin: string;
}

export interface ReceivedDecision extends Decision {
  readonly outcome: Outcome;
  /** epoch seconds it reached this node */
  readonly received: number;
}

/** fleet.db's schema, in user_version steps (store/sqlite.ts); 1 matches the files written before versions. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS received (id TEXT PRIMARY KEY, action TEXT NOT NULL, address TEXT NOT NULL,
     module TEXT NOT NULL, until INTEGER NOT NULL, rule TEXT NOT NULL, origin TEXT NOT NULL, time INTEGER NOT NULL,
     outcome TEXT NOT NULL, received INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS received_time ON received (received);
   CREATE TABLE IF NOT EXISTS bans (address TEXT PRIMARY KEY, until INTEGER NOT NULL, module TEXT NOT NULL,
     rule TEXT NOT NULL, origin TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`,
];

/** Decisions of other nodes by origin, as `report` shows them. */
export interface OriginFigures {
  origin: string;
  bans: number;
  unbans: number;
  refused: number;
}

/**
 * `var/db/fleet.db`: the decisions this node received from the fleet (what `report` shows by
 * origin), the fleet bans in force here (what `start` restores into watcher_fleet), and the
 * last stream id applied, so a restart neither applies a decision twice nor misses one.
 */
export class FleetStore {
  private readonly db: Database;

  /** `readOnly`: for `report`, which must not create or upgrade the file */
  constructor(
    readonly path: string,
    { readOnly = false } = {},
  ) {
    this.db = readOnly ? openReadOnlyDatabase(path) : openDatabase(path, MIGRATIONS);
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** The last stream id applied, or null before the first sync. */
  get cursor(): string | null {
    return this.db.query<{ value: string }, []>("SELECT value FROM state WHERE key = 'cursor'").get()?.value ?? null;
  }

  set cursor(id: string) {
    this.db.query("INSERT INTO state (key, value) VALUES ('cursor', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(id);
  }

  /** Record a received decision, or what became of it when it is judged again (a full sync); its first arrival time stays. */
  receive(d: Decision, outcome: Outcome, now: number): void {
    this.db
      .query(
        `INSERT INTO received (id, action, address, module, until, rule, origin, time, outcome, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome`,
      )
      .run(d.id, d.action, d.address, d.module, d.until, d.rule, d.origin, d.time, outcome, now);
  }

  seen(id: string): boolean {
    return this.db.query("SELECT 1 FROM received WHERE id = ?").get(id) !== null;
  }

  /** Record a fleet ban; of two bans of one address, the longer stays. */
  putBan(b: FleetBan): void {
    this.db
      .query(
        `INSERT INTO bans (address, until, module, rule, origin) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (address) DO UPDATE SET until = ?2, module = ?3, rule = ?4, origin = ?5 WHERE ?2 >= until`,
      )
      .run(b.address, b.until, b.module, b.rule, b.origin);
  }

  deleteBan(address: string): boolean {
    return this.db.query("DELETE FROM bans WHERE address = ?").run(address).changes === 1;
  }

  /** Fleet bans lasting beyond `now`. */
  activeBans(now: number): FleetBan[] {
    return this.db.query<FleetBan, [number]>("SELECT address, until, module, rule, origin FROM bans WHERE until > ? ORDER BY until").all(now);
  }

  /** Replace every fleet ban (a full sync). */
  replaceBans(bans: readonly FleetBan[]): void {
    this.transaction(() => {
      this.db.exec("DELETE FROM bans");
      for (const b of bans) this.putBan(b);
    });
  }

  receivedSince(since: number): ReceivedDecision[] {
    return this.db
      .query<ReceivedDecision, [number]>("SELECT id, action, address, module, until, rule, origin, time, outcome, received FROM received WHERE received >= ? ORDER BY received")
      .all(since);
  }

  /** Decisions received since `since` for the given modules, counted by origin node. */
  byOrigin(since: number, modules: readonly string[]): OriginFigures[] {
    return this.db
      .query<OriginFigures, (string | number)[]>(
        `SELECT origin, sum(action = 'ban' AND outcome = 'applied') AS bans, sum(action = 'unban') AS unbans,
                sum(outcome IN ('protected', 'not-accepted')) AS refused
         FROM received WHERE received >= ? AND module IN (${modules.map(() => "?").join(", ")}) GROUP BY origin ORDER BY bans DESC, origin`,
      )
      .all(since, ...modules);
  }

  /** The latest `top` decisions received since `since` for the given modules, newest first. */
  latestReceived(since: number, modules: readonly string[], top: number): ReceivedDecision[] {
    return this.db
      .query<ReceivedDecision, (string | number)[]>(
        `SELECT id, action, address, module, until, rule, origin, time, outcome, received FROM received
         WHERE received >= ? AND module IN (${modules.map(() => "?").join(", ")}) ORDER BY received DESC, id LIMIT ?`,
      )
      .all(since, ...modules, top);
  }

  /** Forget received decisions older than `before` and bans long over; returns how many rows went. */
  prune(before: number, now: number): number {
    return this.transaction(
      () => this.db.query("DELETE FROM received WHERE received < ?").run(before).changes + this.db.query("DELETE FROM bans WHERE until <= ?").run(now).changes,
    );
  }

  close(): void {
    this.db.close();
  }
}
