/**
 * Split a syslog line into header and message, once, with indexOf and char codes rather
 * than a regex: this runs for every line the server writes, so it works on offsets into
 * the read chunk and allocates nothing. Understands RFC 3164 (`Nov 24 10:00:01 host
 * prog[pid]: msg`, optionally behind `<PRI>`), rsyslog's RFC 3339 form and `journalctl -o
 * short-iso` (`2026-11-24T10:00:01.123+01:00 host prog[pid]: msg`), and RFC 5424
 * (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`). The time is kept as text and parsed
 * only for lines that matter (parseSyslogTime).
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
  if (text.charCodeAt(at) === 60 /* < */) {
    const close = text.indexOf(">", at);
    if (close < at + 2 || close > at + 4) return false;
    at = close + 1;
    if (text.charCodeAt(at) === 49 /* 1 */ && text.charCodeAt(at + 1) === SPACE) return scan5424(text, at + 2, end, h);
  }
  let timeEnd: number;
  if (isDigit(text.charCodeAt(at))) {
    /* ISO 8601 / RFC 3339: 2026-11-24T10:00:01[.frac](Z|+hh:mm|+hhmm) */
    if (text.charCodeAt(at + 4) !== 45 || text.charCodeAt(at + 10) !== 84 /* T */) return false;
    timeEnd = text.indexOf(" ", at + 19);
    if (timeEnd < 0 || timeEnd - at > 40 || timeEnd >= end) return false;
  } else {
    /* RFC 3164: "Nov 24 10:00:01" (day space-padded), the month a capitalised word */
    timeEnd = at + 15;
    if (timeEnd >= end || text.charCodeAt(at + 3) !== SPACE || text.charCodeAt(at + 9) !== COLON || text.charCodeAt(timeEnd) !== SPACE) return false;
    if (!isUpper(text.charCodeAt(at)) || !isLower(text.charCodeAt(at + 1)) || !isLower(text.charCodeAt(at + 2))) return false;
  }
  const hostEnd = text.indexOf(" ", timeEnd + 1);
  if (hostEnd <= timeEnd + 1 || hostEnd >= end) return false;
  h.timeStart = at;
  h.timeEnd = timeEnd;
  h.hostStart = timeEnd + 1;
  h.hostEnd = hostEnd;
  return scanTag(text, hostEnd + 1, end, h);
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

/**
 * Epoch seconds of a header time, or null when it cannot be read. RFC 3164 has neither year
 * nor zone: it is local time in the latest year that does not put it more than a day ahead
 * of `now` (a log replayed in January still has December's lines in the old year).
 */
export function parseSyslogTime(time: string, now: number): number | null {
  if (isDigit(time.charCodeAt(0))) {
    let iso = time;
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
  const year = yearAt(now);
  const at = (y: number) => hourStart(time, y, month, day, hh) + mm * 60 + ss;
  const t = at(year);
  if (Number.isNaN(t)) return null;
  if (t > now + 86400) return at(year - 1);
  /* a date far behind now may be next year's: a January line read on New Year's Eve */
  if (now - t > 300 * 86400) {
    const next = at(year + 1);
    if (next <= now + 86400) return next;
  }
  return t;
}

/** The two-digit number at `at`, or NaN. */
function twoDigits(text: string, at: number): number {
  const a = text.charCodeAt(at) - 48;
  const b = text.charCodeAt(at + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : Number.NaN;
}

/** The local year at `now`, remembered for the second: a Date per line is what a replay would pay. */
let lastYear = { now: Number.NaN, year: 0 };

function yearAt(now: number): number {
  if (lastYear.now !== now) lastYear = { now, year: new Date(now * 1000).getFullYear() };
  return lastYear.year;
}

/**
 * Local time is worked out once per hour of log and year (zones change their offset on the
 * hour); the lines of a log come in order, so remembering the last hour is enough.
 */
let lastHour = { text: "", year: 0, start: 0 };

function hourStart(time: string, year: number, month: number, day: number, hour: number): number {
  if (lastHour.year === year && time.startsWith(lastHour.text)) return lastHour.start;
  lastHour = { text: time.slice(0, 9), year, start: new Date(year, month, day, hour, 0, 0).getTime() / 1000 };
  return lastHour.start;
}
