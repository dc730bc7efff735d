/**
 * The line pipeline's writes, held in memory for one chunk and written out in the chunk's
 * transaction. When that transaction fails because the disk is full (or the database cannot
 * be written), the writes stay here: the module goes on counting and banning from memory,
 * reading its hosts from here first, and every next chunk tries again. Hosts are kept whole
 * (they carry the counts); events beyond `maxEvents` are dropped and counted. While the disk
 * stays full, a write is tried every few seconds, not with every chunk: each try writes all.
 *
 * Each affair keeps the log line it counted (an excerpt) in its host's record, a ring of the
 * latest LINES_KEPT lines written with the host and gone when the host expires: `watcher why`
 * shows them.
 */
import { appendCountedLine, type EventRecord, type HostRecord, LINE_EXCERPT_BYTES, type ModuleStore } from "../store/module-db";

const excerptBuffer = new Uint8Array(LINE_EXCERPT_BYTES);
const encoder = new TextEncoder();

/** The line cut to LINE_EXCERPT_BYTES bytes of UTF-8, at a character boundary. */
export function lineExcerpt(line: string): string {
  if (line.length * 3 <= LINE_EXCERPT_BYTES) return line;
  return line.slice(0, encoder.encodeInto(line, excerptBuffer).read);
}

/** matched lines that wait for their session's address are remembered this many at most */
const WAITING_LINES = 4096;

/**
 * Which log line an affair counted: the line in hand, or an earlier line of its session that
 * waited for the address (sessions attribute it later, by its tag). The runner tags every line.
 */
export class CountedLines {
  private readonly waiting = new Map<number, string>();

  /** A matched line without an address of its own: it may be counted when its session learns one. */
  wait(tag: number, line: string): void {
    this.waiting.set(tag, line);
    if (this.waiting.size > WAITING_LINES) this.waiting.delete(this.waiting.keys().next().value!);
  }

  /** The waiting line of `tag`, once; null when it was never kept or pushed out. */
  take(tag: number): string | null {
    const line = this.waiting.get(tag) ?? null;
    this.waiting.delete(tag);
    return line;
  }
}

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

  /** The log line the affairs counted next stand for (the runner sets it for each attribution), or null. */
  countedLine: string | null = null;

  /** An affair keeps countedLine in its host's ring of lines (its host was put just before). */
  addEvent(event: EventRecord, hostClass: string | null): void {
    const host = event.kind === "affair" && this.countedLine !== null ? this.hosts.get(event.address) : undefined;
    if (host) this.hosts.set(host.address, { ...host, lines: appendCountedLine(host.lines, { time: event.time, rule: event.rule, line: lineExcerpt(this.countedLine!) }) });
    if (this.events.length >= this.maxEvents) this.droppedEvents++;
    else this.events.push({ event, hostClass });
  }

  /** The chunk's bans were decided: their events keep the reason each was announced with. */
  noteBanReasons(bans: readonly { readonly address: string; readonly time: number; readonly reason: string }[]): void {
    if (bans.length === 0) return;
    const reasons = new Map(bans.map((b) => [`${b.address} ${b.time}`, b.reason]));
    for (const { event } of this.events) {
      if (event.kind === "ban" && !event.reason) {
        const reason = reasons.get(`${event.address} ${event.time}`);
        if (reason) event.reason = reason;
      }
    }
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
