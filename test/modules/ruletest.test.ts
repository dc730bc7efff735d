/**
 * `rules test` of a file reads it in pieces of whole lines (testRulesInPieces): whatever the
 * pieces, the result must be that of the whole log read at once (testRules), line numbers, junk,
 * over-long lines, a last line without its newline and journal exports included.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadRules } from "../../src/modules/registry";
import { type RuleTestResult, testRules, testRulesInPieces, writeMatchesJson } from "../../src/modules/ruletest";
import { MAX_LINE } from "../../src/pipeline/split";

const FIXTURES = join(import.meta.dir, "..", "fixtures");
const RULES = join(import.meta.dir, "..", "..", "rules");
const lg = loadRules("LG", RULES, "normal");

/** A reader over `bytes` that hands out at most `most` bytes a call. */
function reader(bytes: Uint8Array, most: number): (buffer: Buffer, at: number, length: number) => number {
  let offset = 0;
  return (buffer, at, length) => {
    const n = Math.min(length, most, bytes.length - offset);
    buffer.set(bytes.subarray(offset, offset + n), at);
    offset += n;
    return n;
  };
}

/** everything but the engine's time */
const outcome = ({ seconds: _, ...rest }: RuleTestResult) => rest;

const enc = (s: string) => new TextEncoder().encode(s);
const sshd = readFileSync(join(FIXTURES, "LG", "sshd.log"));
const cases: [string, Uint8Array][] = [
  ["sshd's fixtures", sshd],
  ["no newline at the end", sshd.subarray(0, sshd.lastIndexOf(10) - 5)],
  ["empty", new Uint8Array(0)],
  ["one short line, no newline", enc("Nov 24 10:00:01 srv sshd[9]: Invalid user x from 192.0.2.9 port 22")],
  [
    "a byte-order mark, invalid UTF-8, CRLF, a line over MAX_LINE, then more lines",
    new Uint8Array([
      ...[0xef, 0xbb, 0xbf],
      ...enc("Nov 24 10:00:01 srv sshd[1]: Invalid user \u00e9 from 192.0.2.1 port 22\r\n"),
      ...enc("Nov 24 10:00:02 srv sshd[2]: Invalid user "),
      ...[0xff, 0xe2, 0x82],
      ...enc(" from 192.0.2.2 port 22\n\n"),
      ...enc(`Nov 24 10:00:03 srv sshd[3]: Invalid user ${"a".repeat(MAX_LINE)} from 192.0.2.3 port 22\n`),
      ...enc("Nov 24 10:00:04 srv sshd[4]: Invalid user b from 192.0.2.4 port 22\n"),
    ]),
  ],
  ["a journal export", readFileSync(join(FIXTURES, "formats", "journal.export"))],
  ["a line longer than a piece (64 KiB)", enc(`Nov 24 10:00:01 srv sshd[1]: Invalid user x from 192.0.2.1 port 22\n${"x".repeat(3 << 19)}\nNov 24 10:00:02 srv sshd[2]: Invalid user y from 192.0.2.2 port 22\n`)],
];

describe("testRulesInPieces reads a log as testRules reads it whole", () => {
  for (const [name, bytes] of cases) {
    test.each([1, 7, 4096, 1 << 22])(`${name}, at most %p bytes a read`, (most) => {
      const whole = testRules(lg, bytes, { missed: true, unparsed: true });
      const pieces = testRulesInPieces(lg, reader(bytes, most), { missed: true, unparsed: true });
      expect(outcome(pieces)).toEqual(outcome(whole));
    });
  }

  test("the fixtures' matches are there (the comparison is not between two empty results)", () => {
    const r = testRulesInPieces(lg, reader(sshd, 1000));
    expect(r.matched).toBeGreaterThan(50);
    expect(r.lines).toBe(testRules(lg, sshd).lines);
  });
});

describe("rules test --json writes the matches from their columns", () => {
  const user = "203.0.113.61";
  /* refused keys forgotten by a login, a mistyped password withdrawn by one, PAM's failure counted by sshd's */
  const sessions = [
    `Nov 25 11:40:01 srv sshd-session[5001]: Connection from ${user} port 40100 on 198.51.100.1 port 22 rdomain ""`,
    `Nov 25 11:40:01 srv sshd-session[5001]: Failed publickey for deploy from ${user} port 40100 ssh2: RSA SHA256:cXV1eHF1dXhxdXV4cXV1eHF1dXhCb29iYXJiYXpxdXg`,
    `Nov 25 11:40:02 srv sshd-session[5001]: Accepted publickey for deploy from ${user} port 40100 ssh2: ED25519 SHA256:o9d+Q0zkZ22QbxT7U93ejOff5l1U7AiEHfVDaJ2sKwQ`,
    `Nov 25 11:42:00 srv sshd-session[5003]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${user}  user=deploy`,
    `Nov 25 11:42:02 srv sshd-session[5003]: Failed password for deploy from ${user} port 40104 ssh2`,
    `Nov 25 11:42:05 srv sshd-session[5003]: Accepted password for deploy from ${user} port 40104 ssh2`,
    `Nov 25 11:43:00 srv sshd-session[5004]: Failed publickey for deploy from ${user} port 40106 ssh2: RSA SHA256:cXV1eHF1dXhxdXV4cXV1eHF1dXhCb29iYXJiYXpxdXg`,
  ].join("\n");
  const written = (r: RuleTestResult): string => {
    const pieces: Buffer[] = [];
    writeMatchesJson(r, (bytes) => pieces.push(Buffer.from(bytes)));
    return `[${Buffer.concat(pieces).toString("utf8")}]`;
  };
  test.each([
    ["sshd's fixtures", sshd.toString("utf8"), ["ambiguous", "countedOn", "counts"]],
    ["logins that withdraw and forget, and a held line the log's end counts", `${sessions}\n`, ["withdrawn", "countedOn", "counts"]],
    ["sshd's fixtures 40 times (many buffers' worth)", sshd.toString("utf8").repeat(40), ["ambiguous", "countedOn", "counts"]],
  ])("%s: the text of JSON.stringify(matches)", (_name, log, fieldsShown) => {
    const r = testRules(lg, log);
    expect(new Set(r.matches.flatMap((m) => Object.keys(m)))).toEqual(new Set(["line", "rule", "host", "action", ...fieldsShown]));
    expect(written(r)).toBe(JSON.stringify(r.matches));
  });
});
