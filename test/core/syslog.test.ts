import { describe, expect, test } from "bun:test";
import { HeaderScan, parseSyslogTime, scanSyslog, sessionKey, splitSyslog, syslogTimeAt } from "../../src/core/syslog";

/** Epoch seconds of a local wall-clock time: independent of the machine's time zone. */
const local = (year: number, month: number, day: number, h: number, m: number, s: number): number =>
  new Date(year, month, day, h, m, s).getTime() / 1000;
/** Epoch seconds of a UTC time. */
const utc = (year: number, month: number, day: number, h: number, m: number, s: number): number =>
  Date.UTC(year, month, day, h, m, s) / 1000;

/** The fields of a scanned header as strings. */
function fields(text: string, h: HeaderScan, end: number) {
  return {
    time: text.slice(h.timeStart, h.timeEnd),
    host: text.slice(h.hostStart, h.hostEnd),
    program: text.slice(h.programStart, h.programEnd),
    pid: text.slice(h.pidStart, h.pidEnd),
    message: text.slice(h.messageStart, end),
  };
}

describe("splitSyslog: RFC 3164", () => {
  test("time, host, program, pid and message", () => {
    expect(splitSyslog("Nov 24 10:00:01 srv sshd[123]: Failed password for root from 192.0.2.1 port 22 ssh2")).toEqual({
      time: "Nov 24 10:00:01",
      host: "srv",
      program: "sshd",
      pid: "123",
      message: "Failed password for root from 192.0.2.1 port 22 ssh2",
    });
  });

  test("a single-digit day is padded with a space", () => {
    expect(splitSyslog("Nov  4 10:00:01 srv sshd[123]: msg")).toEqual({
      time: "Nov  4 10:00:01",
      host: "srv",
      program: "sshd",
      pid: "123",
      message: "msg",
    });
  });

  test("a <PRI> prefix is skipped", () => {
    expect(splitSyslog("<38>Nov 24 10:00:01 srv sshd[123]: msg")).toEqual({
      time: "Nov 24 10:00:01",
      host: "srv",
      program: "sshd",
      pid: "123",
      message: "msg",
    });
    expect(splitSyslog("<0>Nov 24 10:00:01 srv sshd[1]: msg")?.program).toBe("sshd");
    expect(splitSyslog("<191>Nov 24 10:00:01 srv sshd[1]: msg")?.program).toBe("sshd");
  });

  test("a tag without pid", () => {
    expect(splitSyslog("Nov 24 10:00:01 srv kernel: [12345.678] msg")).toEqual({
      time: "Nov 24 10:00:01",
      host: "srv",
      program: "kernel",
      pid: "",
      message: "[12345.678] msg",
    });
  });

  test.each(["sshd-session", "postfix/smtpd", "dovecot", "postfix/submission/smtpd", "sshd", "nginx"])("program name %p", (program) => {
    const line = splitSyslog(`Nov 24 10:00:01 mail ${program}[4711]: connect from unknown[192.0.2.1]`);
    expect(line?.program).toBe(program);
    expect(line?.pid).toBe("4711");
    expect(line?.message).toBe("connect from unknown[192.0.2.1]");
  });

  test("an empty message at the end of the line", () => {
    expect(splitSyslog("Nov 24 10:00:01 srv prog[1]:")).toEqual({ time: "Nov 24 10:00:01", host: "srv", program: "prog", pid: "1", message: "" });
    expect(splitSyslog("Nov 24 10:00:01 srv kernel:")).toEqual({ time: "Nov 24 10:00:01", host: "srv", program: "kernel", pid: "", message: "" });
  });

  test("the message keeps colons, brackets and extra spaces", () => {
    expect(splitSyslog("Nov 24 10:00:01 srv dovecot: imap-login: Disconnected: [192.0.2.1]  x")?.message).toBe(
      "imap-login: Disconnected: [192.0.2.1]  x",
    );
  });

  test("an address as host name", () => {
    expect(splitSyslog("Nov 24 10:00:01 192.0.2.10 sshd[1]: msg")?.host).toBe("192.0.2.10");
    expect(splitSyslog("Nov 24 10:00:01 2001:db8::10 sshd[1]: msg")?.host).toBe("2001:db8::10");
  });
});

describe("splitSyslog: RFC 3339 (rsyslog) and journalctl short-iso", () => {
  test("rsyslog high-precision time with a +hh:mm offset", () => {
    expect(splitSyslog("2026-11-24T10:00:01.123456+01:00 srv sshd[1]: msg")).toEqual({
      time: "2026-11-24T10:00:01.123456+01:00",
      host: "srv",
      program: "sshd",
      pid: "1",
      message: "msg",
    });
  });

  test("UTC time with Z", () => {
    expect(splitSyslog("2026-11-24T10:00:01Z srv sshd[1]: msg")?.time).toBe("2026-11-24T10:00:01Z");
  });

  test("journalctl short-iso with +hhmm", () => {
    expect(splitSyslog("2026-11-24T10:00:01+0100 srv sshd[1]: msg")).toEqual({
      time: "2026-11-24T10:00:01+0100",
      host: "srv",
      program: "sshd",
      pid: "1",
      message: "msg",
    });
  });

  test("journalctl short-iso with +hh:mm", () => {
    expect(splitSyslog("2026-11-24T10:00:01+01:00 srv sshd-session[1]: msg")).toEqual({
      time: "2026-11-24T10:00:01+01:00",
      host: "srv",
      program: "sshd-session",
      pid: "1",
      message: "msg",
    });
  });

  test("with a <PRI> prefix", () => {
    expect(splitSyslog("<38>2026-11-24T10:00:01+01:00 srv sshd[1]: msg")?.time).toBe("2026-11-24T10:00:01+01:00");
  });

  test("syslog-ng's and rsyslog's date-first templates without the T (Exim through syslog-ng): host and tag, local time", () => {
    expect(splitSyslog("2019-10-22 03:39:17 mx1 exim[29786]: H=(x) [203.0.113.5] rejected")).toEqual({
      time: "2019-10-22 03:39:17",
      host: "mx1",
      program: "exim",
      pid: "29786",
      message: "H=(x) [203.0.113.5] rejected",
    });
    expect(parseSyslogTime("2019-10-22 03:39:17", 1.8e9)).toBe(new Date(2019, 9, 22, 3, 39, 17).getTime() / 1000);
  });

  test("...but not Exim's or Dovecot's own lines, which start with the same time", () => {
    for (const line of ["2026-12-06 06:20:49 Warning: purging the environment.", "2026-12-06 06:20:44 auth: Info: passwd-file(a,203.0.113.5): unknown user", "2026-12-06 07:00:01 [10099] H=(x) [203.0.113.90]:3755 rejected RCPT <b@x>: relay not permitted"]) {
      expect(splitSyslog(line)).toBeNull();
    }
  });
});

describe("splitSyslog: RFC 5424", () => {
  test("no structured data", () => {
    expect(splitSyslog("<34>1 2026-11-24T10:00:01.003Z srv sshd 123 - - msg")).toEqual({
      time: "2026-11-24T10:00:01.003Z",
      host: "srv",
      program: "sshd",
      pid: "123",
      message: "msg",
    });
  });

  test("one structured data element", () => {
    expect(
      splitSyslog('<165>1 2026-11-24T10:00:01.003Z srv evntslog 123 ID47 [exampleSDID@32473 iut="3" eventSource="App"] An application event'),
    ).toEqual({
      time: "2026-11-24T10:00:01.003Z",
      host: "srv",
      program: "evntslog",
      pid: "123",
      message: "An application event",
    });
  });

  test("several structured data elements", () => {
    expect(splitSyslog('<165>1 2026-11-24T10:00:01Z srv app 1 - [a@32473 x="1"][b@32473 y="2"] msg')?.message).toBe("msg");
  });

  test("structured data with an escaped ]", () => {
    expect(splitSyslog('<165>1 2026-11-24T10:00:01Z srv app 1 - [a@32473 x="a\\]b"] msg')?.message).toBe("msg");
  });

  test("structured data with an escaped quote before a ]", () => {
    expect(splitSyslog('<165>1 2026-11-24T10:00:01Z srv app 1 - [a@32473 x="a\\"]b"] msg')?.message).toBe("msg");
  });

  test("structured data with a ] inside quotes", () => {
    expect(splitSyslog('<165>1 2026-11-24T10:00:01Z srv app 1 - [a@32473 x="a]b"] msg')?.message).toBe("msg");
  });

  test("a nil pid is an empty pid", () => {
    const line = splitSyslog("<34>1 2026-11-24T10:00:01Z srv sshd - - - msg");
    expect(line?.program).toBe("sshd");
    expect(line?.pid).toBe("");
    expect(line?.message).toBe("msg");
  });

  test("no message after the structured data", () => {
    expect(splitSyslog("<34>1 2026-11-24T10:00:01Z srv sshd 1 - -")?.message).toBe("");
    expect(splitSyslog('<34>1 2026-11-24T10:00:01Z srv sshd 1 - [a@1 b="c"]')?.message).toBe("");
  });

  test("a BOM before the message is dropped", () => {
    expect(splitSyslog("<34>1 2026-11-24T10:00:01Z srv sshd 1 - - \ufeffmsg")?.message).toBe("msg");
  });

  test("program names with - and /", () => {
    expect(splitSyslog("<22>1 2026-11-24T10:00:01Z mail postfix/smtpd 4711 - - connect")?.program).toBe("postfix/smtpd");
    expect(splitSyslog("<38>1 2026-11-24T10:00:01Z srv sshd-session 4711 - - msg")?.program).toBe("sshd-session");
  });
});

describe("splitSyslog: what other loggers write", () => {
  const sshd = (time: string, host: string, pid: string, message = "msg") => ({ time, host, program: "sshd", pid, message });

  test("an unpadded day (Feb 7)", () => {
    expect(splitSyslog("Feb 7 10:00:01 srv sshd[1]: msg")).toEqual(sshd("Feb 7 10:00:01", "srv", "1"));
  });

  test("no host name: the tag follows the time (local sockets, busybox -S; real busybox line)", () => {
    expect(splitSyslog("Dec  6 06:20:14 sshd[10524]: Failed password for invalid user x from 198.51.100.7 port 4242 ssh2")).toEqual(
      sshd("Dec  6 06:20:14", "", "10524", "Failed password for invalid user x from 198.51.100.7 port 4242 ssh2"),
    );
    expect(splitSyslog("Nov 24 10:00:01 sshd: msg")).toEqual(sshd("Nov 24 10:00:01", "", ""));
  });

  test("busybox syslogd's facility.level after the host (real line)", () => {
    expect(splitSyslog("Dec  6 06:20:13 vm auth.info sshd[10519]: Failed password for invalid user x from 198.51.100.7 port 4242 ssh2")).toEqual(
      sshd("Dec  6 06:20:13", "vm", "10519", "Failed password for invalid user x from 198.51.100.7 port 4242 ssh2"),
    );
    expect(splitSyslog("Nov 24 10:00:01 srv local7.warn sshd[1]: msg")).toEqual(sshd("Nov 24 10:00:01", "srv", "1"));
  });

  test("BSD syslogd -v and -vv: the priority before the host", () => {
    expect(splitSyslog("Nov 24 10:00:01 <4.6> srv sshd[1]: msg")).toEqual(sshd("Nov 24 10:00:01", "srv", "1"));
    expect(splitSyslog("Nov 24 10:00:01 <auth.info> srv sshd[1]: msg")).toEqual(sshd("Nov 24 10:00:01", "srv", "1"));
  });

  test("macOS: prog[pid] <Level>:", () => {
    expect(splitSyslog("Nov 24 10:00:01 mac sshd[1] <Notice>: msg")).toEqual(sshd("Nov 24 10:00:01", "mac", "1"));
  });

  test("rsyslog templates without the colon: prog[pid] msg", () => {
    expect(splitSyslog("Nov 24 10:00:01 srv sshd[123] msg")).toEqual(sshd("Nov 24 10:00:01", "srv", "123"));
    expect(splitSyslog("2026-11-24T10:00:01+01:00 srv sshd[123] msg")).toEqual(sshd("2026-11-24T10:00:01+01:00", "srv", "123"));
  });

  test("metalog: the tag in brackets after the time, no host, with or without a colon", () => {
    expect(splitSyslog("Jun 25 23:53:34 [sshd] msg")).toEqual(sshd("Jun 25 23:53:34", "", ""));
    expect(splitSyslog("Mar  3 00:17:22 [sshd]: msg")).toEqual(sshd("Mar  3 00:17:22", "", ""));
  });

  test("socklog behind a TAI64N label: the header it received, with or without host (real lines)", () => {
    expect(splitSyslog("@400000006b14fe8f127691f4 auth.info: Dec  6 06:19:49 sshd[9374]: Failed password")).toEqual(sshd("Dec  6 06:19:49", "", "9374", "Failed password"));
    expect(splitSyslog("@400000006b14fe8f13b2bb74 authpriv.notice: Dec  6 06:19:49 vm sshd[9375]: Invalid user y")).toEqual(sshd("Dec  6 06:19:49", "vm", "9375", "Invalid user y"));
    /* no header of its own: the label is the time */
    expect(splitSyslog("@400000006b14fe8f13b2bb74 sshd[1]: msg")).toEqual(sshd("@400000006b14fe8f13b2bb74", "", "1"));
  });

  test.each([
    ["@400000006b14fe8f13b2bb7 sshd[1]: msg", "a label one digit short"],
    ["@400000006b14fe8g13b2bb74 sshd[1]: msg", "a label that is not hex"],
    ["Nov 24 10:00:01 srv authpriv.info", "busybox without a tag"],
    ["Nov 24 10:00:01 [ss hd] msg", "a bracketed tag with a space"],
    ["Nov 24 10:00:01 []: msg", "an empty bracketed tag"],
    ["Nov 24 10:00:01 [sshd]msg", "a bracketed tag without a space after it"],
  ])("rejects %p (%s)", (line) => {
    expect(splitSyslog(line)).toBeNull();
  });
});

describe("splitSyslog: rejections", () => {
  test.each([
    ["", "an empty line"],
    ["garbage", "one word"],
    ["this is not a syslog line at all, sorry", "words"],
    ["Nov 24 10:00:01", "time only"],
    ["Nov 24 10:00:01 srv", "time and host only"],
    ["Nov 24 10:00:01 srv ", "time, host and a space"],
    ["Nov 24 10:00:01 srv sshd", "no colon after the tag"],
    ["Nov 24 10:00:01 srv sshd[123]", "no colon after the pid"],
    ["Nov 24 10:00:01 srv sshd msg", "no pid and no colon: any word would pass for a program"],
    ["Nov 24 10:00:01 srv sshd[12a] msg", "no colon after a pid that is not a number"],
    ["Nov 24 10:00:01 srv sshd[123]:msg", "no space after the colon"],
    ["Nov 24 10:00:01 srv sshd[123: msg", "unclosed pid"],
    ["Nov 24 10:00:01 srv my prog[1]: msg", "a space in the tag"],
    ["Nov 24 10:00:01 srv my prog: msg", "a space in a tag without pid"],
    ["Nov 24 10:00:01 srv : msg", "an empty tag"],
    ["Nov 24 10:00:01 srv [1]: msg", "a pid without program"],
    ["Nov 24 10:00:01  srv sshd[1]: msg", "two spaces before the host"],
    ["Nov 24 10:00 srv sshd[1]: msg", "time without seconds"],
    ["Nov 24 10:00:01.123 srv sshd[1]: msg", "RFC 3164 time with a fraction"],
    ["2026-11-24 10:00:01 sshd[1]: msg", "ISO date with a space instead of T, no host"],
    ["2026-11-24 10:00:01 srv: msg", "ISO date with a space instead of T, a tag where the host goes"],
    ["2026-11-24 10:00:01,123 srv sshd[1]: msg", "ISO date with a space instead of T, milliseconds"],
    ["2026-11-24T10:00:01+01:00", "ISO time only"],
    ["2026-11-24T10:00:01+01:00 srv", "ISO time and host only"],
    ["12345 srv sshd[1]: msg", "a number"],
    ["<>Nov 24 10:00:01 srv sshd[1]: msg", "empty PRI"],
    ["<1234>Nov 24 10:00:01 srv sshd[1]: msg", "PRI too long"],
    ["<38 Nov 24 10:00:01 srv sshd[1]: msg", "unclosed PRI"],
    ["<34>1 2026-11-24T10:00:01Z srv sshd 1 -", "RFC 5424 without structured data"],
    ["<34>1 2026-11-24T10:00:01Z srv sshd 1 - x msg", "RFC 5424 structured data neither - nor ["],
    ['<34>1 2026-11-24T10:00:01Z srv sshd 1 - [a@1 b="c" msg', "RFC 5424 unterminated structured data"],
    ["<34>1 2026-11-24T10:00:01Z srv - 1 - - msg", "RFC 5424 nil app name"],
    ["<34>1 2026-11-24T10:00:01Z srv sshd", "RFC 5424 header cut short"],
  ])("rejects %p (%s)", (line) => {
    expect(splitSyslog(line)).toBeNull();
  });

  test("rejects a tag longer than 128 characters", () => {
    expect(splitSyslog(`Nov 24 10:00:01 srv ${"p".repeat(200)}[1]: msg`)).toBeNull();
  });

  test.each([
    ["                               second line of a message", "journalctl continuation, indented to the message"],
    ["    at Object.<anonymous> (/srv/app.js:1:1)", "stack trace line"],
    [" Nov 24 10:00:01 srv sshd[1]: msg", "a full line behind one space"],
    ["  Nov 24 10:00:01 srv sshd[1]: msg", "a full line behind two spaces"],
    ["\tNov 24 10:00:01 srv sshd[1]: msg", "a full line behind a tab"],
    [" 2026-11-24T10:00:01+01:00 srv sshd[1]: msg", "an ISO line behind a space"],
  ])("rejects a line starting with whitespace: %p (%s)", (line) => {
    expect(splitSyslog(line)).toBeNull();
  });

  test("rejects a line starting with whitespace even when its characters line up with an RFC 3164 header", () => {
    /* positions 3, 9 and 15 hold space, colon and space, as in "Nov 24 10:00:01 " */
    expect(splitSyslog("    Error: code srv prog: msg")).toBeNull();
  });
});

describe("scanSyslog on offsets into a block", () => {
  const lines = [
    "Nov 24 10:00:01 srv sshd[101]: first",
    "2026-11-24T10:00:02+01:00 srv postfix/smtpd[202]: second: with colon",
    "Nov 24 10:00:03 srv kernel: third",
    "<34>1 2026-11-24T10:00:04Z srv dovecot 404 - - fourth",
  ];
  const block = `${lines.join("\n")}\n`;
  const starts: number[] = [];
  for (let at = 0; at < block.length; at = block.indexOf("\n", at) + 1) starts.push(at);
  const endOf = (i: number) => starts[i]! + lines[i]!.length;

  test("the second line's offsets point into the block", () => {
    const h = new HeaderScan();
    const start = starts[1]!;
    expect(start).toBe(lines[0]!.length + 1);
    expect(scanSyslog(block, start, endOf(1), h)).toBe(true);
    expect(h.timeStart).toBe(start);
    expect(h.timeEnd).toBe(start + "2026-11-24T10:00:02+01:00".length);
    expect(h.hostStart).toBe(h.timeEnd + 1);
    expect(h.hostEnd).toBe(h.hostStart + 3);
    expect(h.programStart).toBe(h.hostEnd + 1);
    expect(h.programEnd).toBe(h.programStart + "postfix/smtpd".length);
    expect(h.pidStart).toBe(h.programEnd + 1);
    expect(h.pidEnd).toBe(h.pidStart + 3);
    expect(h.messageStart).toBe(h.pidEnd + 3);
    expect(fields(block, h, endOf(1))).toEqual({
      time: "2026-11-24T10:00:02+01:00",
      host: "srv",
      program: "postfix/smtpd",
      pid: "202",
      message: "second: with colon",
    });
  });

  test("every line of the block, with one HeaderScan reused", () => {
    const h = new HeaderScan();
    const seen = lines.map((_, i) => (scanSyslog(block, starts[i]!, endOf(i), h) ? fields(block, h, endOf(i)) : null));
    expect(seen).toEqual([
      { time: "Nov 24 10:00:01", host: "srv", program: "sshd", pid: "101", message: "first" },
      { time: "2026-11-24T10:00:02+01:00", host: "srv", program: "postfix/smtpd", pid: "202", message: "second: with colon" },
      { time: "Nov 24 10:00:03", host: "srv", program: "kernel", pid: "", message: "third" },
      { time: "2026-11-24T10:00:04Z", host: "srv", program: "dovecot", pid: "404", message: "fourth" },
    ]);
  });

  test("a line without pid after one with pid leaves pidStart === pidEnd", () => {
    const h = new HeaderScan();
    expect(scanSyslog(block, starts[0]!, endOf(0), h)).toBe(true);
    expect(h.pidEnd).toBeGreaterThan(h.pidStart);
    expect(scanSyslog(block, starts[2]!, endOf(2), h)).toBe(true);
    expect(h.pidEnd).toBe(h.pidStart);
  });

  test("the end offset is respected: fields never run into the next line", () => {
    const h = new HeaderScan();
    /* each of these lines is only complete together with the line after it */
    const cut = [
      "Nov 24 10:00:01 srv sshd\nrest[1]: msg\n",
      "Nov 24 10:00:01 srv\nsshd[1]: msg\n",
      "Nov 24 10:00:01\nsrv sshd[1]: msg\n",
      "2026-11-24T10:00:01+01:00\nsrv sshd[1]: msg\n",
      "Nov 24 10:00:01 srv sshd[1\n]: msg\n",
      "<34>1 2026-11-24T10:00:01Z srv\nsshd 1 - - msg\n",
      '<34>1 2026-11-24T10:00:01Z srv sshd 1 - [a@1 b="c"\n] msg\n',
    ];
    for (const text of cut) {
      expect({ text, ok: scanSyslog(text, 0, text.indexOf("\n"), h) }).toEqual({ text, ok: false });
    }
  });

  test("an empty message at the end offset", () => {
    const text = "Nov 24 10:00:01 srv prog[1]:\nNov 24 10:00:02 srv other[2]: next\n";
    const h = new HeaderScan();
    const end = text.indexOf("\n");
    expect(scanSyslog(text, 0, end, h)).toBe(true);
    expect(h.messageStart).toBe(end);
  });
});

describe("sessionKey", () => {
  test("program[pid] for a tag with pid", () => {
    const text = "Nov 24 10:00:01 srv sshd-session[4711]: msg";
    const h = new HeaderScan();
    expect(scanSyslog(text, 0, text.length, h)).toBe(true);
    expect(sessionKey(text, h)).toBe("sshd-session[4711]");
  });

  test("empty for a tag without pid", () => {
    const text = "Nov 24 10:00:01 srv dovecot: msg";
    const h = new HeaderScan();
    expect(scanSyslog(text, 0, text.length, h)).toBe(true);
    expect(sessionKey(text, h)).toBe("");
  });

  test("RFC 5424: program and pid; empty for a nil pid", () => {
    const h = new HeaderScan();
    const withPid = "<34>1 2026-11-24T10:00:01Z srv sshd 123 - - msg";
    expect(scanSyslog(withPid, 0, withPid.length, h)).toBe(true);
    expect(sessionKey(withPid, h)).toBe("sshd[123]");
    const nilPid = "<34>1 2026-11-24T10:00:01Z srv sshd - - - msg";
    expect(scanSyslog(nilPid, 0, nilPid.length, h)).toBe(true);
    expect(sessionKey(nilPid, h)).toBe("");
  });

  test("works on a line inside a block", () => {
    const text = "Nov 24 10:00:01 srv a[1]: x\nNov 24 10:00:02 srv postfix/smtpd[202]: y\n";
    const start = text.indexOf("\n") + 1;
    const h = new HeaderScan();
    expect(scanSyslog(text, start, text.length - 1, h)).toBe(true);
    expect(sessionKey(text, h)).toBe("postfix/smtpd[202]");
  });
});

describe("parseSyslogTime: ISO 8601 / RFC 3339", () => {
  const now = utc(2026, 10, 24, 12, 0, 0);

  test("UTC with Z", () => {
    expect(parseSyslogTime("2026-11-24T10:00:01Z", now)).toBe(utc(2026, 10, 24, 10, 0, 1));
  });

  test("+hh:mm and -hh:mm offsets", () => {
    expect(parseSyslogTime("2026-11-24T10:00:01+01:00", now)).toBe(utc(2026, 10, 24, 9, 0, 1));
    expect(parseSyslogTime("2026-11-24T10:00:01-05:00", now)).toBe(utc(2026, 10, 24, 15, 0, 1));
    expect(parseSyslogTime("2026-11-24T10:00:01+05:30", now)).toBe(utc(2026, 10, 24, 4, 30, 1));
  });

  test("journalctl's +hhmm and -hhmm offsets", () => {
    expect(parseSyslogTime("2026-11-24T10:00:01+0100", now)).toBe(utc(2026, 10, 24, 9, 0, 1));
    expect(parseSyslogTime("2026-11-24T10:00:01-0500", now)).toBe(utc(2026, 10, 24, 15, 0, 1));
    expect(parseSyslogTime("2026-11-24T10:00:01+0000", now)).toBe(utc(2026, 10, 24, 10, 0, 1));
  });

  test("fractions of a second are cut to whole seconds", () => {
    expect(parseSyslogTime("2026-11-24T10:00:01.003Z", now)).toBe(utc(2026, 10, 24, 10, 0, 1));
    expect(parseSyslogTime("2026-11-24T10:00:01.999Z", now)).toBe(utc(2026, 10, 24, 10, 0, 1));
    expect(parseSyslogTime("2026-11-24T10:00:01.123456+01:00", now)).toBe(utc(2026, 10, 24, 9, 0, 1));
  });

  test("the year is the one written, whatever now is", () => {
    expect(parseSyslogTime("2024-12-31T23:59:59Z", now)).toBe(utc(2024, 11, 31, 23, 59, 59));
  });

  test.each(["2026-13-24T10:00:01Z", "2026-11-24T25:00:01Z", "2026-11-24Tgarbage"])("unreadable %p is null", (time) => {
    expect(parseSyslogTime(time, now)).toBeNull();
  });
});

describe("parseSyslogTime: RFC 3164", () => {
  const midJune = local(2026, 5, 15, 12, 0, 0);

  test("local time in the year of now", () => {
    expect(parseSyslogTime("Jun 15 11:59:30", midJune)).toBe(local(2026, 5, 15, 11, 59, 30));
    expect(parseSyslogTime("Jan  2 03:04:05", midJune)).toBe(local(2026, 0, 2, 3, 4, 5));
  });

  test("a space-padded single-digit day", () => {
    expect(parseSyslogTime("Jun  4 10:00:01", midJune)).toBe(local(2026, 5, 4, 10, 0, 1));
  });

  test("every month name", () => {
    const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const endOfYear = local(2026, 11, 31, 23, 0, 0);
    months.forEach((name, month) => {
      expect(parseSyslogTime(`${name} 10 08:00:00`, endOfYear)).toBe(local(2026, month, 10, 8, 0, 0));
    });
  });

  test("a December line read in early January belongs to the previous year", () => {
    const earlyJanuary = local(2027, 0, 2, 8, 0, 0);
    expect(parseSyslogTime("Dec 31 23:59:58", earlyJanuary)).toBe(local(2026, 11, 31, 23, 59, 58));
    expect(parseSyslogTime("Dec  1 00:00:00", earlyJanuary)).toBe(local(2026, 11, 1, 0, 0, 0));
  });

  test("a line up to a day ahead of now stays in the year of now (clock skew)", () => {
    expect(parseSyslogTime("Jun 15 12:05:00", midJune)).toBe(local(2026, 5, 15, 12, 5, 0));
    expect(parseSyslogTime("Jun 16 11:00:00", midJune)).toBe(local(2026, 5, 16, 11, 0, 0));
  });

  test("a line more than a day ahead of now goes to the previous year", () => {
    expect(parseSyslogTime("Jun 16 12:00:01", midJune)).toBe(local(2025, 5, 16, 12, 0, 1));
    expect(parseSyslogTime("Jul  1 00:00:00", midJune)).toBe(local(2025, 6, 1, 0, 0, 0));
  });

  test("lines of hours read in two years, one after the other, each keep their own year and hour", () => {
    /* the hours worked out are remembered (two of them): a line ahead of now is worked out in this year, then the one before */
    const lines: [string, number][] = [
      ["Jul  1 00:00:00", local(2025, 6, 1, 0, 0, 0)],
      ["Jul  1 00:00:01", local(2025, 6, 1, 0, 0, 1)],
      ["Jun 15 12:05:00", local(2026, 5, 15, 12, 5, 0)],
      ["Jul  1 00:59:59", local(2025, 6, 1, 0, 59, 59)],
      ["Jun 15 12:00:00", local(2026, 5, 15, 12, 0, 0)],
      ["Jul  1 01:00:00", local(2025, 6, 1, 1, 0, 0)],
    ];
    for (const [time, expected] of [...lines, ...lines]) expect([time, parseSyslogTime(time, midJune)]).toEqual([time, expected]);
  });

  test("Feb 29 reads in a leap year, never as Mar 1 (a date Date would roll over)", () => {
    expect(parseSyslogTime("Feb 29 10:00:01", local(2028, 2, 1, 0, 0, 0))).toBe(local(2028, 1, 29, 10, 0, 1));
    expect(parseSyslogTime("Feb 29 10:00:01", local(2027, 2, 1, 0, 0, 0))).toBeNull();
  });

  test("a January line a few seconds ahead of a New Year's Eve now belongs to the next year", () => {
    /* the latest year that does not put the line more than a day ahead of now */
    const newYearsEve = local(2026, 11, 31, 23, 59, 50);
    expect(parseSyslogTime("Jan  1 00:00:05", newYearsEve)).toBe(local(2027, 0, 1, 0, 0, 5));
  });

  test.each([
    "Foo 24 10:00:01",
    "nov 24 10:00:01",
    "Nov 32 10:00:01",
    "Nov  0 10:00:01",
    "Nov xx 10:00:01",
    "Nov 24 24:00:01",
    "Nov 24 10:60:01",
    "Nov 24 10:00:61",
    "Nov 24 aa:bb:cc",
    "Feb 30 10:00:01",
    "Apr 31 10:00:01",
    "Feb 29 10:00:01",
    "-",
    "",
  ])("unreadable %p is null", (time) => {
    expect(parseSyslogTime(time, midJune)).toBeNull();
  });

  test.each(["Jun 15 11:59:30", "Jun 04 10:00:01", "Jun  4 10:00:01", "Jun 4 10:00:01", "Jun +4 10:00:01", "Jun 4  10:00:01", "Jul  1 00:00:00", "Nov 32 10:00:01", "Nov 24 aa:bb:cc", "2026-06-15T10:00:01Z"])(
    "read in place inside a line, %p reads as on its own",
    (time) => {
      const line = `<38>${time} host sshd[1]: msg`;
      expect(syslogTimeAt(line, 4, 4 + time.length, midJune)).toBe(parseSyslogTime(time, midJune));
      /* twice: the second reading comes from the remembered hour */
      expect(syslogTimeAt(line, 4, 4 + time.length, midJune)).toBe(parseSyslogTime(time, midJune));
    },
  );
});

describe("parseSyslogTime: the variants' times", () => {
  const now = Date.UTC(2026, 11, 6, 12) / 1000;
  test("an unpadded day reads as a padded one", () => {
    expect(parseSyslogTime("Feb 7 10:00:01", now)).toBe(parseSyslogTime("Feb  7 10:00:01", now));
    expect(parseSyslogTime("Feb 7 10:00:01", now)).toBe(local(2026, 1, 7, 10, 0, 1));
  });

  test("a TAI64N label: TAI is UTC + 10 s (the socklog capture: 06:19:49 UTC)", () => {
    expect(parseSyslogTime("@400000006b14fe8f127691f4", now)).toBe(utc(2026, 11, 6, 6, 19, 49));
    expect(parseSyslogTime("@4000000100000000127691f4", now)).toBeNull();
  });
});

describe("header and time together", () => {
  test("the time scanned from a line parses", () => {
    const now = utc(2026, 10, 24, 12, 0, 0);
    const inputs: [string, number][] = [
      ["2026-11-24T10:00:01.123456+01:00 srv sshd[1]: msg", utc(2026, 10, 24, 9, 0, 1)],
      ["2026-11-24T10:00:01+0100 srv sshd[1]: msg", utc(2026, 10, 24, 9, 0, 1)],
      ["<34>1 2026-11-24T10:00:01.003Z srv sshd 123 - - msg", utc(2026, 10, 24, 10, 0, 1)],
      ["Nov 24 10:00:01 srv sshd[1]: msg", local(2026, 10, 24, 10, 0, 1)],
      ["<38>Nov  4 10:00:01 srv sshd[1]: msg", local(2026, 10, 4, 10, 0, 1)],
    ];
    for (const [line, expected] of inputs) {
      const time = splitSyslog(line)?.time;
      expect({ line, t: time === undefined ? null : parseSyslogTime(time, now) }).toEqual({ line, t: expected });
    }
  });

  test("a nil RFC 5424 time is unreadable", () => {
    const line = splitSyslog("<34>1 - srv sshd 1 - - msg");
    expect(line?.time).toBe("-");
    expect(parseSyslogTime(line!.time, utc(2026, 10, 24, 12, 0, 0))).toBeNull();
  });
});
