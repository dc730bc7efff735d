/**
 * Formats found from the shape of the lines (src/pipeline/formats.ts), on logs the real programs
 * wrote (test/fixtures/real and test/fixtures/formats, their READMEs say how): without a
 * --program, `rules test` must find each file's format and count what the same rules count
 * with the program given; each source keeps its format until a line does not fit it.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ModuleName } from "../../src/core/config";
import { HeaderScan } from "../../src/core/syslog";
import { loadRules } from "../../src/modules/registry";
import { testRules } from "../../src/modules/ruletest";
import { SourceFormat } from "../../src/pipeline/formats";

const FIXTURES = join(import.meta.dir, "..", "fixtures");
const RULES = join(import.meta.dir, "..", "..", "rules");
const rules = (module: ModuleName) => loadRules(module, RULES, "normal");
const read = (dir: string, file: string) => readFileSync(join(FIXTURES, dir, file));

/** what a match list says, line by line: the line, what the rule does, the address (rule names are the rule files' business) */
const shown = (r: ReturnType<typeof testRules>) => r.matches.map((m) => `${m.line} ${m.action} ${m.host}`);

describe("the web servers' own logs (test/fixtures/real) need no --program", () => {
  const CASES: [string, string, string][] = [
    ["nginx-error.log", "nginx-error", "nginx error"],
    ["nginx-error-info.log", "nginx-error", "nginx error"],
    ["apache-error.log", "apache-error", "apache 2.4 error"],
    ["apache-access.log", "apache-access", "access (CLF/combined)"],
    ["apache-access-vhost.log", "apache-access", "access (CLF/combined)"],
    ["nginx-access.log", "nginx-access", "access (CLF/combined)"],
    ["nginx-access-host.log", "nginx-access", "access (CLF/combined)"],
  ];
  for (const [file, program, format] of CASES) {
    test(`${file}: found as ${format}, the same matches as with --program ${program}`, () => {
      const log = read("real", file);
      const found = testRules(rules("WB"), log);
      const given = testRules(rules("WB"), log, { program });
      expect(shown(found)).toEqual(shown(given));
      expect(found.matched).toBeGreaterThan(0);
      expect(found.unparsed).toBe(0);
      /* every line that is not junk is in the format */
      expect(found.formats).toEqual({ [format]: found.lines - found.skipped.invalid - found.skipped.tooLong });
      expect(given.formats).toEqual({ [`--program ${program}`]: given.lines - given.skipped.invalid - given.skipped.tooLong });
    });
  }

  test("syslog files stay syslog: Postfix and Dovecot through rsyslog, both timestamp forms", () => {
    for (const file of ["postfix.log", "postfix.rfc3339.log", "dovecot.log", "dovecot.rfc3339.log"]) {
      const r = testRules(rules("MB"), read("real", file));
      expect(r.formats).toEqual({ syslog: r.lines });
    }
  });
});

describe("formats captured from the real programs (test/fixtures/formats)", () => {
  test("sshd -E: no header, CR LF endings; counted as sshd's lines", () => {
    const r = testRules(rules("LG"), read("formats", "sshd-E.log"), { missed: true });
    expect(r.formats).toEqual({ "sshd -E": 8 });
    expect(shown(r)).toEqual([
      "2 ignore 127.0.0.2",
      "3 count 127.0.0.2",
      "4 count 127.0.0.2",
      "5 ignore 127.0.0.2",
      "6 count 127.0.0.2",
      "7 count 127.0.0.2",
    ]);
    /* --missed: the lines of sshd that no rule counted, with the rule that matched without counting */
    expect(r.missed?.map((l) => [l.line, l.rule !== undefined])).toEqual([
      [1, false],
      [2, true],
      [5, true],
      [8, false],
    ]);
    expect(r.missed?.[0]?.text).toBe("Server listening on 127.0.0.1 port 10022.");
  });

  test("Dovecot's log_path: read as the lines Dovecot sends to syslog, merged by session as there", () => {
    const log = read("formats", "dovecot-log_path.log");
    const r = testRules(rules("MB"), log);
    expect(r.formats).toEqual({ "dovecot log_path": 8 });
    expect(shown(r)).toEqual([
      "2 count 127.0.0.2",
      "3 count 127.0.0.2",
      "4 count 127.0.0.2",
      "5 count 127.0.0.2",
    ]);
    /* the same lines as Dovecot writes them to syslog ("dovecot: " before the process, no "Info: ") count the same */
    const asSyslog = log
      .toString()
      .replace(/^(\w{3} \d\d \d\d:\d\d:\d\d) (\S+): Info: /gm, "$1 vm dovecot: $2: ")
      .replace(/^(\w{3} \d\d \d\d:\d\d:\d\d) (\S+): Warning: /gm, "$1 vm dovecot: $2: Warning: ");
    expect(shown(testRules(rules("MB"), asSyslog))).toEqual(shown(r));
  });

  test("Dovecot's log_path with a date-first log_timestamp (%Y-%m-%d %H:%M:%S): local time, as the default's", () => {
    const log = read("formats", "dovecot-log_path.log").toString().replace(/^Dec 06 /gm, "2026-12-06 ");
    const r = testRules(rules("MB"), log);
    expect(r.formats).toEqual({ "dovecot log_path": 8 });
    expect(shown(r)).toEqual(shown(testRules(rules("MB"), read("formats", "dovecot-log_path.log"))));
    const format = new SourceFormat();
    const h = new HeaderScan();
    const line = "2026-12-06 06:20:44 auth: Info: passwd-file(alice,127.0.0.2,<x>): Password mismatch";
    const text = format.scan(line, 0, line.length, h, { programs: [] })!;
    expect(format.time(text, h, 0)).toBe(new Date(2026, 11, 6, 6, 20, 44).getTime() / 1000);
  });

  test("Postfix's maillog_file is syslog-shaped (zero-padded day, short host)", () => {
    const log = read("formats", "postfix-maillog_file.log");
    expect(testRules(rules("MX"), log).formats).toEqual({ syslog: 2 });
    expect(shown(testRules(rules("MX"), log))).toEqual(["2 count 198.51.100.8"]);
    expect(shown(testRules(rules("MB"), log))).toEqual(["1 count 198.51.100.7"]);
  });

  test("busybox syslogd, with host and facility.level, and with -S (neither)", () => {
    expect(shown(testRules(rules("LG"), read("formats", "busybox-syslogd.log")))).toEqual(["2 count 198.51.100.7"]);
    expect(shown(testRules(rules("LG"), read("formats", "busybox-syslogd-S.log")))).toEqual(["2 count 198.51.100.7"]);
  });

  test("socklog behind a TAI64N label, headers with and without host", () => {
    const r = testRules(rules("LG"), read("formats", "socklog-tai64n.log"));
    expect(r.formats).toEqual({ syslog: 2 });
    expect(shown(r)).toEqual(["1 count 198.51.100.7", "2 count 198.51.100.8"]);
  });

  test("journal export: each entry one line; a binary message's forged fields and entries are never read", () => {
    const r = testRules(rules("LG"), read("formats", "journal.export"));
    expect(r.formats).toEqual({ "journal export": 2 });
    expect(shown(r)).toEqual(["1 count 198.51.100.7", "2 count 198.51.100.8"]);
    expect(JSON.stringify(r)).not.toContain("203.0.113.9");
  });

  test("journal export read in small pieces: the same entries", () => {
    const whole = read("formats", "journal.export");
    const { LineSplitter } = require("../../src/pipeline/split") as typeof import("../../src/pipeline/split");
    for (const size of [1, 7, 64]) {
      const splitter = new LineSplitter();
      let out = "";
      for (let i = 0; i < whole.length; i += size) out += splitter.push(whole.subarray(i, i + size));
      out += splitter.end();
      expect(out.split("\n").filter(Boolean)).toEqual([
        expect.stringMatching(/^2026-12-06T06:21:20\.\d+Z vm sshd\[\d+\]: Failed password for invalid user x from 198\.51\.100\.7 port 4242 ssh2$/),
        expect.stringMatching(/^2026-12-06T06:21:20\.\d+Z vm sshd\[4242\]: Invalid user y from 198\.51\.100\.8 port 4243$/),
      ]);
    }
  });
});

describe("FTP, database and name server logs captured from the real programs (test/fixtures/formats)", () => {
  test("vsftpd's own log (vsftpd_log_file): its `[pid N]` left out, read as vsftpd's syslog messages", () => {
    const r = testRules(rules("FT"), read("formats", "vsftpd.log"));
    expect(r.formats).toEqual({ "vsftpd log": 11 });
    /* FAIL LOGIN of an unknown user, root, anonymous, a wrong password; then that account's good one */
    expect(shown(r)).toEqual(["2 count 127.0.0.2", "4 count 127.0.0.2", "6 count 127.0.0.2", "8 count 127.0.0.2", "10 success 127.0.0.2"]);
    const asSyslog = read("formats", "vsftpd.log").toString().replace(/^\w{3} (\w{3} [ \d]\d \d\d:\d\d:\d\d) \d{4} \[pid (\d+)\] /gm, "$1 vm vsftpd[$2]: ");
    expect(shown(testRules(rules("FT"), asSyslog))).toEqual(shown(r));
  });

  test("ProFTPD's SystemLog: a syslog line with milliseconds and no colon after the pid", () => {
    const r = testRules(rules("FT"), read("formats", "proftpd-SystemLog.log"));
    expect(r.formats).toEqual({ "proftpd SystemLog": 9 });
    /* no such user, root refused, three wrong passwords and the limit on one connection */
    expect(shown(r)).toEqual(["2 count 127.0.0.2", "3 count 127.0.0.2", "4 count 127.0.0.2", "5 count 127.0.0.2", "6 count 127.0.0.2", "7 count 127.0.0.2"]);
  });

  test("MariaDB's error log (log_error): read whole by the mariadbd rules, as with --program mariadbd", () => {
    const log = read("formats", "mariadb-error.log");
    const r = testRules(loadRules("DB", RULES, "aggressive"), log);
    /* the "Version: ..." line after "ready for connections" has no time */
    expect(r.formats).toEqual({ "mysql error log": 33, unrecognised: 1 });
    expect(shown(r)).toEqual(["23 count 127.0.0.1", "24 count 127.0.0.1", "25 count 127.0.0.1", "26 count 127.0.0.1"]);
    expect(shown(r)).toEqual(shown(testRules(loadRules("DB", RULES, "aggressive"), log, { program: "mariadbd" })));
  });

  test("BIND's own log file, each print-time with and without category and severity: the same lines count", () => {
    const ns = loadRules("NS", RULES, "aggressive");
    /* refused AXFR, refused query, NOTAUTH, refused IXFR; the allowed transfer's lines do not count */
    const counted = ["5 count 127.0.0.2", "8 count 127.0.0.2", "9 count 127.0.0.2", "10 count 127.0.0.2"];
    for (const file of ["bind-named-full.log", "bind-named-iso.log", "bind-named-time.log"]) {
      const r = testRules(ns, read("formats", file));
      expect(r.formats).toEqual({ "named log": 15 });
      expect(shown(r)).toEqual(counted);
    }
    /* iso8601-utc without category: two of named's start-up lines ("zone example.org/IN: loaded ...") read as syslog lines, of no program we know */
    const utc = testRules(ns, read("formats", "bind-named-iso-utc.log"));
    expect(utc.formats).toEqual({ "named log": 13, syslog: 2 });
    expect(shown(utc)).toEqual(counted);
    /* normal mode counts none of them: each can come from a forged UDP packet (rules/NS/bind.rule) */
    expect(testRules(rules("NS"), read("formats", "bind-named-full.log")).matched).toBe(0);
  });
});

describe("formats written from the programs' documentation and source", () => {
  test("MySQL's and MariaDB's error logs of every version, mixed with syslog lines of mysqld, each line in its own format", () => {
    const log = [
      "130916 21:30:26 [Warning] Access denied for user 'root'@'203.0.113.21' (using password: YES)",
      "130916  1:30:27 [Warning] Access denied for user 'root'@'203.0.113.22' (using password: NO)",
      "2026-12-06 07:49:12 6 [Warning] Access denied for user 'root'@'203.0.113.23' (using password: YES)",
      "2026-12-06  7:49:13 139845235329792 [Warning] Access denied for user 'root'@'203.0.113.24' (using password: YES)",
      "2026-12-06T07:49:14.634875Z 113 [Note] [MY-010926] [Server] Access denied for user 'root'@'203.0.113.25' (using password: NO)",
      "Dec  6 07:49:15 db mysqld[990]: 2026-12-06  7:49:15 7 [Warning] Access denied for user 'root'@'203.0.113.26' (using password: YES)",
      "2026-12-06T07:49:16.000001+01:00 8 [Warning] Access denied for user 'root'@'203.0.113.27' (using password: YES)",
    ].join("\n");
    const r = testRules(loadRules("DB", RULES, "aggressive"), log);
    expect(r.formats).toEqual({ "mysql error log": 6, syslog: 1 });
    expect(r.matches.map((m) => m.host)).toEqual(["203.0.113.21", "203.0.113.22", "203.0.113.23", "203.0.113.24", "203.0.113.25", "203.0.113.26", "203.0.113.27"]);
  });

  test("Exim through syslog-ng's date-first template: a syslog line of exim, not Exim's main log", () => {
    const line = "2026-12-06 03:39:17 mx1 exim[29786]: H=(x) [203.0.113.5] F=<a@example.net> rejected RCPT <b@example.org>: relay not permitted";
    const format = new SourceFormat();
    const h = new HeaderScan();
    expect(format.scan(line, 0, line.length, h, { programs: ["exim"] })).toBe(line);
    expect(format.program).toBeNull();
    expect(line.slice(h.programStart, h.programEnd)).toBe("exim");
    expect(line.slice(h.messageStart, h.lineEnd)).toStartWith("H=(x) [203.0.113.5]");
    expect(testRules(rules("MX"), line).formats).toEqual({ syslog: 1 });
    /* after lines of Exim's main log too: the main log's format does not take it */
    const mainlog = "2026-12-06 03:39:16 H=(y) [203.0.113.4] F=<a@example.net> rejected RCPT <c@example.org>: relay not permitted";
    const mixed = testRules(rules("MX"), [mainlog, line, mainlog].join("\n"));
    expect(mixed.formats).toEqual({ "exim mainlog": 2, syslog: 1 });
    expect(mixed.matches.map((m) => m.host)).toEqual(["203.0.113.4", "203.0.113.5", "203.0.113.4"]);
  });

  test("BIND's category and severity after a syslog time without host: named's line, not a program called security", () => {
    const r = testRules(loadRules("NS", RULES, "aggressive"), [
      "Dec  6 02:06:39 security: info: client @0x7f4e446fd6e8 203.0.113.31#53 (example.io): query (cache) 'example.io/A/IN' denied",
      "Dec  6 03:35:40 update-security: error: client @0x7f4e45c07a48 203.0.113.32#55956 (example.ca): zone transfer 'example.ca/AXFR/IN' denied",
      "06-Dec-2026 03:36:11.372 error: client 203.0.113.33#52115: zone transfer 'example.com/AXFR/IN' denied",
      "Dec  6 03:36:12 ns1 named[4400]: client 203.0.113.34#41000 (example.org): zone transfer 'example.org/AXFR/IN' denied",
    ].join("\n"));
    expect(r.formats).toEqual({ "named log": 3, syslog: 1 });
    expect(r.matches.map((m) => m.host)).toEqual(["203.0.113.31", "203.0.113.32", "203.0.113.33", "203.0.113.34"]);
  });

  test("a message's trailing blanks are dropped once, before any rule: rules anchored at the end match", () => {
    const line = "Dec  6 12:36:01 r2 imapd[3473]: Login failed user=x auth=x host=h.example.net [203.0.113.41] \t ";
    const format = new SourceFormat();
    const h = new HeaderScan();
    format.scan(line, 0, line.length, h, { programs: [] });
    expect(line.slice(h.messageStart, h.lineEnd)).toBe("Login failed user=x auth=x host=h.example.net [203.0.113.41]");
    expect(testRules(rules("MB"), line).matches.map((m) => m.host)).toEqual(["203.0.113.41"]);
    /* a message of blanks only stays empty, never runs back into the header */
    const blank = "Dec  6 12:36:01 r2 imapd[3473]:    ";
    format.scan(blank, 0, blank.length, h, { programs: [] });
    expect(h.lineEnd).toBe(h.messageStart);
  });
});

describe("Exim's main log (test/fixtures/MX/exim-mainlog.log, as Exim 4.96 wrote it)", () => {
  for (const module of ["MX", "MB"] as const) {
    test(`${module}: found as exim mainlog, the same matches as with --program exim`, () => {
      const log = read("MX", "exim-mainlog.log");
      const found = testRules(rules(module), log);
      expect(found.matched).toBeGreaterThan(0);
      expect(shown(found)).toEqual(shown(testRules(rules(module), log, { program: "exim" })));
      expect(Object.keys(found.formats)).toEqual(["exim mainlog", "unrecognised"]); /* the annotations and Exim's indented continuation lines */
    });
  }
});

describe("Apache 2.2 error log (the examples of Apache 2.2's documentation)", () => {
  test("found as apache 2.2 error and read by the apache-error rules", () => {
    const log = [
      "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: /export/home/live/ap/htdocs/test",
      "[Wed Oct 11 14:32:53 2000] [notice] Apache/2.2.0 (Unix) configured -- resuming normal operations",
    ].join("\n");
    const r = testRules(rules("WB"), log);
    expect(r.formats).toEqual({ "apache 2.2 error": 2 });
    expect(r.unparsed).toBe(0);
  });
});

describe("one format per source, kept until a line does not fit", () => {
  const SYSLOG = "Nov 24 10:00:01 srv sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2";
  const SSHD = "Failed password for root from 203.0.113.6 port 22 ssh2";
  const NGINX = '2026/11/25 11:49:50 [error] 5556#5556: *5 user "x": password mismatch, client: 203.0.113.7, server: www.example.test, request: "GET /private/ HTTP/1.1", host: "www.example.test"';

  test("a log that changes format is followed: each line read in its own", () => {
    const r = testRules(rules("LG"), [SYSLOG, SSHD, SSHD, SYSLOG, "garbage that fits nothing", SSHD].join("\n"));
    expect(r.formats).toEqual({ syslog: 2, "sshd -E": 3, unrecognised: 1 });
    expect(r.matches.map((m) => m.host)).toEqual(["203.0.113.5", "203.0.113.6", "203.0.113.6", "203.0.113.5", "203.0.113.6"]);
  });

  test("a syslog line carrying an access line stays syslog: one odd line does not make the stream an access log", () => {
    const viaSyslog = 'Nov 25 11:49:50 web nginx: 203.0.113.9 - - [25/Nov/2026:11:49:50 +0000] "GET /.env HTTP/1.1" 404 153 "-" "-"';
    const bare = '203.0.113.8 - - [25/Nov/2026:11:49:50 +0000] "GET /.env HTTP/1.1" 404 153 "-" "-"';
    const r = testRules(rules("WB"), [bare, viaSyslog, viaSyslog].join("\n"));
    expect(r.formats).toEqual({ "access (CLF/combined)": 1, syslog: 2 });
    expect(r.matches.map((m) => m.host)).toEqual(["203.0.113.8", "203.0.113.9", "203.0.113.9"]);
  });

  test("sshd's own log is recognised by how sshd's messages start, then kept", () => {
    const r = testRules(rules("LG"), ["some text before", SSHD, "a line sshd wrote that no list knows"].join("\n"), { unparsed: true });
    expect(r.unparsedLines).toEqual([{ line: 1, text: "some text before" }]);
    expect(r.formats).toEqual({ "sshd -E": 2, unrecognised: 1 });
  });

  test("--program reads every line whole as that program's, whatever its shape", () => {
    const r = testRules(rules("WB"), [NGINX, SYSLOG].join("\n"), { program: "nginx-error" });
    expect(r.formats).toEqual({ "--program nginx-error": 2 });
    expect(r.matches.map((m) => m.host)).toEqual(["203.0.113.7"]);
  });

  test("a header-less format takes the first of its programs the module listens to", () => {
    const format = new SourceFormat();
    const h = new HeaderScan();
    const line = '203.0.113.8 - - [25/Nov/2026:11:49:50 +0000] "GET / HTTP/1.1" 200 8 "-" "-"';
    expect(format.scan(line, 0, line.length, h, { programs: ["nginx", "nginx-access"] })).toBe(line);
    expect(format.program).toBe("nginx-access");
    expect(new SourceFormat().scan(line, 0, line.length, h, { programs: [] })).toBe(line);
  });

  test("--unparsed lists the lines no format fits", () => {
    const r = testRules(rules("LG"), [SYSLOG, "  indented continuation", "12345 not a header"].join("\n"), { unparsed: true });
    expect(r.unparsedLines?.map((l) => l.line)).toEqual([2, 3]);
    expect(r.unparsed).toBe(2);
  });
});

describe("a line's own time, by format", () => {
  const timeOf = (line: string, now = Date.UTC(2026, 11, 6) / 1000) => {
    const format = new SourceFormat();
    const h = new HeaderScan();
    const text = format.scan(line, 0, line.length, h, { programs: [] });
    return text === null ? undefined : format.time(text, h, now);
  };
  const local = (y: number, mo: number, d: number, h: number, mi: number, s: number) => new Date(y, mo, d, h, mi, s).getTime() / 1000;

  test("nginx and Apache error logs: local time", () => {
    expect(timeOf("2026/11/25 11:49:50 [error] 5556#5556: *2 open() failed")).toBe(local(2026, 10, 25, 11, 49, 50));
    expect(timeOf("[Wed Nov 25 11:50:15.785480 2026] [core:error] [pid 5827:tid 5863] [client 127.0.0.3:43120] AH10244: x")).toBe(local(2026, 10, 25, 11, 50, 15));
    expect(timeOf("[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied")).toBe(local(2000, 9, 11, 14, 32, 52));
  });

  test("access logs: the zone written", () => {
    expect(timeOf('127.0.0.2 - - [25/Nov/2026:11:49:50 +0100] "GET / HTTP/1.1" 200 8')).toBe(Date.UTC(2026, 10, 25, 10, 49, 50) / 1000);
    expect(timeOf('www.example.test 127.0.0.2 - - [25/Nov/2026:11:49:50 -0230] "GET / HTTP/1.1" 200 8')).toBe(Date.UTC(2026, 10, 25, 14, 19, 50) / 1000);
  });

  test("vsftpd, ProFTPD, MySQL/MariaDB and BIND's own files: local time unless a zone is written", () => {
    expect(timeOf('Sun Dec  6 12:01:28 2026 [pid 10818] [x] FAIL LOGIN: Client "127.0.0.2"')).toBe(local(2026, 11, 6, 12, 1, 28));
    expect(timeOf('Fri Nov 20 02:01:28 2026 [pid 10818] [x] FAIL LOGIN: Client "127.0.0.2"')).toBe(local(2026, 10, 20, 2, 1, 28));
    expect(timeOf("2026-12-06 12:02:36,543 vm proftpd[12899] 127.0.0.1 (127.0.0.2[127.0.0.2]): USER x: no such user found")).toBe(local(2026, 11, 6, 12, 2, 36));
    expect(timeOf("130916  1:30:26 [Warning] Access denied for user 'a'@'203.0.113.1' (using password: NO)")).toBe(local(2013, 8, 16, 1, 30, 26));
    expect(timeOf("130916 21:30:26 [Warning] Access denied for user 'a'@'203.0.113.1' (using password: NO)")).toBe(local(2013, 8, 16, 21, 30, 26));
    expect(timeOf("2026-12-06  7:49:12 6 [Warning] Access denied for user 'a'@'203.0.113.1' (using password: NO)")).toBe(local(2026, 11, 6, 7, 49, 12));
    expect(timeOf("2026-12-06T07:49:12.634875Z 113 [Note] [MY-010926] [Server] Access denied")).toBe(Date.UTC(2026, 11, 6, 7, 49, 12) / 1000);
    expect(timeOf("06-Dec-2026 12:03:01.318 security: error: client @0x1 127.0.0.2#5 (x): zone transfer 'x/AXFR/IN' denied")).toBe(local(2026, 11, 6, 12, 3, 1));
    expect(timeOf("2026-12-06T12:03:01.318 security: error: client @0x1 127.0.0.2#5 (x): zone transfer 'x/AXFR/IN' denied")).toBe(local(2026, 11, 6, 12, 3, 1));
    expect(timeOf("2026-12-06T12:03:01.318Z client @0x1 127.0.0.2#5 (x): zone transfer 'x/AXFR/IN' denied")).toBe(Date.UTC(2026, 11, 6, 12, 3, 1) / 1000);
  });

  test("Dovecot's log_path: like syslog's; sshd -E: none (the time of reading)", () => {
    expect(timeOf("Dec 06 06:20:44 auth: Info: passwd-file(alice,127.0.0.2,<x>): Password mismatch")).toBe(local(2026, 11, 6, 6, 20, 44));
    expect(timeOf("Failed password for root from 203.0.113.6 port 22 ssh2")).toBeNull();
  });
});
