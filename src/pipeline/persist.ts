/**
 * The line pipeline's writes, held in memory for one chunk and written out in the chunk's
 * transaction. When that transaction fails because the disk is full (or the database cannot
 * be written), the writes stay here: the module goes on counting and banning from memory,
 * reading its hosts from here first, and every next chunk tries again. Hosts are kept whole
 * (they carry the counts); events beyond `maxEvents` are dropped and counted. While the disk
 * stays full, a write is tried every few seconds, not with every chunk: each try writes all.
 */
import type { EventRecord, HostRecord, ModuleStore } from "../store/module-db";

/**
 * SQLite's "database or disk is full", I/O errors, a read-only database, and a database another
 * connection held locked beyond busy_timeout: storage trouble to wait out, never a reason to die.
 */
function isStorageFailure(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" && /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|BUSY|LOCKED)/.test(code);
}

export interface PendingStats {
  hosts: number;
  events: number;
  /** events dropped while the database could not be written */
  droppedEvents: number;
  /** the storage error while writes are held; null when the database is written */
  error: string | null;
}

/** while the disk is full, a write is tried again at most this often: each try rewrites everything held */
const RETRY_MS = 5000;

export class PendingWrites {
  private hosts = new Map<string, HostRecord>();
  private events: { event: EventRecord; hostClass: string | null }[] = [];
  private outbox: string[] = [];
  private droppedEvents = 0;
  private error: string | null = null;
  private lastTry = 0;

  constructor(
    private readonly store: ModuleStore,
    private readonly maxEvents = 20_000,
  ) {}

  getHost(address: string): HostRecord | null {
    return this.hosts.get(address) ?? this.store.getHost(address);
  }

  putHost(h: HostRecord): void {
    this.hosts.set(h.address, h);
  }

  addEvent(event: EventRecord, hostClass: string | null): void {
    if (this.events.length < this.maxEvents) this.events.push({ event, hostClass });
    else this.droppedEvents++;
  }

  addOutbox(decision: string): void {
    this.outbox.push(decision);
  }

  get empty(): boolean {
    return this.hosts.size === 0 && this.events.length === 0 && this.outbox.length === 0;
  }

  /** Into the store, inside the caller's transaction. */
  writeOut(): void {
    for (const h of this.hosts.values()) this.store.putHost(h);
    for (const { event, hostClass } of this.events) this.store.addEvent(event, hostClass);
    for (const d of this.outbox) this.store.addOutbox(d);
  }

  /** The transaction committed: nothing is pending any more. Returns the error that ended, if any. */
  committed(): string | null {
    this.hosts = new Map();
    this.events = [];
    this.outbox = [];
    const ended = this.error;
    this.error = null;
    return ended;
  }

  /** The transaction failed for lack of storage: keep everything; true when this starts a failure. */
  failed(e: unknown): boolean {
    const starts = this.error === null;
    this.error = (e as Error).message;
    return starts;
  }

  /**
   * Run `fn` and write out in one transaction; on a storage failure, keep the writes, say so and
   * return false. While the storage is failing, `fn` runs on its own and its writes join the
   * ones held, until RETRY_MS have passed since the last try (or `retryNow`).
   */
  commit(fn: () => void, log: (message: string) => void, retryNow = false): boolean {
    if (this.error !== null && !retryNow && Date.now() - this.lastTry < RETRY_MS) {
      fn();
      return false;
    }
    this.lastTry = Date.now();
    try {
      this.store.transaction(() => {
        fn();
        this.writeOut();
      });
    } catch (e) {
      if (!isStorageFailure(e)) throw e;
      if (this.failed(e)) log(`database ${this.store.path}: ${this.error}; counting and banning from memory, trying again every few seconds`);
      return false;
    }
    const pending = this.stats();
    if (this.committed() !== null) log(`database ${this.store.path}: written again; ${pending.hosts} hosts and ${pending.events} events caught up, ${pending.droppedEvents} events lost`);
    this.droppedEvents = 0;
    return true;
  }

  stats(): PendingStats {
    return { hosts: this.hosts.size, events: this.events.length, droppedEvents: this.droppedEvents, error: this.error };
  }
}
