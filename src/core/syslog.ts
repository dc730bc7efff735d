/**
 * Split a syslog line into header and message, once, with indexOf rather than a regex:
 * this runs for every line the server writes. Understands RFC 3164 (`Nov 24 10:00:01 host
 * prog[pid]: msg`, optionally behind `<PRI>`), rsyslog's RFC 3339 form and `journalctl -o
 * short-iso` (`2026-11-24T10:00:01.123+01:00 host prog[pid]: msg`), and RFC 5424
 * (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`). The time is kept as text and parsed
 * only for lines that matter (parseSyslogTime).
 */
export interface SyslogLine {
  readonly time: string;
  readonly host: string;
  readonly program: string;
  /** process id as written, "" when the tag has none */
  readonly pid: string;
  readonly message: string;
}

const SPACE = 32;
const COLON = 58;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** `prog[pid]: message` or `prog: message` starting at `at`; null when it is not a tag. */
function splitTag(line: string, at: number, time: string, host: string): SyslogLine | null {
  const colon = line.indexOf(": ", at);
  let end = colon;
  if (colon < 0) {
    /* a tag with an empty message: `prog[1]:` at the very end */
    if (line.charCodeAt(line.length - 1) !== COLON) return null;
    end = line.length - 1;
  }
  const tag = line.slice(at, end);
  if (tag.length === 0 || tag.length > 128 || tag.includes(" ")) return null;
  let program = tag;
  let pid = "";
  const bracket = tag.indexOf("[");
  if (bracket >= 0) {
    if (tag.charCodeAt(tag.length - 1) !== 93 /* ] */) return null;
    program = tag.slice(0, bracket);
    pid = tag.slice(bracket + 1, -1);
  }
  if (program.length === 0) return null;
  return { time, host, program, pid, message: colon < 0 ? "" : line.slice(colon + 2) };
}

/** RFC 5424 after `<PRI>1 `. */
function split5424(line: string, at: number): SyslogLine | null {
  const fields: string[] = [];
  let pos = at;
  for (let i = 0; i < 5; i++) {
    const sp = line.indexOf(" ", pos);
    if (sp < 0) return null;
    fields.push(line.slice(pos, sp));
    pos = sp + 1;
  }
  /* structured data: "-" or one or more [id key="value"...] elements, with \] escapes */
  if (line.charCodeAt(pos) === 45 /* - */) {
    pos += 1;
  } else {
    while (line.charCodeAt(pos) === 91 /* [ */) {
      let i = pos + 1;
      let inQuotes = false;
      for (; i < line.length; i++) {
        const c = line.charCodeAt(i);
        if (c === 92 /* \ */) i++;
        else if (c === 34 /* " */) inQuotes = !inQuotes;
        else if (c === 93 && !inQuotes) break;
      }
      if (i >= line.length) return null;
      pos = i + 1;
    }
  }
  let message = line.charCodeAt(pos) === SPACE ? line.slice(pos + 1) : line.slice(pos);
  if (message.startsWith("\uFEFF")) message = message.slice(1); /* BOM before UTF-8 MSG */
  const [time, host, app, procid] = fields as [string, string, string, string, string];
  if (app === "-" || app.length === 0) return null;
  return { time, host, program: app, pid: procid === "-" ? "" : procid, message };
}

export function splitSyslog(line: string): SyslogLine | null {
  let at = 0;
  if (line.charCodeAt(0) === 60 /* < */) {
    const close = line.indexOf(">");
    if (close < 2 || close > 4) return null;
    at = close + 1;
    if (line.charCodeAt(at) === 49 /* 1 */ && line.charCodeAt(at + 1) === SPACE) return split5424(line, at + 2);
  }
  const c0 = line.charCodeAt(at);
  let timeEnd: number;
  if (isDigit(c0)) {
    /* ISO 8601 / RFC 3339: 2026-11-24T10:00:01[.frac](Z|+hh:mm|+hhmm) */
    if (line.charCodeAt(at + 4) !== 45 || line.charCodeAt(at + 10) !== 84 /* T */) return null;
    timeEnd = line.indexOf(" ", at + 19);
    if (timeEnd < 0 || timeEnd - at > 40) return null;
  } else {
    /* RFC 3164: "Nov 24 10:00:01" (day space-padded) */
    if (line.charCodeAt(at + 3) !== SPACE || line.charCodeAt(at + 9) !== COLON || line.charCodeAt(at + 15) !== SPACE) return null;
    timeEnd = at + 15;
  }
  const hostEnd = line.indexOf(" ", timeEnd + 1);
  if (hostEnd <= timeEnd + 1) return null;
  return splitTag(line, hostEnd + 1, line.slice(at, timeEnd), line.slice(timeEnd + 1, hostEnd));
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
  const [hh, mm, ss] = time.slice(7).split(":").map(Number) as [number, number, number];
  if (month === undefined || !(day >= 1 && day <= 31) || !(hh <= 23 && mm <= 59 && ss <= 60)) return null;
  let year = new Date(now * 1000).getFullYear();
  let t = new Date(year, month, day, hh, mm, ss).getTime() / 1000;
  if (t > now + 86400) {
    year -= 1;
    t = new Date(year, month, day, hh, mm, ss).getTime() / 1000;
  }
  return Number.isNaN(t) ? null : t;
}
