/**
 * Bytes in, log lines out. The hot path never makes one string per line: the splitter hands
 * out blocks of complete lines and forEachLine walks them by offsets. Lines longer than
 * 64 KiB, lines that are not valid UTF-8 and binary junk (control characters) are skipped
 * and counted, never passed on: the loop must survive whatever a FIFO or a file throws at it.
 */
export const MAX_LINE = 64 * 1024;

/* C0 controls other than tab, LF and CR; DEL; the replacement character the decoder puts for invalid UTF-8 */
const JUNK = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]/g;
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

  /** `onDiscard`: an over-long line was dropped whole, before it was a line anyone could count */
  constructor(
    readonly skipped: SkipCounts = { tooLong: 0, invalid: 0 },
    private readonly onDiscard: () => void = () => {},
  ) {}

  push(chunk: Uint8Array): string {
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
