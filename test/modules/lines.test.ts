import { describe, expect, test } from "bun:test";
import { heapStats } from "bun:jsc";
import { detached, forEachLine, LineSplitter, MAX_LINE, type SkipCounts } from "../../src/pipeline/split";

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Every line that forEachLine passes on, as strings. */
function linesOf(block: string, skipped: SkipCounts = { tooLong: 0, invalid: 0 }): string[] {
  const out: string[] = [];
  forEachLine(block, skipped, (start, end) => out.push(block.slice(start, end)));
  return out;
}

/** Feed chunks through a splitter and forEachLine, as the module loop does; the lines and the counts. */
function run(chunks: (string | Uint8Array)[]): { lines: string[]; skipped: SkipCounts } {
  const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
  const splitter = new LineSplitter(skipped);
  const lines: string[] = [];
  for (const chunk of chunks) {
    const block = typeof chunk === "string" ? splitter.pushText(chunk) : splitter.push(chunk);
    lines.push(...linesOf(block, skipped));
  }
  lines.push(...linesOf(splitter.end(), skipped));
  return { lines, skipped };
}

describe("LineSplitter", () => {
  test("a byte-order mark at the start of the stream is dropped", () => {
    const splitter = new LineSplitter();
    expect(splitter.push(new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode("Nov 24 10:00:01 srv sshd[1]: x\n")]))).toBe("Nov 24 10:00:01 srv sshd[1]: x\n");
  });
  test("only the stream's first bytes lose a byte-order mark, after ASCII chunks too", () => {
    const splitter = new LineSplitter();
    expect(splitter.push(utf8("one\n"))).toBe("one\n");
    expect(splitter.push(new Uint8Array([0xef, 0xbb, 0xbf, ...utf8("two\n")]))).toBe("\ufefftwo\n");
  });

  test("a character cut off by an ASCII chunk is no UTF-8: read as U+FFFD, and what follows keeps its order", () => {
    /* the lead byte of ü waits in the decoder; the next chunk, ASCII, must go through it too */
    const { lines, skipped } = run([utf8("one\nab"), new Uint8Array([0xc3]), utf8("cd\nthree\n")]);
    expect(lines).toEqual(["one", "ab\ufffdcd", "three"]);
    expect(skipped).toEqual({ tooLong: 0, invalid: 0 });
  });

  test("a chunk of whole lines comes out as one block", () => {
    const splitter = new LineSplitter();
    expect(splitter.push(utf8("one\ntwo\n"))).toBe("one\ntwo\n");
    expect(splitter.end()).toBe("");
  });

  test("a block always ends with a newline; the rest waits for the next chunk", () => {
    const splitter = new LineSplitter();
    expect(splitter.push(utf8("one\ntw"))).toBe("one\n");
    expect(splitter.push(utf8("o\nthr"))).toBe("two\n");
    expect(splitter.push(utf8("ee"))).toBe("");
    expect(splitter.push(utf8("\n"))).toBe("three\n");
  });

  test("a line split over many chunks is put together", () => {
    const text = "Nov 24 10:00:01 srv sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n";
    const chunks = [...text].map((c) => utf8(c));
    expect(run(chunks).lines).toEqual([text.slice(0, -1)]);
  });

  test("a chunk split in the middle of a UTF-8 character", () => {
    const bytes = utf8("user jürgen from 192.0.2.1 😀\nnext\n");
    const umlaut = bytes.indexOf(0xc3); /* first byte of ü */
    const emoji = bytes.indexOf(0xf0); /* first byte of the 4-byte emoji */
    const chunks = [bytes.slice(0, umlaut + 1), bytes.slice(umlaut + 1, emoji + 2), bytes.slice(emoji + 2)];
    const { lines, skipped } = run(chunks);
    expect(lines).toEqual(["user jürgen from 192.0.2.1 😀", "next"]);
    expect(skipped).toEqual({ tooLong: 0, invalid: 0 });
  });

  test("every possible two-chunk split of multi-byte text gives the same lines", () => {
    const bytes = utf8("a ü b € c 😀 d\nzweite Zeile: Grüße\n");
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(run([bytes.slice(0, cut), bytes.slice(cut)]).lines).toEqual(["a ü b € c 😀 d", "zweite Zeile: Grüße"]);
    }
  });

  test("one byte at a time", () => {
    const bytes = utf8("Grüße 😀\r\nzwei\n");
    const chunks = [...bytes].map((b) => Uint8Array.of(b));
    expect(run(chunks).lines).toEqual(["Grüße 😀", "zwei"]);
  });

  test("CRLF line ends, also when CR and LF arrive in different chunks", () => {
    expect(run([utf8("one\r\ntwo\r\n")]).lines).toEqual(["one", "two"]);
    expect(run([utf8("one\r"), utf8("\ntwo\r\n")]).lines).toEqual(["one", "two"]);
  });

  test("end() returns the last line when it has no newline", () => {
    const splitter = new LineSplitter();
    expect(splitter.push(utf8("one\nlast"))).toBe("one\n");
    expect(splitter.end()).toBe("last\n");
    expect(splitter.end()).toBe("");
  });

  test("end() with nothing pending is empty", () => {
    const splitter = new LineSplitter();
    expect(splitter.end()).toBe("");
    splitter.push(utf8("a\n"));
    expect(splitter.end()).toBe("");
  });

  test("end() flushes a character cut off at the end of the input, as U+FFFD", () => {
    const bytes = utf8("ok\nbroken ü");
    const { lines, skipped } = run([bytes.slice(0, bytes.length - 1)]);
    expect(lines).toEqual(["ok", "broken \ufffd"]);
    expect(skipped.invalid).toBe(0);
  });

  test("a line of exactly MAX_LINE characters is kept", () => {
    const long = "a".repeat(MAX_LINE);
    const { lines, skipped } = run([`${long}\nafter\n`]);
    expect(lines.map((l) => l.length)).toEqual([MAX_LINE, 5]);
    expect(skipped.tooLong).toBe(0);
  });

  test("a line of exactly MAX_LINE characters is kept when it comes in pieces", () => {
    const half = "a".repeat(MAX_LINE / 2);
    const { lines, skipped } = run([half, half, "\nafter\n"]);
    expect(lines.map((l) => l.length)).toEqual([MAX_LINE, 5]);
    expect(skipped.tooLong).toBe(0);
  });

  test("an over-long line inside one chunk is dropped and counted", () => {
    const { lines, skipped } = run([`before\n${"x".repeat(MAX_LINE + 1)}\nafter\n`]);
    expect(lines).toEqual(["before", "after"]);
    expect(skipped).toEqual({ tooLong: 1, invalid: 0 });
  });

  test("an over-long line spanning several chunks is dropped and counted once", () => {
    const piece = "x".repeat(20 * 1024);
    const chunks = ["before\n", piece, piece, piece, piece, piece, "x\nafter\n"].map(utf8);
    const { lines, skipped } = run(chunks);
    expect(lines).toEqual(["before", "after"]);
    expect(skipped).toEqual({ tooLong: 1, invalid: 0 });
  });

  test("the splitter does not keep an over-long line in memory", () => {
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    const splitter = new LineSplitter(skipped);
    const piece = "x".repeat(40 * 1024);
    for (let i = 0; i < 10; i++) expect(splitter.pushText(piece)).toBe("");
    expect(splitter.pushText("tail\nnext\n")).toBe("next\n");
    expect(skipped.tooLong).toBe(1);
  });

  test("an over-long line that starts in the tail of a chunk", () => {
    const { lines, skipped } = run(["first\n" + "x".repeat(MAX_LINE + 10), "x".repeat(10), "\nsecond\n"]);
    expect(lines).toEqual(["first", "second"]);
    expect(skipped.tooLong).toBe(1);
  });

  test("a pending piece under the limit that grows too long in the chunk with its newline", () => {
    const { lines, skipped } = run(["x".repeat(MAX_LINE - 5), `${"x".repeat(10)}\nok\n`]);
    expect(lines).toEqual(["ok"]);
    expect(skipped.tooLong).toBe(1);
  });

  test("two over-long lines in a row are counted twice", () => {
    const long = "x".repeat(MAX_LINE + 1);
    const { lines, skipped } = run([long, "\n", long, "\nok\n"]);
    expect(lines).toEqual(["ok"]);
    expect(skipped.tooLong).toBe(2);
  });

  test("an over-long last line without newline is dropped by end() and counted", () => {
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    const splitter = new LineSplitter(skipped);
    expect(splitter.pushText("ok\n")).toBe("ok\n");
    expect(splitter.pushText("x".repeat(MAX_LINE + 1))).toBe("");
    expect(splitter.end()).toBe("");
    expect(skipped.tooLong).toBe(1);
  });

  test("the counts object passed in is the one updated", () => {
    const skipped: SkipCounts = { tooLong: 3, invalid: 4 };
    const splitter = new LineSplitter(skipped);
    expect(splitter.skipped).toBe(skipped);
    splitter.pushText("x".repeat(MAX_LINE + 1));
    splitter.pushText("\n");
    expect(skipped).toEqual({ tooLong: 4, invalid: 4 });
  });
});

describe("forEachLine", () => {
  test("passes each line's offsets, without newline or CR, and its index", () => {
    const block = "one\r\ntwo\nthree\n";
    const calls: [string, number, number, number][] = [];
    const count = forEachLine(block, { tooLong: 0, invalid: 0 }, (start, end, index) => calls.push([block.slice(start, end), start, end, index]));
    expect(calls).toEqual([
      ["one", 0, 3, 0],
      ["two", 5, 8, 1],
      ["three", 9, 14, 2],
    ]);
    expect(count).toBe(3);
  });

  test("empty lines are skipped but keep their index, and are not counted as skipped", () => {
    const block = "one\n\n\r\nfour\n";
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    const calls: [string, number][] = [];
    const count = forEachLine(block, skipped, (start, end, index) => calls.push([block.slice(start, end), index]));
    expect(calls).toEqual([
      ["one", 0],
      ["four", 3],
    ]);
    expect(count).toBe(4);
    expect(skipped).toEqual({ tooLong: 0, invalid: 0 });
  });

  test("an empty block has no lines", () => {
    expect(forEachLine("", { tooLong: 0, invalid: 0 }, () => expect.unreachable())).toBe(0);
  });

  test("a block without a final newline still yields its last line", () => {
    expect(linesOf("one\ntwo")).toEqual(["one", "two"]);
  });

  test("tabs and a lone CR inside a line are fine", () => {
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    expect(linesOf("a\tb\nc\rd\n", skipped)).toEqual(["a\tb", "c\rd"]);
    expect(skipped.invalid).toBe(0);
  });

  test("non-ASCII text is fine", () => {
    expect(linesOf("user Jürgen 😀 from 2001:db8::1\n")).toEqual(["user Jürgen 😀 from 2001:db8::1"]);
  });

  test.each([
    ["\x00", "NUL"],
    ["\x01", "SOH"],
    ["\x08", "backspace"],
    ["\x0b", "vertical tab"],
    ["\x0c", "form feed"],
    ["\x0e", "SO"],
    ["\x1b", "escape"],
    ["\x1f", "unit separator"],
    ["\x7f", "DEL"],
  ])("a line with %p (%s) is skipped and counted as invalid", (junk) => {
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    const calls: [string, number][] = [];
    const block = `good one\nbad ${junk} line\ngood two\n`;
    forEachLine(block, skipped, (start, end, index) => calls.push([block.slice(start, end), index]));
    expect(calls).toEqual([
      ["good one", 0],
      ["good two", 2],
    ]);
    expect(skipped).toEqual({ tooLong: 0, invalid: 1 });
  });

  test("junk at the very start or end of a line", () => {
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    expect(linesOf("\x00start\nend\x7f\nok\n", skipped)).toEqual(["ok"]);
    expect(skipped.invalid).toBe(2);
  });

  test("several junk characters in one line count once; junk lines in a row each count", () => {
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    expect(linesOf("a\x00\x00\x00b\nc\x01\nd\x02\ne\n", skipped)).toEqual(["e"]);
    expect(skipped.invalid).toBe(3);
  });

  test("a line after a junk line is passed on (the junk scan moves forward)", () => {
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    const lines = linesOf("x\x00\nclean1\nclean2\ny\x00\nclean3\n", skipped);
    expect(lines).toEqual(["clean1", "clean2", "clean3"]);
    expect(skipped.invalid).toBe(2);
  });

  test("bytes that are no UTF-8 come through as U+FFFD: the line is read, not skipped", () => {
    const bad = Uint8Array.of(...utf8("before\nbad "), 0xff, 0xfe, ...utf8(" bytes\n"), 0xc3, ...utf8("x\nafter\n"));
    const { lines, skipped } = run([bad]);
    expect(lines).toEqual(["before", "bad \ufffd\ufffd bytes", "\ufffdx", "after"]);
    expect(skipped).toEqual({ tooLong: 0, invalid: 0 });
  });

  test("an over-long line is counted as too long, not passed on", () => {
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    const calls: [string, number][] = [];
    const block = `a\n${"x".repeat(MAX_LINE + 1)}\nb\n`;
    forEachLine(block, skipped, (start, end, index) => calls.push([block.slice(start, end), index]));
    expect(calls).toEqual([
      ["a", 0],
      ["b", 2],
    ]);
    expect(skipped).toEqual({ tooLong: 1, invalid: 0 });
  });

  test("an over-long line with junk in it counts once, and later lines are still checked for junk", () => {
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    const block = `${"x".repeat(MAX_LINE)}\x00x\nok\nbad\x00\n`;
    expect(linesOf(block, skipped)).toEqual(["ok"]);
    expect(skipped).toEqual({ tooLong: 1, invalid: 1 });
  });

  test("a line of MAX_LINE characters plus CRLF is not too long", () => {
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    expect(linesOf(`${"x".repeat(MAX_LINE)}\r\n`, skipped).map((l) => l.length)).toEqual([MAX_LINE]);
    expect(skipped.tooLong).toBe(0);
  });

  test("the junk scan is not confused by a previous call", () => {
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    expect(linesOf("a\nb\nc\x00\n", skipped)).toEqual(["a", "b"]);
    expect(linesOf("d\ne\n", skipped)).toEqual(["d", "e"]);
    expect(skipped.invalid).toBe(1);
  });
});

describe("detached", () => {
  /** Memory outside the heap (string characters) after keeping `keep(line)` of each of 40 fresh 256 KiB blocks. */
  function keptBytes(keep: (line: string) => string): number {
    const bytes = new TextEncoder().encode("Nov 24 10:00:01 srv sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n".repeat(3200));
    const decoder = new TextDecoder();
    const kept: string[] = [];
    Bun.gc(true);
    const before = heapStats().extraMemorySize;
    for (let i = 0; i < 40; i++) kept.push(keep(decoder.decode(bytes).slice(100 + i, 180 + i)));
    Bun.gc(true);
    expect(kept.every((k) => k.length === 80)).toBe(true);
    return heapStats().extraMemorySize - before;
  }

  test("a kept line does not keep its block in memory, as a slice of it does", () => {
    expect(keptBytes((line) => line)).toBeGreaterThan(8 * 1024 * 1024);
    expect(keptBytes(detached)).toBeLessThan(1024 * 1024);
  });

  test("the copy reads as the part it was made of", () => {
    const block = "one\ntwo three\n";
    expect(detached(block.slice(4, 13))).toBe("two three");
    expect(detached("")).toBe("");
  });
});
