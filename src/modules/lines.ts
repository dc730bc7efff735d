/**
 * Bytes in, log lines out. Lines longer than 64 KiB, lines that are not valid UTF-8 and
 * binary junk (control characters) are skipped and counted, never passed on: the loop must
 * survive whatever a FIFO or a file throws at it.
 */
export const MAX_LINE = 64 * 1024;

/* C0 controls other than tab, and the replacement character the decoder puts for invalid UTF-8 */
const JUNK = /[\x00-\x08\x0b-\x1f\x7f\ufffd]/;

export interface SkipCounts {
  tooLong: number;
  invalid: number;
}

export class LineSplitter {
  private readonly decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
  private partial = "";
  /** inside an over-long line: drop everything up to its newline */
  private discarding = false;
  readonly skipped: SkipCounts = { tooLong: 0, invalid: 0 };

  push(chunk: Uint8Array): string[] {
    return this.pushText(this.decoder.decode(chunk, { stream: true }));
  }

  pushText(text: string): string[] {
    const combined = this.partial + text;
    const parts = combined.split("\n");
    this.partial = parts.pop()!;
    if (this.discarding && parts.length > 0) {
      parts.shift();
      this.discarding = false;
      this.skipped.tooLong++;
    }
    if (this.partial.length > MAX_LINE) {
      this.partial = "";
      if (!this.discarding) this.discarding = true;
    }
    return this.clean(parts, mayHaveJunk(combined));
  }

  /** The last line of the input, if it had no newline. */
  end(): string[] {
    const rest = this.partial + this.decoder.decode();
    this.partial = "";
    if (this.discarding) {
      this.discarding = false;
      this.skipped.tooLong++;
      return [];
    }
    return rest === "" ? [] : this.clean([rest], mayHaveJunk(rest));
  }

  private clean(lines: string[], mayHaveJunk: boolean): string[] {
    const out: string[] = [];
    for (const line of lines) {
      const clean = cleanLine(line, mayHaveJunk, this.skipped);
      if (clean) out.push(clean);
    }
    return out;
  }
}

/** True when a text may hold lines to skip: check once per chunk, then per line only if so. */
export function mayHaveJunk(text: string): boolean {
  return JUNK.test(text);
}

/** The line without its CR, or null (counted in `skipped`) when it must be skipped. */
export function cleanLine(line: string, mayHaveJunk: boolean, skipped: SkipCounts): string | null {
  if (line.length > MAX_LINE) {
    skipped.tooLong++;
    return null;
  }
  const text = line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line; /* CRLF */
  if (mayHaveJunk && JUNK.test(text)) {
    skipped.invalid++;
    return null;
  }
  return text.length > 0 ? text : null;
}
