/**
 * Bytes in, log lines out. The hot path never makes one string per line: the splitter hands
 * out blocks of complete lines and forEachLine walks them by offsets. Lines longer than
 * 64 KiB and binary junk (control characters) are skipped and counted, never passed on: the loop
 * must survive whatever a FIFO or a file throws at it. Bytes that are no UTF-8 (a Latin-1 user
 * name, which ProFTPD, MariaDB or Courier write as the client sent it) become U+FFFD and the line
 * is read: the parts the rules read an address from are the server's ASCII, and a byte of the
 * client's must not hide its whole line.
 * A stream that starts as systemd's journal export format (`journalctl -o export`) is read as
 * such, in bytes: each entry becomes one syslog line, and a binary field (a message holding a
 * newline, whose bytes may look like further fields) is skipped by its length, never read as lines.
 */
export const MAX_LINE = 64 * 1024;

/**
 * A copy of `part` (a line of a block, or text a regex took from one) that does not keep the block
 * alive. In JavaScriptCore a slice or a capture shares its parent's characters: one line kept for
 * minutes keeps its whole block (up to 256 KiB) in memory. Joining resolves into a fresh string.
 */
export function detached(part: string): string {
  const joined = ` ${part}`;
  joined.charCodeAt(0);
  return joined.slice(1);
}

/* C0 controls other than tab, LF and CR; DEL */
const JUNK = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;
const CR = 13;

export interface SkipCounts {
  tooLong: number;
  invalid: number;
}

/** Turns a stream of chunks into blocks of complete lines (each block ends with "\n"). */
export class LineSplitter {
  /* a byte-order mark at the start of a stream is dropped, as the decoder does by default */
  private readonly decoder = new TextDecoder("utf-8", { fatal: false });
  private partial = "";
  /** inside an over-long line: drop everything up to its newline */
  private discarding = false;
  /** the stream's first bytes, until they show whether it is a journal export */
  private head: Uint8Array | null = new Uint8Array(0);
  /** set when the stream is a journal export: its entries, as syslog lines */
  private journal: JournalExport | null = null;

  /** `onDiscard`: an over-long line was dropped whole, before it was a line anyone could count */
  constructor(
    readonly skipped: SkipCounts = { tooLong: 0, invalid: 0 },
    private readonly onDiscard: () => void = () => {},
  ) {}

  /** The stream turned out to be a journal export (its lines are its entries). */
  get journalExport(): boolean {
    return this.journal !== null;
  }

  push(chunk: Uint8Array): string {
    if (this.head !== null) {
      const head = concat(this.head, chunk);
      if (head.length < EXPORT_START_BYTES && !head.includes(NL)) {
        this.head = head.slice(); /* the chunk's buffer is the source's, reused for its next read */
        return "";
      }
      this.head = null;
      if (isJournalExport(head)) this.journal = new JournalExport(this.skipped, this.onDiscard);
      chunk = head;
    }
    if (this.journal) return this.journal.push(chunk);
    return this.pushText(this.decoder.decode(chunk, { stream: true }));
  }

  pushText(text: string): string {
    const last = text.lastIndexOf("\n");
    if (last < 0) {
      if (!this.discarding) this.partial += text;
      if (this.partial.length > MAX_LINE) {
        this.partial = "";
        this.discarding = true;
      }
      return "";
    }
    let block: string;
    if (this.discarding) {
      /* the tail of an over-long line ends at the first newline */
      this.discarding = false;
      this.skipped.tooLong++;
      this.onDiscard();
      block = text.slice(text.indexOf("\n") + 1, last + 1);
    } else {
      block = this.partial + text.slice(0, last + 1);
    }
    this.partial = text.slice(last + 1);
    if (this.partial.length > MAX_LINE) {
      this.partial = "";
      this.discarding = true;
    }
    return block;
  }

  /** The last line of the input, if it had no newline. */
  end(): string {
    if (this.head !== null && this.head.length > 0) {
      const head = this.head;
      this.head = null;
      if (isJournalExport(head)) this.journal = new JournalExport(this.skipped, this.onDiscard);
      return this.journal ? this.journal.push(head) + this.journal.end() : this.pushText(this.decoder.decode(head, { stream: true })) + this.end();
    }
    if (this.journal) return this.journal.end();
    const rest = this.partial + this.decoder.decode();
    this.partial = "";
    if (this.discarding) {
      this.discarding = false;
      this.skipped.tooLong++;
      this.onDiscard();
      return "";
    }
    return rest === "" ? "" : `${rest}\n`;
  }
}

/**
 * Call fn(start, end, lineIndex) for each line of `block` that is fit to process: text[start,
 * end) without its newline or CR. Empty lines are passed over; over-long and junk lines are
 * counted in `skipped`. Returns the number of lines in the block.
 */
export function forEachLine(block: string, skipped: SkipCounts, fn: (start: number, end: number, index: number) => void): number {
  /* the next junk character: one regex scan over the block, moving forward with the lines */
  let junk = nextJunk(block, 0);
  let index = 0;
  for (let start = 0; start < block.length; index++) {
    let nl = block.indexOf("\n", start);
    if (nl < 0) nl = block.length;
    const end = nl > start && block.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
    if (end - start > MAX_LINE) {
      skipped.tooLong++;
    } else if (junk >= 0 && junk < nl) {
      skipped.invalid++;
    } else if (end > start) {
      fn(start, end, index);
    }
    if (junk >= 0 && junk < nl) junk = nextJunk(block, nl + 1);
    start = nl + 1;
  }
  return index;
}

function nextJunk(block: string, from: number): number {
  JUNK.lastIndex = from;
  return JUNK.test(block) ? JUNK.lastIndex - 1 : -1;
}

/**
 * A whole log in memory (`rules test`) as one block of lines ending with a newline, and whether
 * it was a journal export (its entries made syslog lines by LineSplitter). Text is taken as it
 * is: a whole file decoded at once by TextDecoder scanned about half as fast in Bun as the same
 * from readFileSync's or Buffer's decoder (bench/gen-corpus.ts's 105 MB corpus; LineSplitter's
 * 64 KiB pieces show no such difference). A journal export should come as bytes (its binary
 * fields); as text, it is encoded back.
 */
export function decodeLog(input: string | Uint8Array, skipped: SkipCounts): { block: string; journalExport: boolean } {
  const exportStart = typeof input === "string" ? EXPORT_STARTS_TEXT.some((s) => input.startsWith(s)) : isJournalExport(input);
  if (exportStart) {
    const splitter = new LineSplitter(skipped);
    const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
    return { block: splitter.push(bytes) + splitter.end(), journalExport: true };
  }
  const text = typeof input === "string" ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString("utf8");
  return { block: text.endsWith("\n") || text === "" ? text : `${text}\n`, journalExport: false };
}

export interface JournalEntry {
  __CURSOR?: string;
  __REALTIME_TIMESTAMP?: string;
  _HOSTNAME?: string;
  SYSLOG_IDENTIFIER?: string;
  _PID?: string;
  SYSLOG_PID?: string;
  MESSAGE?: unknown;
}

/** The text of a journal field: a string, or the bytes `journalctl -o json` gives as an array of numbers for one that is no printable UTF-8 (no UTF-8 becomes U+FFFD); null for anything else. */
function fieldText(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (!Array.isArray(value) || !value.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) return null;
  return new TextDecoder().decode(Uint8Array.from(value as number[]));
}

/**
 * A journal entry as a syslog line (ISO time, host, identifier[pid]: message); null without a
 * message. A message of bytes that are no printable UTF-8 is read too (a Latin-1 user name must
 * not hide its line); its control characters then skip the line in forEachLine, as in any source.
 */
export function journalLine(e: JournalEntry): string | null {
  const text = fieldText(e.MESSAGE);
  if (text === null || !e.SYSLOG_IDENTIFIER || !e.__REALTIME_TIMESTAMP || !/^\d{1,20}$/.test(e.__REALTIME_TIMESTAMP)) return null;
  const time = new Date(Number(BigInt(e.__REALTIME_TIMESTAMP) / 1000n)).toISOString();
  const pid = e.SYSLOG_PID ?? e._PID;
  /* one entry, one line: a newline inside a message must not start a line of its own */
  const message = text.replace(/[\r\n]/g, " ");
  return `${time} ${e._HOSTNAME ?? "-"} ${e.SYSLOG_IDENTIFIER}${pid ? `[${pid}]` : ""}: ${message}`;
}

/* every entry of `journalctl -o export` starts with these fields */
const EXPORT_STARTS_TEXT = ["__CURSOR=", "__REALTIME_TIMESTAMP="];
const EXPORT_STARTS = EXPORT_STARTS_TEXT.map((s) => new TextEncoder().encode(s));
/** bytes that show whether a stream is a journal export */
export const EXPORT_START_BYTES = 21;
/** the fields a syslog line is made of (journalLine); the others are passed over */
const ENTRY_FIELDS = new Set(["__CURSOR", "__REALTIME_TIMESTAMP", "_HOSTNAME", "SYSLOG_IDENTIFIER", "_PID", "SYSLOG_PID", "MESSAGE"]);
const NL = 10;

/** Whether a stream starting with `head` (EXPORT_START_BYTES of it, or all there is) is a journal export. */
export function isJournalExport(head: Uint8Array): boolean {
  return EXPORT_STARTS.some((s) => s.every((b, i) => head[i] === b));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * systemd's journal export format, in bytes: `FIELD=value` lines, an empty line after each
 * entry, and binary fields as `FIELD`, a little-endian 64-bit length, the bytes, a newline.
 * Binary fields are skipped by their length (journalLine takes text messages only, as the
 * journal source does); over-long lines are dropped and counted.
 */
class JournalExport {
  private readonly decoder = new TextDecoder("utf-8", { fatal: false });
  private pending = new Uint8Array(0);
  private entry: Record<string, string> = {};
  /** bytes of a binary field still to pass over */
  private skipping = 0;
  /** inside an over-long line: drop everything up to its newline */
  private discarding = false;

  constructor(
    private readonly skipped: SkipCounts,
    private readonly onDiscard: () => void,
  ) {}

  /** The syslog lines of the entries the chunk completes. */
  push(chunk: Uint8Array): string {
    const buf = concat(this.pending, chunk);
    let out = "";
    let pos = 0;
    for (;;) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, buf.length - pos);
        this.skipping -= n;
        pos += n;
        if (this.skipping > 0) break;
      }
      const nl = buf.indexOf(NL, pos);
      if (nl < 0) {
        if (buf.length - pos > MAX_LINE) {
          this.discarding = true;
          pos = buf.length;
        }
        break;
      }
      if (this.discarding) {
        this.discarding = false;
        this.skipped.tooLong++;
        this.onDiscard();
      } else if (nl === pos) {
        out += this.endEntry();
      } else {
        const eq = buf.indexOf(61 /* = */, pos);
        if (eq < 0 || eq > nl) {
          /* a binary field: its length, then that many bytes and a newline */
          if (buf.length < nl + 9) break;
          const view = new DataView(buf.buffer, buf.byteOffset + nl + 1, 8);
          const length = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
          pos = nl + 9;
          this.skipping = length + 1;
          continue;
        }
        const name = this.decoder.decode(buf.subarray(pos, eq));
        if (ENTRY_FIELDS.has(name)) this.entry[name] = this.decoder.decode(buf.subarray(eq + 1, nl));
      }
      pos = nl + 1;
    }
    this.pending = buf.slice(pos);
    return out;
  }

  /** The last entry, if the stream ended without its empty line. */
  end(): string {
    this.pending = new Uint8Array(0);
    return this.endEntry();
  }

  private endEntry(): string {
    const line = Object.keys(this.entry).length > 0 ? journalLine(this.entry) : null;
    this.entry = {};
    return line === null ? "" : `${line}\n`;
  }
}
