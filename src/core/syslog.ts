/**
 * Split a syslog line into header and message, once, with indexOf and char codes rather
 * than a regex: this runs for every line the server writes, so it works on offsets into
 * the read chunk and allocates nothing. Understands RFC 3164 (`Nov 24 10:00:01 host
 * prog[pid]: msg`, optionally behind `<PRI>`), rsyslog's RFC 3339 form and `journalctl -o
 * short-iso` (`2026-11-24T10:00:01.123+01:00 host prog[pid]: msg`; syslog-ng's and rsyslog's
 * templates also write `2026-11-24 10:00:01 host prog[pid]: msg`), and RFC 5424
 * (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`). The common shape is tried first; only a
 * line it does not fit pays for the variants other loggers write: an unpadded day (`Feb 7`),
 * no host name (local sockets, busybox `-S`, metalog's `[prog] msg`), BSD syslogd `-v` (`<auth.info>` before the host),
 * busybox's `facility.level` after the host, macOS's `prog[pid] <Level>:`, rsyslog templates
 * without the colon (`prog[pid] msg`), and socklog behind a TAI64N label (`@4000... auth.info: <the header as received>`). The time
 * is kept as text and parsed only for lines that matter (parseSyslogTime).
 */

/** Offsets of one line's header fields in its text; reused from line to line. */
export class HeaderScan {
  timeStart = 0;
  timeEnd = 0;
  hostStart = 0;
  hostEnd = 0;
  programStart = 0;
  programEnd = 0;
  /** pidStart === pidEnd when the tag has no pid */
  pidStart = 0;
  pidEnd = 0;
  messageStart = 0;
  /** where the line ends in the text the offsets refer to (set by the formats, src/pipeline/formats.ts) */
  lineEnd = 0;
}

const SPACE = 32;
const COLON = 58;
const MAX_TAG = 128;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}

function isLower(c: number): boolean {
  return c >= 97 && c <= 122;
}

/** `prog[pid]: message`, `prog: message` or `prog[pid]:` at the end, starting at `at`. */
function scanTag(text: string, at: number, end: number, h: HeaderScan): boolean {
  const limit = Math.min(end, at + MAX_TAG);
  let i = at;
  for (; i < limit; i++) {
    const c = text.charCodeAt(i);
    if (c === 91 /* [ */ || c === COLON) break;
    if (c === SPACE) return false;
  }
  if (i === at || i >= limit) return false;
  h.programStart = at;
  h.programEnd = i;
  if (text.charCodeAt(i) === 91) {
    const close = text.indexOf("]", i + 1);
    if (close < 0 || close >= limit) return false;
    h.pidStart = i + 1;
    h.pidEnd = close;
    i = close + 1;
    if (text.charCodeAt(i) !== COLON) return false;
  } else {
    h.pidStart = h.pidEnd = i;
  }
  /* i is at the colon: a space follows, or the line ends */
  if (i + 1 >= end) {
    h.messageStart = end;
    return true;
  }
  if (text.charCodeAt(i + 1) !== SPACE) return false;
  h.messageStart = i + 2;
  return true;
}

/**
 * `prog[pid]` not followed by a colon: macOS's `prog[pid] <Level>: message`, or an rsyslog
 * template that leaves the colon out (`prog[pid] message`). Only with a numeric pid: without
 * one, any word would pass for a program.
 */
function scanLooseTag(text: string, at: number, end: number, h: HeaderScan): boolean {
  const open = charWithin(text, 91 /* [ */, at, Math.min(end, at + MAX_TAG));
  if (open <= at || charWithin(text, SPACE, at, open) >= 0) return false;
  let close = open + 1;
  while (close < end && isDigit(text.charCodeAt(close))) close++;
  if (close === open + 1 || text.charCodeAt(close) !== 93 /* ] */ || text.charCodeAt(close + 1) !== SPACE) return false;
  let message = close + 2;
  if (text.charCodeAt(message) === 60 /* < */) {
    const level = charWithin(text, 62 /* > */, message, Math.min(end, message + 16));
    if (level > message && text.charCodeAt(level + 1) === COLON && text.charCodeAt(level + 2) === SPACE) message = level + 3;
  }
  if (message >= end) return false;
  h.programStart = at;
  h.programEnd = open;
  h.pidStart = open + 1;
  h.pidEnd = close;
  h.messageStart = message;
  return true;
}

/** metalog's `[prog] message` (also seen with a colon, `[prog]: message`), no host, no pid: at `at` is the `[`. A number in brackets is a pid (Exim's `[1234] `), not a program. */
function scanBracketTag(text: string, at: number, end: number, h: HeaderScan): boolean {
  if (isDigit(text.charCodeAt(at + 1))) return false;
  const close = charWithin(text, 93 /* ] */, at + 1, Math.min(end, at + MAX_TAG));
  if (close <= at + 1 || charWithin(text, SPACE, at + 1, close) >= 0 || charWithin(text, 91, at + 1, close) >= 0) return false;
  let message = close + 1;
  if (text.charCodeAt(message) === COLON) message++;
  if (text.charCodeAt(message) !== SPACE || message + 1 >= end) return false;
  h.programStart = at + 1;
  h.programEnd = close;
  h.pidStart = h.pidEnd = close;
  h.messageStart = message + 1;
  return true;
}

/** The first `c` in text[from, limit), or -1: indexOf would run on through the lines after this one. */
function charWithin(text: string, c: number, from: number, limit: number): number {
  for (let i = from; i < limit; i++) if (text.charCodeAt(i) === c) return i;
  return -1;
}

/** busybox syslogd's `facility.level` word (`authpriv.info`) in text[at, end) */
const FACILITIES = new Set(["auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user", "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]);
const LEVELS = new Set(["emerg", "alert", "crit", "err", "error", "warn", "warning", "notice", "info", "debug"]);

function isPriorityName(text: string, at: number, end: number): boolean {
  const dot = charWithin(text, 46 /* . */, at, end);
  return dot > at && dot < end - 1 && FACILITIES.has(text.slice(at, dot)) && LEVELS.has(text.slice(dot + 1, end));
}

/** RFC 5424 after `<PRI>1 `. */
function scan5424(text: string, at: number, end: number, h: HeaderScan): boolean {
  const starts = [0, 0, 0, 0, 0];
  const ends = [0, 0, 0, 0, 0];
  let pos = at;
  for (let f = 0; f < 5; f++) {
    const sp = text.indexOf(" ", pos);
    if (sp < 0 || sp >= end) return false;
    starts[f] = pos;
    ends[f] = sp;
    pos = sp + 1;
  }
  /* structured data: "-" or one or more [id key="value"...] elements, with \] escapes */
  if (text.charCodeAt(pos) === 45 /* - */) {
    pos += 1;
  } else {
    if (text.charCodeAt(pos) !== 91) return false;
    while (text.charCodeAt(pos) === 91 /* [ */) {
      let i = pos + 1;
      let inQuotes = false;
      for (; i < end; i++) {
        const c = text.charCodeAt(i);
        if (c === 92 /* \ */) i++;
        else if (c === 34 /* " */) inQuotes = !inQuotes;
        else if (c === 93 && !inQuotes) break;
      }
      if (i >= end) return false;
      pos = i + 1;
    }
  }
  if (pos < end && text.charCodeAt(pos) === SPACE) pos++;
  if (text.charCodeAt(pos) === 0xfeff) pos++; /* BOM before a UTF-8 MSG */
  const appLength = ends[2]! - starts[2]!;
  if (appLength === 0 || (appLength === 1 && text.charCodeAt(starts[2]!) === 45)) return false;
  h.timeStart = starts[0]!;
  h.timeEnd = ends[0]!;
  h.hostStart = starts[1]!;
  h.hostEnd = ends[1]!;
  h.programStart = starts[2]!;
  h.programEnd = ends[2]!;
  const nilPid = ends[3]! - starts[3]! === 1 && text.charCodeAt(starts[3]!) === 45;
  h.pidStart = starts[3]!;
  h.pidEnd = nilPid ? starts[3]! : ends[3]!;
  h.messageStart = Math.min(pos, end);
  return true;
}

/** Scan the header of the line text[start, end); false when it is not a syslog line we know. */
export function scanSyslog(text: string, start: number, end: number, h: HeaderScan): boolean {
  let at = start;
  const first = text.charCodeAt(at);
  if (first === 60 /* < */) {
    const close = text.indexOf(">", at);
    if (close < at + 2 || close > at + 4) return false;
    at = close + 1;
    if (text.charCodeAt(at) === 49 /* 1 */ && text.charCodeAt(at + 1) === SPACE) return scan5424(text, at + 2, end, h);
  } else if (first === 64 /* @ */) {
    return scanTai64n(text, at, end, h);
  }
  const timeEnd = timeEndAt(text, at, end);
  if (timeEnd < 0) return false;
  h.timeStart = at;
  h.timeEnd = timeEnd;
  /* a date-first time without the T: only with a host and a tag, as the templates write it (Exim's and Dovecot's own files start their lines so too) */
  if (timeEnd - at === 19 && text.charCodeAt(at + 10) === SPACE) return scanHostThenTag(text, timeEnd + 1, end, h);
  return scanHostAndTag(text, timeEnd + 1, end, h);
}

/** `host prog[pid]: ` at `at`, none of the variants (scanHostAndTag's first shape) */
function scanHostThenTag(text: string, at: number, end: number, h: HeaderScan): boolean {
  const hostEnd = text.indexOf(" ", at);
  if (hostEnd <= at || hostEnd >= end || text.charCodeAt(hostEnd - 1) === COLON) return false;
  h.hostStart = at;
  h.hostEnd = hostEnd;
  return scanTag(text, hostEnd + 1, end, h);
}

/** Where the time at `at` ends (the space after it), or -1: RFC 3339 or RFC 3164 (day padded, zero-padded or not). */
function timeEndAt(text: string, at: number, end: number): number {
  if (isDigit(text.charCodeAt(at))) {
    if (text.charCodeAt(at + 4) !== 45) return -1;
    if (text.charCodeAt(at + 10) === SPACE) return dateSpaceTimeEnd(text, at, end);
    /* ISO 8601 / RFC 3339: 2026-11-24T10:00:01[.frac](Z|+hh:mm|+hhmm) */
    if (text.charCodeAt(at + 10) !== 84 /* T */) return -1;
    const timeEnd = text.indexOf(" ", at + 19);
    return timeEnd < 0 || timeEnd - at > 40 || timeEnd >= end ? -1 : timeEnd;
  }
  /* RFC 3164: "Nov 24 10:00:01", "Nov  4 10:00:01", or unpadded "Nov 4 10:00:01"; the month a capitalised word */
  if (!isUpper(text.charCodeAt(at)) || !isLower(text.charCodeAt(at + 1)) || !isLower(text.charCodeAt(at + 2)) || text.charCodeAt(at + 3) !== SPACE) return -1;
  const timeEnd = text.charCodeAt(at + 5) === SPACE && isDigit(text.charCodeAt(at + 4)) ? at + 14 : at + 15;
  return timeEnd >= end || text.charCodeAt(timeEnd - 6) !== COLON || text.charCodeAt(timeEnd) !== SPACE ? -1 : timeEnd;
}

/** syslog-ng's and rsyslog's date-first templates without the T at `at`: `2026-11-24 10:00:01`, whole seconds, local time */
function dateSpaceTimeEnd(text: string, at: number, end: number): number {
  const timeEnd = at + 19;
  return timeEnd < end && text.charCodeAt(timeEnd) === SPACE && text.charCodeAt(at + 13) === COLON && text.charCodeAt(at + 16) === COLON && isDigit(text.charCodeAt(at + 11)) ? timeEnd : -1;
}

/** Host and tag after the time: `host prog[pid]: ` first; the variants only for a line it does not fit. */
function scanHostAndTag(text: string, at: number, end: number, h: HeaderScan): boolean {
  let hostEnd = text.indexOf(" ", at);
  /* a host name never ends with a colon: that word is a tag (a line without host) */
  if (hostEnd > at && hostEnd < end && text.charCodeAt(hostEnd - 1) !== COLON) {
    h.hostStart = at;
    h.hostEnd = hostEnd;
    if (scanTag(text, hostEnd + 1, end, h)) return true;
  }
  /* no host name: the tag follows the time, bare or in brackets (metalog) */
  if (scanTag(text, at, end, h) || (text.charCodeAt(at) === 91 && scanBracketTag(text, at, end, h))) {
    h.hostStart = h.hostEnd = at;
    return true;
  }
  /* BSD syslogd -v/-vv: "<4.6>" or "<auth.info>" before the host */
  if (text.charCodeAt(at) === 60 && hostEnd > at && text.charCodeAt(hostEnd - 1) === 62 /* > */) {
    at = hostEnd + 1;
    hostEnd = text.indexOf(" ", at);
  }
  if (hostEnd <= at || hostEnd >= end) return false;
  h.hostStart = at;
  h.hostEnd = hostEnd;
  if (scanTag(text, hostEnd + 1, end, h)) return true;
  /* busybox syslogd: "host authpriv.info prog[pid]: " */
  const priorityEnd = text.indexOf(" ", hostEnd + 1);
  if (priorityEnd > hostEnd + 1 && priorityEnd < end && isPriorityName(text, hostEnd + 1, priorityEnd) && scanTag(text, priorityEnd + 1, end, h)) return true;
  return scanLooseTag(text, hostEnd + 1, end, h);
}

/**
 * A line behind a TAI64N label (daemontools/runit's multilog and svlogd after socklog):
 * `@4000000063e2b6a42c0d2e34 auth.info: Feb  7 10:00:00 host sshd[1]: msg`. socklog writes the
 * facility and level, then the message as the logger received it, usually with a header of its
 * own, whose time is taken; without one, the label's time is the line's.
 */
function scanTai64n(text: string, at: number, end: number, h: HeaderScan): boolean {
  const labelEnd = at + 25;
  if (labelEnd >= end || text.charCodeAt(labelEnd) !== SPACE) return false;
  for (let i = at + 1; i < labelEnd; i++) if (!isHex(text.charCodeAt(i))) return false;
  let p = labelEnd + 1;
  const word = text.indexOf(" ", p);
  if (word > p + 1 && word < end && text.charCodeAt(word - 1) === COLON && isPriorityName(text, p, word - 1)) p = word + 1;
  const timeEnd = timeEndAt(text, p, end);
  if (timeEnd > 0) {
    h.timeStart = p;
    h.timeEnd = timeEnd;
    return scanHostAndTag(text, timeEnd + 1, end, h);
  }
  h.timeStart = at;
  h.timeEnd = labelEnd;
  h.hostStart = h.hostEnd = p;
  return scanTag(text, p, end, h);
}

/** a lower-case hex digit (TAI64N labels) */
export function isHex(c: number): boolean {
  return isDigit(c) || (c >= 97 && c <= 102);
}

export interface SyslogLine {
  readonly time: string;
  readonly host: string;
  readonly program: string;
  /** process id as written, "" when the tag has none */
  readonly pid: string;
  readonly message: string;
}

/** The header fields of one line as strings (tests, tools); the hot path uses scanSyslog. */
export function splitSyslog(line: string): SyslogLine | null {
  const h = new HeaderScan();
  if (!scanSyslog(line, 0, line.length, h)) return null;
  return {
    time: line.slice(h.timeStart, h.timeEnd),
    host: line.slice(h.hostStart, h.hostEnd),
    program: line.slice(h.programStart, h.programEnd),
    pid: line.slice(h.pidStart, h.pidEnd),
    message: line.slice(h.messageStart),
  };
}

/**
 * `program[pid]` (or "" without a pid): the key of a session. Built by concatenation, not
 * one slice: a slice would keep the whole read chunk alive for as long as the session lives.
 */
export function sessionKey(text: string, h: HeaderScan): string {
  return h.pidEnd > h.pidStart ? `${text.slice(h.programStart, h.programEnd)}[${text.slice(h.pidStart, h.pidEnd)}]` : "";
}

const MONTHS: Record<string, number> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
};
const MONTH_CODES = Object.keys(MONTHS).map((m) => [m.charCodeAt(0), m.charCodeAt(1), m.charCodeAt(2)] as const);

/**
 * Epoch seconds of a header time, or null when it cannot be read. RFC 3164 has neither year
 * nor zone: it is local time in the latest year that does not put it more than a day ahead
 * of `now` (a log replayed in January still has December's lines in the old year).
 */
export function parseSyslogTime(time: string, now: number): number | null {
  return syslogTimeAt(time, 0, time.length, now);
}

/**
 * parseSyslogTime of text[start, end), without slicing it out: the common RFC 3164 shape
 * (`Nov 24 10:00:02`, day padded with a zero or a space) is read from char codes; any other
 * shape is sliced and read as before. A replay parses one for every line a rule matched.
 */
export function syslogTimeAt(text: string, start: number, end: number, now: number): number | null {
  if (end - start === 15) {
    const month = monthAt(text, start);
    const d1 = text.charCodeAt(start + 4);
    const d2 = text.charCodeAt(start + 5) - 48;
    const day = (d1 === SPACE ? 0 : (d1 - 48) * 10) + d2;
    if (month >= 0 && (d1 === SPACE || isDigit(d1)) && d2 >= 0 && d2 <= 9 && text.charCodeAt(start + 3) === SPACE) {
      const hh = twoDigits(text, start + 7);
      const mm = twoDigits(text, start + 10);
      const ss = twoDigits(text, start + 13);
      if (!(day >= 1 && day <= 31) || !(hh <= 23 && mm <= 59 && ss <= 60)) return null;
      return inLatestYear(text, start, month, day, hh, mm, ss, now);
    }
  }
  return parseSlicedTime(text.slice(start, end), now);
}

/** Jan..Dec at text[at, at + 3) as 0..11, else -1 */
function monthAt(text: string, at: number): number {
  const a = text.charCodeAt(at);
  const b = text.charCodeAt(at + 1);
  const c = text.charCodeAt(at + 2);
  for (let i = 0; i < MONTH_CODES.length; i++) {
    const m = MONTH_CODES[i]!;
    if (m[0] === a && m[1] === b && m[2] === c) return i;
  }
  return -1;
}

/**
 * An RFC 3164 time (at `at` in `text`, the hour's text in its first 9 chars) in the latest year
 * that does not put it more than a day ahead of `now`; null when the date does not exist.
 */
function inLatestYear(text: string, at: number, month: number, day: number, hh: number, mm: number, ss: number, now: number): number | null {
  const year = yearAt(now);
  const seconds = mm * 60 + ss;
  const t = hourStart(text, at, year, month, day, hh) + seconds;
  if (Number.isNaN(t)) return null;
  if (t > now + 86400) return dateExists(year - 1, month, day) ? hourStart(text, at, year - 1, month, day, hh) + seconds : null;
  /* a date far behind now may be next year's: a January line read on New Year's Eve */
  if (now - t > 300 * 86400 && dateExists(year + 1, month, day)) {
    const next = hourStart(text, at, year + 1, month, day, hh) + seconds;
    if (next <= now + 86400) return next;
  }
  return dateExists(year, month, day) ? t : null;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Feb 30 or Apr 31 is no date (Date would roll it into the next month); Feb 29 only in a leap year. */
function dateExists(year: number, month: number, day: number): boolean {
  if (day <= DAYS_IN_MONTH[month]!) return true;
  return month === 1 && day === 29 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

/** The shapes syslogTimeAt does not read from char codes. */
function parseSlicedTime(time: string, now: number): number | null {
  if (time.charCodeAt(0) === 64 /* @ */) return tai64nTime(time);
  /* an unpadded day, "Feb 7 10:00:00": padded like the others */
  if (time.length === 14 && time.charCodeAt(5) === SPACE) time = `${time.slice(0, 4)} ${time.slice(4)}`;
  if (isDigit(time.charCodeAt(0))) {
    /* "2026-11-24 10:00:01": Date reads the T form (local time without a zone) */
    let iso = time.charCodeAt(10) === SPACE ? `${time.slice(0, 10)}T${time.slice(11)}` : time;
    /* journalctl short-iso on older systemd writes +0100; Date wants +01:00 */
    const m = /([+-])(\d{2})(\d{2})$/.exec(iso);
    if (m && iso.charCodeAt(iso.length - 3) !== COLON) iso = `${iso.slice(0, -5)}${m[1]}${m[2]}:${m[3]}`;
    const ms = Date.parse(iso);
    return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
  }
  const month = MONTHS[time.slice(0, 3)];
  const day = Number(time.slice(4, 6).trim());
  /* "Nov 24 10:00:02": two digits each at 7, 10 and 13 */
  const hh = twoDigits(time, 7);
  const mm = twoDigits(time, 10);
  const ss = twoDigits(time, 13);
  if (month === undefined || !(day >= 1 && day <= 31) || !(hh <= 23 && mm <= 59 && ss <= 60) || time.length !== 15) return null;
  return inLatestYear(time, 0, month, day, hh, mm, ss, now);
}

/**
 * A TAI64N label's second: 2^62 + TAI seconds, TAI being UTC + 10 s as daemontools' tai64n and
 * runit's svlogd write it (leap seconds left out). Labels before 1970 or after 2106 are refused.
 */
function tai64nTime(label: string): number | null {
  if (!label.startsWith("@40000000")) return null;
  const tai = Number.parseInt(label.slice(9, 17), 16);
  return Number.isNaN(tai) ? null : tai - 10;
}

/** The two-digit number at `at`, or NaN. */
function twoDigits(text: string, at: number): number {
  const a = text.charCodeAt(at) - 48;
  const b = text.charCodeAt(at + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : Number.NaN;
}

/** The local year at `now`, remembered for the second: a Date per line is what a replay would pay. */
let lastYear = { now: Number.NaN, year: 0 };

/**
 * Reads the local time zone ahead of the first line: the first local date a process works out
 * loads the zone's data, 10-14 ms here, which the first line matched would otherwise wait for.
 */
export function loadLocalZone(now: number): void {
  yearAt(now);
}

function yearAt(now: number): number {
  if (lastYear.now !== now) lastYear = { now, year: new Date(now * 1000).getFullYear() };
  return lastYear.year;
}

/**
 * Local time is worked out once per hour of log and year (zones change their offset on the
 * hour); the lines of a log come in order, so remembering the last hours is enough. Two are
 * kept: a line whose date lies ahead of now in this year (a November log read in February) has
 * its hour worked out in this year and then in the one before (inLatestYear), and with one
 * remembered each line cost two Dates. Its text (the first 9 chars of the time, `Nov 24 10`) is
 * kept as char codes: no string of the line is kept.
 */
interface KnownHour {
  readonly text: Uint16Array;
  year: number;
  start: number;
}
const knownHours: KnownHour[] = [0, 1].map(() => ({ text: new Uint16Array(9), year: Number.NaN, start: 0 }));

/** `text` at `at` holds the time, whose first 9 chars (`Nov 24 10`) name its hour. */
function hourStart(text: string, at: number, year: number, month: number, day: number, hour: number): number {
  for (const known of knownHours) if (known.year === year && sameHour(known, text, at)) return known.start;
  /* the one worked out longer ago makes room */
  const known = knownHours.pop()!;
  knownHours.unshift(known);
  for (let i = 0; i < 9; i++) known.text[i] = text.charCodeAt(at + i);
  known.year = year;
  known.start = new Date(year, month, day, hour, 0, 0).getTime() / 1000;
  return known.start;
}

function sameHour(known: KnownHour, text: string, at: number): boolean {
  for (let i = 0; i < 9; i++) if (text.charCodeAt(at + i) !== known.text[i]) return false;
  return true;
}
