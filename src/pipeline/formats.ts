/**
 * Which kind of log a source carries, found from the shape of its lines, so that nobody has to
 * say `--program nginx-error` for nginx's own error log. Each source keeps the format of its
 * last line and tries it first: a line that fits costs what the format's own scan costs, and
 * only a line that does not fit is tried against the others (a file that changes format, a
 * line no format knows). A source given a program (`--program`, `program = "..."`) skips all
 * this: its lines are that program's, whole, as before.
 *
 * Formats (their programs are those the shipped rule files listen to):
 *  - syslog: every header src/core/syslog.ts reads (RFC 3164/3339/5424 and the variants);
 *    Postfix's `maillog_file` is written in this shape (`Dec 06 06:20:35 mail postfix/smtpd[1]: `)
 *  - Dovecot's own `log_path`: `Dec 06 06:20:44 auth: Info: passwd-file(...): ...` (or with a
 *    `2026-12-06 06:20:44` log_timestamp, or behind svlogd's TAI64N label), rewritten to
 *    the line Dovecot sends to syslog (`... dovecot: auth: passwd-file(...)`; syslog has no
 *    `Info: `, the other levels stay), so that the same rules and sessions read both
 *  - nginx error log: `2026/11/25 11:49:50 [error] 5556#5556: *2 ...` (program nginx-error)
 *  - Apache 2.4 error log: `[Wed Nov 25 11:50:15.785480 2026] [auth_basic:error] [pid ...` and
 *    Apache 2.2's `[Wed Oct 11 14:32:52 2000] [error] [client ...` (program apache-error)
 *  - access logs, CLF and combined, bare or behind a vhost (`%v:%p`, nginx `$host`):
 *    `[vhost[:port] ]ADDR IDENT USER [25/Nov/2026:11:49:50 +0000] "...` (apache-access / nginx-access)
 *  - sshd's own log (`sshd -E FILE`): its messages with no header at all (program sshd)
 *  - Exim's main log: `2026-12-06 06:20:49 H=(helo) [203.0.113.66] ...` (program exim); with
 *    log_selector = +pid (`2026-12-06 06:20:49 [1234] H=...`) the pid is left out for the rules
 * systemd's journal export format is binary-safe only when read as bytes: LineSplitter turns it
 * into syslog lines before any of this (split.ts).
 */
import { HeaderScan, isHex, scanSyslog, syslogTimeAt } from "../core/syslog";

interface LineFormat {
  /** as `rules test` shows it */
  readonly name: string;
  /** header-less formats: the programs whose rules read these lines, the first one the module listens to is taken; null: the line names its program */
  readonly programs: readonly string[] | null;
  /** Scan text[start, end) into h: the text h's offsets refer to (`text`, or the line rewritten), or null when the line does not have this shape. */
  scan(text: string, start: number, end: number, h: HeaderScan): string | null;
  /** epoch seconds of the scanned line's own time, null when it has none */
  time(text: string, h: HeaderScan, now: number): number | null;
}

const SPACE = 32;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function digitsAt(text: string, at: number, count: number): boolean {
  for (let i = at; i < at + count; i++) if (!isDigit(text.charCodeAt(i))) return false;
  return true;
}

/** A header-less line, whole: its time at [timeStart, timeEnd), the message from `start`. */
function wholeLine(h: HeaderScan, start: number, end: number, timeStart: number, timeEnd: number): void {
  h.timeStart = timeStart;
  h.timeEnd = timeEnd;
  h.hostStart = h.hostEnd = h.programStart = h.programEnd = h.pidStart = h.pidEnd = start;
  h.messageStart = start;
  h.lineEnd = end;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function monthAt(text: string, at: number): number {
  return MONTHS.indexOf(text.slice(at, at + 3));
}

/** Epoch seconds of a local date and time; null when a field is out of range. */
function localTime(year: number, month: number, day: number, hh: number, mm: number, ss: number): number | null {
  if (month < 0 || !(day >= 1 && day <= 31) || !(hh <= 23 && mm <= 59 && ss <= 60)) return null;
  const t = new Date(year, month, day, hh, mm, ss).getTime();
  return Number.isNaN(t) ? null : Math.floor(t / 1000);
}

const num = (text: string, at: number, length: number): number => Number(text.slice(at, at + length));

/** A local time written `2026-11-25 11:49:50` (any separators) at the line's time. */
function dateTimeFields(text: string, h: HeaderScan): number | null {
  const t = h.timeStart;
  return localTime(num(text, t, 4), num(text, t + 5, 2) - 1, num(text, t + 8, 2), num(text, t + 11, 2), num(text, t + 14, 2), num(text, t + 17, 2));
}

const SYSLOG: LineFormat = {
  name: "syslog",
  programs: null,
  scan(text, start, end, h) {
    if (!scanSyslog(text, start, end, h)) return null;
    /* no host and a Dovecot level after the tag: a line of Dovecot's own file, which reads as a hostless syslog line */
    /* ... and so does a line of BIND's own file with a syslog time (its category reads as a tag) */
    if (h.hostStart === h.hostEnd && (startsWithDovecotLevel(text, h.messageStart) || isNamedPrefixed(text, h, end))) return null;
    h.lineEnd = end;
    return text;
  },
  time: (text, h, now) => syslogTimeAt(text, h.timeStart, h.timeEnd, now),
};

const DOVECOT_LEVELS = ["Info: ", "Warning: ", "Error: ", "Fatal: ", "Panic: ", "Debug: "];

function startsWithDovecotLevel(text: string, at: number): boolean {
  for (const level of DOVECOT_LEVELS) if (text.startsWith(level, at)) return true;
  return false;
}

/**
 * Where Dovecot's time ends: its default log_timestamp `Dec 06 06:20:44`, the common
 * `2026-12-06 06:20:44`, or the TAI64N label svlogd/multilog put before its stderr log
 * (`@4000000063e2b6a42c0d2e34`, log_timestamp empty); -1 for none.
 */
function dovecotTimeEnd(text: string, start: number): number {
  const c = text.charCodeAt(start);
  if (c === 64 /* @ */) {
    for (let i = start + 1; i < start + 25; i++) if (!isHex(text.charCodeAt(i))) return -1;
    return start + 25;
  }
  if (c >= 65 && c <= 90) return text.charCodeAt(start + 3) === SPACE && digitsAt(text, start + 4, 2) && text.charCodeAt(start + 9) === 58 ? start + 15 : -1;
  return digitsAt(text, start, 4) && text.charCodeAt(start + 4) === 45 && text.charCodeAt(start + 10) === SPACE && text.charCodeAt(start + 13) === 58 ? start + 19 : -1;
}

/** A time, then a Dovecot process (`auth`, `imap-login`, `auth-worker(12)`, `imap(alice)<12><sess>`), its level, the text. */
const DOVECOT: LineFormat = {
  name: "dovecot log_path",
  programs: null,
  scan(text, start, end, h) {
    const timeEnd = dovecotTimeEnd(text, start);
    if (timeEnd < 0 || text.charCodeAt(timeEnd) !== SPACE) return null;
    const process = timeEnd + 1;
    let colon = process;
    for (; colon < end && colon < process + 128; colon++) {
      const ch = text.charCodeAt(colon);
      if (ch === SPACE) return null;
      if (ch === 58 /* : */ && text.charCodeAt(colon + 1) === SPACE) break;
    }
    if (colon === process || colon >= end || colon >= process + 128) return null;
    const levelStart = colon + 2;
    const level = DOVECOT_LEVELS.find((l) => text.startsWith(l, levelStart));
    if (!level) return null;
    /* as Dovecot writes it to syslog: "dovecot: " before the process, no "Info: "; a date-first time in RFC 3339's shape (local time) */
    const rest = level === "Info: " ? text.slice(levelStart + level.length, end) : text.slice(levelStart, end);
    const time = timeEnd - start === 19 ? `${text.slice(start, start + 10)}T${text.slice(start + 11, timeEnd)}` : text.slice(start, timeEnd);
    /* a TAI64N label takes no host (syslog.ts reads the tag right after it) */
    const host = text.charCodeAt(start) === 64 ? "" : "- ";
    const line = `${time} ${host}dovecot: ${text.slice(process, colon)}: ${rest}`;
    return SYSLOG.scan(line, 0, line.length, h);
  },
  time: SYSLOG.time,
};

/** `2026/11/25 11:49:50 [error] 5556#5556: ` */
const NGINX_ERROR: LineFormat = {
  name: "nginx error",
  programs: ["nginx-error"],
  scan(text, start, end, h) {
    if (end - start < 24 || text.charCodeAt(start + 4) !== 47 /* / */ || text.charCodeAt(start + 7) !== 47 || text.charCodeAt(start + 10) !== SPACE) return null;
    if (text.charCodeAt(start + 13) !== 58 || text.charCodeAt(start + 19) !== SPACE || text.charCodeAt(start + 20) !== 91 /* [ */) return null;
    if (!digitsAt(text, start, 4) || !digitsAt(text, start + 11, 2)) return null;
    const close = text.indexOf("] ", start + 21);
    if (close < 0 || close > start + 30 || !isDigit(text.charCodeAt(close + 2))) return null;
    wholeLine(h, start, end, start, start + 19);
    return text;
  },
  time: dateTimeFields,
};

/** `[Wed Nov 25 11:50:15.785480 2026] ` (2.4) or `[Wed Oct 11 14:32:52 2000] ` (2.2), then `[` */
function apacheTimeEnd(text: string, start: number, end: number): number {
  if (text.charCodeAt(start) !== 91 || text.charCodeAt(start + 4) !== SPACE || text.charCodeAt(start + 8) !== SPACE || text.charCodeAt(start + 14) !== 58) return -1;
  const close = text.indexOf("] [", start + 20);
  return close < 0 || close > start + 33 || close + 3 >= end ? -1 : close;
}

function apacheTime(text: string, h: HeaderScan): number | null {
  const t = h.timeStart;
  const yearAt = h.timeEnd - 4;
  return localTime(num(text, yearAt, 4), monthAt(text, t + 5), num(text, t + 9, 2), num(text, t + 12, 2), num(text, t + 15, 2), num(text, t + 18, 2));
}

/** Apache 2.4: `[module:level]` and `[pid N(:tid N)]` after the time */
const APACHE_24_ERROR: LineFormat = {
  name: "apache 2.4 error",
  programs: ["apache-error"],
  scan(text, start, end, h) {
    const close = apacheTimeEnd(text, start, end);
    if (close < 0) return null;
    const level = text.indexOf("] ", close + 3);
    const colon = text.indexOf(":", close + 3);
    if (level < 0 || level > close + 64 || colon < 0 || colon > level || !text.startsWith("[pid ", level + 2)) return null;
    wholeLine(h, start, end, start, close);
    return text;
  },
  time: apacheTime,
};

/** Apache 2.2: a bare `[level]` after the time */
const APACHE_22_ERROR: LineFormat = {
  name: "apache 2.2 error",
  programs: ["apache-error"],
  scan(text, start, end, h) {
    const close = apacheTimeEnd(text, start, end);
    if (close < 0) return null;
    const level = text.indexOf("] ", close + 3);
    if (level < 0 || level > close + 12) return null;
    for (let i = close + 3; i < level; i++) if (!(text.charCodeAt(i) >= 97 && text.charCodeAt(i) <= 122)) return null;
    wholeLine(h, start, end, start, close);
    return text;
  },
  time: apacheTime,
};

/** `[25/Nov/2026:11:49:50 +0000]` at `at` */
function isAccessTime(text: string, at: number): boolean {
  return (
    text.charCodeAt(at + 2) === 47 && text.charCodeAt(at + 6) === 47 && text.charCodeAt(at + 11) === 58 && text.charCodeAt(at + 20) === SPACE &&
    text.charCodeAt(at + 26) === 93 && digitsAt(text, at, 2) && digitsAt(text, at + 7, 4) && monthAt(text, at + 3) >= 0
  );
}

/**
 * `ADDR IDENT USER [time] "request" ...`, maybe behind a vhost: the time is the first `[` that
 * opens one, after the second word (nginx writes a user name with its spaces).
 */
const ACCESS: LineFormat = {
  name: "access (CLF/combined)",
  programs: ["apache-access", "nginx-access"],
  scan(text, start, end, h) {
    /* a syslog line carrying an access line (nginx through syslog) is syslog's */
    if (startsLikeSyslogTime(text, start)) return null;
    const first = text.indexOf(" ", start);
    if (first <= start || first >= end) return null;
    for (let open = text.indexOf(" [", first + 1); open > 0 && open < end - 29 && open < start + 1024; open = text.indexOf(" [", open + 2)) {
      if (isAccessTime(text, open + 2)) {
        if (text.charCodeAt(open + 29) !== SPACE || text.charCodeAt(open + 30) !== 34 /* " */) return null;
        wholeLine(h, start, end, open + 2, open + 28);
        return text;
      }
    }
    return null;
  },
  time(text, h) {
    const t = h.timeStart;
    const zone = h.timeEnd - 5;
    const sign = text.charCodeAt(zone) === 45 /* - */ ? -1 : 1;
    const offset = sign * (num(text, zone + 1, 2) * 60 + num(text, zone + 3, 2)) * 60;
    const month = monthAt(text, t + 3);
    const utc = Date.UTC(num(text, t + 7, 4), month, num(text, t, 2), num(text, t + 12, 2), num(text, t + 15, 2), num(text, t + 18, 2));
    return month < 0 || Number.isNaN(utc) || Number.isNaN(offset) ? null : utc / 1000 - offset;
  },
};

/**
 * How sshd's messages start (OpenSSH 9 and 10, LogLevel INFO to DEBUG3): only a line that
 * starts so makes a source sshd's own log; after that, any line that does not start like
 * another format's header is taken as sshd's.
 */
const SSHD_STARTS = [
  "Server listening on ", "Received signal ", "Received SIGHUP", "Connection from ", "Connection closed by ", "Connection reset by ",
  "Accepted ", "Failed ", "Invalid user ", "Disconnected from ", "Received disconnect from ", "Disconnecting ", "Postponed ",
  "Unable to negotiate ", "banner exchange: ", "kex_exchange_identification: ", "error: ", "fatal: ", "debug1: ", "debug2: ",
  "debug3: ", "pam_unix(sshd:", "PAM ", "User ", "Timeout before authentication", "Did not receive identification string",
  "Bad protocol version", "drop connection #", "ssh_dispatch_run_fatal: ", "maximum authentication attempts exceeded",
  "Authentication refused: ", "reverse mapping checking", "Address ", "ROOT LOGIN REFUSED", "refused connect from ",
  "Starting session: ", "Close session: ", "Changed root directory", "Transferred: ", "Exiting on signal ", "srclimit_penalise: ",
  "Read error from remote host", "Bad packet length", "Corrupted MAC", "Nasty PTR record", "administratively prohibited",
  "Attempt to write login records", "Not allowed at this time", "Authorized to ", "Starting sshd",
];

/** `Nov 24 `, `Nov  4 ` (RFC 3164) or `2026-11-24T` (RFC 3339) */
function startsLikeSyslogTime(text: string, start: number): boolean {
  const c = text.charCodeAt(start);
  if (isDigit(c)) return text.charCodeAt(start + 4) === 45 && text.charCodeAt(start + 10) === 84 && digitsAt(text, start, 4);
  const d = text.charCodeAt(start + 4);
  return c >= 65 && c <= 90 && text.charCodeAt(start + 3) === SPACE && (isDigit(d) || d === SPACE) && monthAt(text, start) >= 0;
}

/** A line that starts like a header of the other formats: a digit, `[`, `<`, `@`, or a month name and a day. */
function startsLikeHeader(text: string, start: number): boolean {
  const c = text.charCodeAt(start);
  return c === 91 || c === 60 || c === 64 || isDigit(c) || startsLikeSyslogTime(text, start);
}

const sshdMessage = (h: HeaderScan, start: number, end: number): void => wholeLine(h, start, end, start, start);

/** Detected by its first line of a known start; kept while lines do not start like a header. */
const SSHD: LineFormat = {
  name: "sshd -E",
  programs: ["sshd", "sshd-session"],
  scan(text, start, end, h) {
    if (startsLikeHeader(text, start) || text.charCodeAt(start) === SPACE) return null;
    sshdMessage(h, start, end);
    return text;
  },
  time: () => null,
};

const SSHD_FIRST: LineFormat = {
  ...SSHD,
  scan(text, start, end, h) {
    for (const s of SSHD_STARTS) {
      if (text.startsWith(s, start)) {
        sshdMessage(h, start, end);
        return text;
      }
    }
    return null;
  },
};

/** `2026-12-06 06:20:49` at `start`, then `after` (a space: Exim's log time, Dovecot's date-first one; a comma: ProFTPD's) */
function startsWithDateTime(text: string, start: number, after = SPACE): boolean {
  return digitsAt(text, start, 4) && text.charCodeAt(start + 4) === 45 && text.charCodeAt(start + 7) === 45 && text.charCodeAt(start + 10) === SPACE &&
    text.charCodeAt(start + 13) === 58 && text.charCodeAt(start + 16) === 58 && text.charCodeAt(start + 19) === after;
}

/** How Exim's main log lines start after the time: a message id (`1xa5ch-0003V1-08`, 4.97's longer one), a client, an authenticator, Exim's own news */
const EXIM_START = /[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4} |H=|SMTP |exim |Start queue run|End queue run|no host name found|no IP address found|TLS error|unexpected disconnection|[\w-]+ authenticator failed for /y;

/**
 * Exim's main log (/var/log/exim4/mainlog): `2026-12-06 06:20:49 H=(helo) [203.0.113.66] ...`,
 * read whole by the rules of `exim` (they take the time as its first two words). Recognised by
 * a line that starts as only Exim's do, then kept while lines start with the date and time.
 */
const EXIM: LineFormat = {
  name: "exim mainlog",
  programs: ["exim", "exim4"],
  scan(text, start, end, h) {
    /* a host and a tag after the time: a syslog line with a date-first header (Exim through syslog-ng), not a line of the main log */
    if (!startsWithDateTime(text, start) || scanSyslog(text, start, end, h)) return null;
    const pidEnd = eximPidEnd(text, start + 20, end);
    if (pidEnd > 0) {
      /* log_selector = +pid: the rules read the line as Exim writes it without one */
      const line = `${text.slice(start, start + 20)}${text.slice(pidEnd, end)}`;
      wholeLine(h, 0, line.length, 0, 19);
      return line;
    }
    wholeLine(h, start, end, start, start + 19);
    return text;
  },
  time: dateTimeFields,
};

/** After log_selector = +pid's `[1234] ` at `at`: where the rest starts; -1 when there is none. */
function eximPidEnd(text: string, at: number, end: number): number {
  if (text.charCodeAt(at) !== 91 /* [ */) return -1;
  let i = at + 1;
  while (i < end && i < at + 12 && isDigit(text.charCodeAt(i))) i++;
  return i > at + 1 && text.charCodeAt(i) === 93 && text.charCodeAt(i + 1) === SPACE ? i + 2 : -1;
}

const EXIM_FIRST: LineFormat = {
  ...EXIM,
  scan(text, start, end, h) {
    if (!startsWithDateTime(text, start)) return null;
    const pidEnd = eximPidEnd(text, start + 20, end);
    EXIM_START.lastIndex = pidEnd > 0 ? pidEnd : start + 20;
    if (!EXIM_START.test(text)) return null;
    return EXIM.scan(text, start, end, h);
  },
};

/** `Sun Dec  6 12:01:26 2026 ` at `start` (ctime's shape, strftime `%a %b %e %H:%M:%S %Y`): where the year ends, or -1 */
function ctimeEnd(text: string, start: number): number {
  const ok =
    text.charCodeAt(start + 3) === SPACE && text.charCodeAt(start + 7) === SPACE && text.charCodeAt(start + 10) === SPACE && text.charCodeAt(start + 13) === 58 &&
    text.charCodeAt(start + 16) === 58 && text.charCodeAt(start + 19) === SPACE && digitsAt(text, start + 20, 4) && isDigit(text.charCodeAt(start + 9)) && monthAt(text, start + 4) >= 0;
  return ok ? start + 24 : -1;
}

/**
 * vsftpd's own log (vsftpd_log_file, /var/log/vsftpd.log; written when syslog_enable is off):
 * `Sun Dec  6 12:01:28 2026 [pid 10818] [alice] FAIL LOGIN: Client "203.0.113.5"`. The rules
 * read what follows `[pid N] `, which is what vsftpd sends to syslog; the pid is the line's.
 * The time is vsftpd's own: UTC unless use_localtime=YES (Debian's vsftpd.conf sets it); read as local.
 */
const VSFTPD: LineFormat = {
  name: "vsftpd log",
  programs: ["vsftpd"],
  scan(text, start, end, h) {
    const timeEnd = ctimeEnd(text, start);
    if (timeEnd < 0 || !text.startsWith(" [pid ", timeEnd)) return null;
    let close = timeEnd + 6;
    while (close < end && close < timeEnd + 18 && isDigit(text.charCodeAt(close))) close++;
    if (close === timeEnd + 6 || text.charCodeAt(close) !== 93 /* ] */ || text.charCodeAt(close + 1) !== SPACE) return null;
    wholeLine(h, start, end, start, timeEnd);
    h.pidStart = timeEnd + 6;
    h.pidEnd = close;
    h.messageStart = close + 2;
    return text;
  },
  time: (text, h) => {
    const t = h.timeStart;
    const day = text.charCodeAt(t + 8) === SPACE ? num(text, t + 9, 1) : num(text, t + 8, 2);
    return localTime(num(text, t + 20, 4), monthAt(text, t + 4), day, num(text, t + 11, 2), num(text, t + 14, 2), num(text, t + 17, 2));
  },
};

/**
 * ProFTPD's own log (SystemLog, Debian's /var/log/proftpd/proftpd.log):
 * `2026-12-06 12:02:36,543 vm proftpd[12899] 127.0.0.1 (203.0.113.5[203.0.113.5]): USER ...`:
 * a syslog line whose time has milliseconds after a comma and whose tag has no colon. Read as
 * that syslog line: host, program proftpd, its pid, the message after the tag.
 */
const PROFTPD: LineFormat = {
  name: "proftpd SystemLog",
  programs: null,
  scan(text, start, end, h) {
    if (!startsWithDateTime(text, start, 44 /* , */) || !digitsAt(text, start + 20, 3) || text.charCodeAt(start + 23) !== SPACE) return null;
    const hostEnd = charWithin(text, SPACE, start + 24, Math.min(end, start + 280));
    if (hostEnd <= start + 24 || !text.startsWith(" proftpd[", hostEnd)) return null;
    let close = hostEnd + 9;
    while (close < end && close < hostEnd + 21 && isDigit(text.charCodeAt(close))) close++;
    if (close === hostEnd + 9 || text.charCodeAt(close) !== 93 /* ] */ || text.charCodeAt(close + 1) !== SPACE) return null;
    h.timeStart = start;
    h.timeEnd = start + 23;
    h.hostStart = start + 24;
    h.hostEnd = hostEnd;
    h.programStart = hostEnd + 1;
    h.programEnd = hostEnd + 8;
    h.pidStart = hostEnd + 9;
    h.pidEnd = close;
    h.messageStart = close + 2;
    h.lineEnd = end;
    return text;
  },
  time: dateTimeFields,
};

/** The first `c` in text[from, limit), or -1 (indexOf would run on into the next lines of the chunk). */
function charWithin(text: string, c: number, from: number, limit: number): number {
  for (let i = from; i < limit; i++) if (text.charCodeAt(i) === c) return i;
  return -1;
}

/**
 * Where the time of a MySQL or MariaDB error log line ends (the space after it), or -1:
 * MySQL 5.5 and older `130916 21:30:26` / `130916  1:30:26`; MariaDB and MySQL 5.6
 * `2026-12-06 07:49:12` / `2026-12-06  7:49:12`; MySQL 5.7 and 8 `2026-12-06T07:49:12.634875Z`
 * (log_timestamps = UTC, the default) or with a zone offset or none (SYSTEM).
 */
function mysqlTimeEnd(text: string, start: number, end: number): number {
  let at: number;
  if (digitsAt(text, start, 6) && text.charCodeAt(start + 6) === SPACE) at = start + 7;
  else if (digitsAt(text, start, 4) && text.charCodeAt(start + 4) === 45 && text.charCodeAt(start + 7) === 45 && digitsAt(text, start + 8, 2)) {
    if (text.charCodeAt(start + 10) === 84 /* T */) {
      if (text.charCodeAt(start + 13) !== 58 || text.charCodeAt(start + 16) !== 58 || text.charCodeAt(start + 19) !== 46 /* . */) return -1;
      const timeEnd = charWithin(text, SPACE, start + 20, Math.min(end, start + 40));
      return timeEnd;
    }
    if (text.charCodeAt(start + 10) !== SPACE) return -1;
    at = start + 11;
  } else return -1;
  /* the hour, padded with a space by MariaDB and MySQL 5.5 */
  const h1 = text.charCodeAt(at);
  if (!(h1 === SPACE || isDigit(h1)) || !isDigit(text.charCodeAt(at + 1)) || text.charCodeAt(at + 2) !== 58 || text.charCodeAt(at + 5) !== 58) return -1;
  return digitsAt(text, at + 3, 2) && digitsAt(text, at + 6, 2) && text.charCodeAt(at + 8) === SPACE ? at + 8 : -1;
}

const MYSQL_LEVELS = ["[Note] ", "[Warning] ", "[ERROR] ", "[Error] ", "[System] "];

/**
 * The error log of MySQL and MariaDB (log_error: /var/log/mysql/error.log): the time, the
 * thread id (none before MySQL 5.6), the level in brackets, the text:
 * `2026-12-06  7:49:12 6 [Warning] Access denied for user 'root'@'203.0.113.5' (using password: YES)`.
 * Read whole by the rules of mariadbd or mysqld, which take the time as their first words.
 */
const MYSQL_ERROR: LineFormat = {
  name: "mysql error log",
  programs: ["mariadbd", "mysqld"],
  scan(text, start, end, h) {
    const timeEnd = mysqlTimeEnd(text, start, end);
    if (timeEnd < 0) return null;
    let at = timeEnd + 1;
    while (at < end && at < timeEnd + 21 && isDigit(text.charCodeAt(at))) at++;
    if (at > timeEnd + 1) {
      if (text.charCodeAt(at) !== SPACE) return null;
      at++;
    }
    if (text.charCodeAt(at) !== 91 /* [ */ || !MYSQL_LEVELS.some((level) => text.startsWith(level, at))) return null;
    wholeLine(h, start, end, start, timeEnd);
    return text;
  },
  time(text, h) {
    const t = h.timeStart;
    if (h.timeEnd - t === 15 || (h.timeEnd - t === 14 && text.charCodeAt(t + 6) === SPACE)) {
      /* 130916 21:30:26: the hour's place is the 8th char */
      const hour = text.charCodeAt(t + 7) === SPACE ? num(text, t + 8, 1) : num(text, t + 7, 2);
      return localTime(2000 + num(text, t, 2), num(text, t + 2, 2) - 1, num(text, t + 4, 2), hour, num(text, h.timeEnd - 5, 2), num(text, h.timeEnd - 2, 2));
    }
    if (text.charCodeAt(t + 10) === 84) {
      const ms = Date.parse(text.slice(t, h.timeEnd));
      return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
    }
    const hour = text.charCodeAt(t + 11) === SPACE ? num(text, t + 12, 1) : num(text, t + 11, 2);
    return localTime(num(text, t, 4), num(text, t + 5, 2) - 1, num(text, t + 8, 2), hour, num(text, h.timeEnd - 5, 2), num(text, h.timeEnd - 2, 2));
  },
};

/** BIND's logging categories (ARM, "The category Phrase"), as print-category writes them before a message */
const NAMED_CATEGORIES = new Set([
  "client", "cname", "config", "database", "default", "delegation-only", "dispatch", "dnssec", "dnstap", "edns-disabled", "general", "lame-servers",
  "network", "notify", "nsid", "queries", "query-errors", "rate-limit", "resolver", "rpz", "rpz-passthru", "security", "serve-stale", "spill",
  "sslkeylog", "trust-anchor-telemetry", "unmatched", "update", "update-security", "xfer-in", "xfer-out", "zoneload",
]);
const NAMED_SEVERITIES = ["critical: ", "error: ", "warning: ", "notice: ", "info: "];

/** After print-category's `security: ` and print-severity's `error: ` (or `debug 3: `) at `at`, either or both: where the message starts. */
function namedMessageStart(text: string, at: number, end: number): number {
  const colon = charWithin(text, 58, at, Math.min(end, at + 24));
  if (colon > at && text.charCodeAt(colon + 1) === SPACE && NAMED_CATEGORIES.has(text.slice(at, colon))) at = colon + 2;
  for (const severity of NAMED_SEVERITIES) if (text.startsWith(severity, at)) return at + severity.length;
  if (text.startsWith("debug ", at)) {
    let i = at + 6;
    while (isDigit(text.charCodeAt(i))) i++;
    if (i > at + 6 && text.charCodeAt(i) === 58 && text.charCodeAt(i + 1) === SPACE) return i + 2;
  }
  return at;
}

/**
 * Where the time of a line of BIND's own log file ends (the space after it), or -1: print-time
 * yes or local (`06-Dec-2026 12:03:01.318`), iso8601 (`2026-12-06T12:03:01.318`) or iso8601-utc
 * (`...318Z`), always with milliseconds.
 */
function namedTimeEnd(text: string, start: number): number {
  if (isDigit(text.charCodeAt(start + 1)) && text.charCodeAt(start + 2) === 45) {
    const ok = text.charCodeAt(start + 6) === 45 && text.charCodeAt(start + 11) === SPACE && text.charCodeAt(start + 14) === 58 && text.charCodeAt(start + 20) === 46;
    return ok && digitsAt(text, start, 2) && digitsAt(text, start + 7, 4) && digitsAt(text, start + 21, 3) && monthAt(text, start + 3) >= 0 && text.charCodeAt(start + 24) === SPACE ? start + 24 : -1;
  }
  if (!digitsAt(text, start, 4) || text.charCodeAt(start + 4) !== 45 || text.charCodeAt(start + 10) !== 84 || text.charCodeAt(start + 19) !== 46 || !digitsAt(text, start + 20, 3)) return -1;
  const zoneAt = start + 23;
  if (text.charCodeAt(zoneAt) === SPACE) return zoneAt;
  return text.charCodeAt(zoneAt) === 90 /* Z */ && text.charCodeAt(zoneAt + 1) === SPACE ? zoneAt + 1 : -1;
}

/**
 * BIND's own log file (a `logging { channel { file ...; print-time ...; } }`, often
 * /var/log/named/security.log): `06-Dec-2026 12:03:01.318 security: error: client @0x... A#P
 * (example.org): zone transfer 'example.org/AXFR/IN' denied`, the category and severity there
 * when print-category and print-severity are on. Also that message after a syslog time without
 * host or tag, when it carries both (`Oct 23 02:06:39 security: info: client ...`). The rules read
 * what follows the category and severity, which is what named sends to syslog.
 */
const NAMED: LineFormat = {
  name: "named log",
  programs: ["named"],
  scan(text, start, end, h) {
    const timeEnd = namedTimeEnd(text, start);
    /* an ISO time may also start a syslog line (RFC 3339): that line is syslog's, unless its tag is named's category */
    if (timeEnd > 0 && isDigit(text.charCodeAt(start + 2)) && scanSyslog(text, start, end, h) && !(h.hostStart === h.hostEnd && isNamedPrefixed(text, h, end))) return null;
    if (timeEnd > 0) {
      wholeLine(h, start, end, start, timeEnd);
      h.messageStart = namedMessageStart(text, timeEnd + 1, end);
      return text;
    }
    if (!scanSyslog(text, start, end, h) || h.hostStart !== h.hostEnd || !isNamedPrefixed(text, h, end)) return null;
    const { timeStart, timeEnd: syslogTimeEnd } = h;
    wholeLine(h, start, end, timeStart, syslogTimeEnd);
    h.messageStart = namedMessageStart(text, syslogTimeEnd + 1, end);
    return text;
  },
  time(text, h, now) {
    const t = h.timeStart;
    if (text.charCodeAt(t + 2) === 45) return localTime(num(text, t + 7, 4), monthAt(text, t + 3), num(text, t, 2), num(text, t + 12, 2), num(text, t + 15, 2), num(text, t + 18, 2));
    if (isDigit(text.charCodeAt(t))) {
      const ms = Date.parse(text.slice(t, h.timeEnd));
      return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
    }
    return syslogTimeAt(text, t, h.timeEnd, now);
  },
};

/**
 * A line scanned as syslog without host whose tag (no pid) is one of BIND's categories and whose
 * message starts with a severity or a client: named's own line, its category read as a tag.
 */
function isNamedPrefixed(text: string, h: HeaderScan, end: number): boolean {
  if (h.pidStart !== h.pidEnd || !NAMED_CATEGORIES.has(text.slice(h.programStart, h.programEnd))) return false;
  return text.startsWith("client ", h.messageStart) || namedMessageStart(text, h.messageStart, end) > h.messageStart;
}

/** In the order a line is tried when its source's format does not fit it: Dovecot's file before syslog (it fits a header without host too). */
const DETECTION: readonly (readonly [LineFormat, LineFormat])[] = [
  [DOVECOT, DOVECOT],
  [SYSLOG, SYSLOG],
  [NGINX_ERROR, NGINX_ERROR],
  [APACHE_24_ERROR, APACHE_24_ERROR],
  [APACHE_22_ERROR, APACHE_22_ERROR],
  [ACCESS, ACCESS],
  [PROFTPD, PROFTPD],
  [VSFTPD, VSFTPD],
  [MYSQL_ERROR, MYSQL_ERROR],
  [NAMED, NAMED],
  /* Exim's and sshd's own logs: recognised by a known first message, then kept */
  [EXIM_FIRST, EXIM],
  [SSHD_FIRST, SSHD],
];

/**
 * A message that ends in blanks (UW IMAP writes `... [203.0.113.5] `, ProFTPD `... to A:21 `)
 * ends before them, so that rules anchored at the end read it as they read any other: done once
 * per line here rather than by a template per rule.
 */
function trimTrailingBlanks(text: string, h: HeaderScan): void {
  let end = h.lineEnd;
  while (end > h.messageStart && (text.charCodeAt(end - 1) === SPACE || text.charCodeAt(end - 1) === 9 /* tab */)) end--;
  h.lineEnd = end;
}

/** The programs a module listens to, to pick a header-less format's program. */
export interface ProgramList {
  readonly programs: readonly string[];
}

/** The format of one source's lines: the one that fit last, tried first. */
export class SourceFormat {
  /** lines seen per format (by name), and those no format fits */
  private readonly counts = new Map<string, number>();
  private unrecognised = 0;
  private format: LineFormat | null = null;
  private countOf = 0;
  /** the program the lines of a header-less format are taken as; null while the lines name theirs */
  program: string | null;

  /** `given`: the lines are this program's, whole (`--program`): no detection */
  constructor(readonly given: string | null = null) {
    this.program = given;
  }

  /** Scan text[start, end) into h: the text h's offsets refer to, or null when no format fits the line. */
  scan(text: string, start: number, end: number, h: HeaderScan, listened: ProgramList): string | null {
    if (this.given !== null) {
      this.countOf++;
      wholeLine(h, start, end, start, start);
      trimTrailingBlanks(text, h);
      return text;
    }
    const scanned = this.format?.scan(text, start, end, h) ?? null;
    if (scanned === null) return this.detect(text, start, end, h, listened);
    this.countOf++;
    /* the lines that end in a blank are few: only they pay for the trim */
    if (scanned.charCodeAt(h.lineEnd - 1) <= SPACE) trimTrailingBlanks(scanned, h);
    return scanned;
  }

  /** The scanned line's own time (epoch seconds), null when its format has none. */
  time(text: string, h: HeaderScan, now: number): number | null {
    return this.given === null && this.format ? this.format.time(text, h, now) : null;
  }

  /**
   * Lines per format name (with `--program`: all under that program), zero counts left out.
   * `journalExport`: the stream was a journal export, whose entries LineSplitter made syslog lines.
   */
  seen(journalExport = false): Record<string, number> {
    this.flushCount();
    const out: Record<string, number> = {};
    for (const [name, n] of this.counts) if (n > 0) out[journalExport && name === SYSLOG.name ? "journal export" : name] = n;
    if (this.unrecognised > 0) out.unrecognised = this.unrecognised;
    return out;
  }

  private detect(text: string, start: number, end: number, h: HeaderScan, listened: ProgramList): string | null {
    for (const [first, then] of DETECTION) {
      if (then === this.format) continue;
      const scanned = first.scan(text, start, end, h);
      if (scanned === null) continue;
      trimTrailingBlanks(scanned, h);
      this.flushCount();
      this.format = then;
      this.program = then.programs ? (then.programs.find((p) => listened.programs.includes(p)) ?? then.programs[0]!) : null;
      this.countOf = 1;
      return scanned;
    }
    this.unrecognised++;
    return null;
  }

  /** the current format's lines are counted in a plain number (the hot path), added to the map on a change */
  private flushCount(): void {
    const name = this.given !== null ? `--program ${this.given}` : this.format?.name;
    if (name !== undefined && this.countOf > 0) this.counts.set(name, (this.counts.get(name) ?? 0) + this.countOf);
    this.countOf = 0;
  }
}
