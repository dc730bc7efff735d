/**
 * journalctl -o json's entries as syslog lines (pipeline/split.ts journalLine): a message that is
 * no printable UTF-8 comes as an array of bytes, and is read, so a client's byte hides nothing.
 */
import { describe, expect, test } from "bun:test";
import { forEachLine, journalLine, type SkipCounts } from "../../src/pipeline/split";

const AT = "1765000000000000"; /* 2025-12-06T05:46:40Z in microseconds */
const bytes = (text: string, ...extra: number[]) => [...new TextEncoder().encode(text), ...extra];

describe("journalLine", () => {
  test("a message as a string", () => {
    expect(journalLine({ MESSAGE: "Invalid user a from 203.0.113.5 port 4", SYSLOG_IDENTIFIER: "sshd", SYSLOG_PID: "7", _HOSTNAME: "srv", __REALTIME_TIMESTAMP: AT })).toBe(
      "2025-12-06T05:46:40.000Z srv sshd[7]: Invalid user a from 203.0.113.5 port 4",
    );
  });

  test("a message of bytes (a Latin-1 user name): read, the byte as U+FFFD; one with a newline stays one line", () => {
    const latin1 = bytes("Login failed for user 'sa", 0xe9, ...bytes("'. Reason: Could not find a login matching the name provided. [CLIENT: 203.0.113.5]"));
    expect(journalLine({ MESSAGE: latin1, SYSLOG_IDENTIFIER: "sqlservr", __REALTIME_TIMESTAMP: AT })).toBe(
      "2025-12-06T05:46:40.000Z - sqlservr: Login failed for user 'sa\ufffd'. Reason: Could not find a login matching the name provided. [CLIENT: 203.0.113.5]",
    );
    expect(journalLine({ MESSAGE: bytes("a\nb"), SYSLOG_IDENTIFIER: "x", __REALTIME_TIMESTAMP: AT })).toBe("2025-12-06T05:46:40.000Z - x: a b");
  });

  test("a control character in a message of bytes still skips its line; no message, or one that is no text, is no line", () => {
    const line = journalLine({ MESSAGE: bytes("admin", 0x01, ...bytes(" from 203.0.113.5")), SYSLOG_IDENTIFIER: "x", __REALTIME_TIMESTAMP: AT })!;
    const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
    const read: string[] = [];
    forEachLine(`${line}\n`, skipped, (start, end) => read.push(line.slice(start, end)));
    expect({ read, skipped }).toEqual({ read: [], skipped: { tooLong: 0, invalid: 1 } });
    for (const MESSAGE of [null, undefined, [1, 2, 300], { a: 1 }]) expect(journalLine({ MESSAGE, SYSLOG_IDENTIFIER: "x", __REALTIME_TIMESTAMP: AT })).toBeNull();
  });
});
