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
import { appendCountedLines, type CountedLine, type EventRecord, type HostRecord, LINE_EXCERPT_BYTES, LINES_KEPT, type ModuleStore } from "../store/module-db";
import { detached } from "./split";

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
    this.waiting.set(tag, detached(line));
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

/** a replay's held writes go out before they reach this many hosts and events (memory, and maxEvents) */
const HELD_MAX = 4096;

export class PendingWrites {
  private hosts = new Map<string, HostRecord>();
  /**
   * The lines affairs counted since the last writeOut, by host (its latest LINES_KEPT), joined
   * into the host's ring there, once: a ring rebuilt on each affair copied it whole every time.
   */
  private linesAdded = new Map<string, CountedLine[]>();
  private events: { event: EventRecord; hostClass: string | null }[] = [];
  private outbox: string[] = [];
  private droppedEvents = 0;
  private error: string | null = null;
  private lastTry = 0;
  /** chunks run since the last transaction */
  private chunksHeld = 0;
  /** where the events of the chunk in hand begin */
  private chunkEvents = 0;

  /**
   * `chunksPerCommit`: a replay holds its writes in memory over this many chunks (fewer while
   * they grow past HELD_MAX) and writes them in one transaction: each transaction rewrites the
   * pages of every host it touches, and the same attackers come back chunk after chunk.
   */
  constructor(
    private readonly store: ModuleStore,
    private readonly maxEvents = 20_000,
    private readonly chunksPerCommit = 1,
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
    if (event.kind === "affair" && this.countedLine !== null && this.hosts.has(event.address)) {
      const line = { time: event.time, rule: event.rule, line: lineExcerpt(this.countedLine) };
      const added = this.linesAdded.get(event.address);
      if (!added) this.linesAdded.set(event.address, [line]);
      else if (added.push(line) > LINES_KEPT) added.shift();
    }
    if (this.events.length >= this.maxEvents) this.droppedEvents++;
    else this.events.push({ event, hostClass });
  }

  /** The chunk's bans were decided: their events keep the reason each was announced with. */
  noteBanReasons(bans: readonly { readonly address: string; readonly time: number; readonly reason: string }[]): void {
    if (bans.length === 0) return;
    const reasons = new Map(bans.map((b) => [`${b.address} ${b.time}`, b.reason]));
    for (let i = this.chunkEvents; i < this.events.length; i++) {
      const { event } = this.events[i]!;
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
    /* the rings first: should the transaction fail, the hosts held carry their lines */
    for (const [address, added] of this.linesAdded) {
      const host = this.hosts.get(address)!;
      this.hosts.set(address, { ...host, lines: appendCountedLines(host.lines, added) });
    }
    this.linesAdded.clear();
    for (const h of this.hosts.values()) this.store.putHost(h);
    this.store.addEvents(this.events);
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
   * ones held, until RETRY_MS have passed since the last try (or `retryNow`). A replay's chunks
   * whose writes are held for later ones (chunksPerCommit) run in the write transaction those
   * writes go out in, left open meanwhile; they return false with no error.
   */
  commit(fn: () => void, log: (message: string) => void, retryNow = false): boolean {
    this.chunkEvents = this.events.length;
    if (!retryNow && this.error !== null && Date.now() - this.lastTry < RETRY_MS) {
      fn();
      return false;
    }
    /* a replay's chunk whose writes wait for later ones: it runs in the write transaction they will go out in */
    const hold = !retryNow && this.error === null && ++this.chunksHeld < this.chunksPerCommit && this.hosts.size + this.events.length < HELD_MAX;
    if (!hold) {
      this.chunksHeld = 0;
      this.lastTry = Date.now();
    }
    let begun = false;
    try {
      if (!this.store.inTransaction) this.store.beginOpen();
      begun = true;
      fn();
      if (hold) return false;
      this.writeOut();
      this.store.commitOpen();
    } catch (e) {
      /* the writes stay here (the transaction held reads only until writeOut): nothing is lost */
      this.store.rollbackOpen();
      this.chunksHeld = 0;
      if (!isStorageFailure(e)) throw e;
      if (this.failed(e)) log(`database ${this.store.path}: ${this.error}; counting and banning from memory, trying again every few seconds`);
      /* no transaction to be had (another process held the lock beyond busy_timeout): the chunk's lines still count, from memory */
      if (!begun) fn();
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
