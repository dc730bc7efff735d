/**
 * `watcher stat`: CSV statistics (RFC 4180: header row, CRLF, fields quoted where needed) per
 * period, module, rule, host class and vhost. Computed from events, which expiry keeps for the
 * module's eventRetention (90 days by default), so the figures of a month ago stay the same after
 * its hosts are forgotten. Periods are UTC.
 */
import type { Database } from "bun:sqlite";
import type { LoadedConfig, ModuleName } from "../core/config";
import { ConfigError } from "../core/errors";
import { openReadOnly, ReportReader } from "../store/report-db";
import { reportedModules } from "./report";
import { dbPath } from "../core/layout";

export type Period = "day" | "hour";

export interface StatOptions {
  readonly by: Period;
  /** epoch seconds, inclusive; null: from the first event */
  readonly from: number | null;
  /** epoch seconds, exclusive; null: up to the last event */
  readonly to: number | null;
  readonly modules?: readonly ModuleName[];
}

export const STAT_COLUMNS = ["period", "module", "rule", "class", "vhost", "events", "affairs", "addresses", "bans"] as const;

export interface StatRow {
  period: string;
  module: ModuleName;
  rule: string;
  /** "" when the host was not classified */
  class: string;
  /** "" outside the web module */
  vhost: string;
  /** affair records */
  events: number;
  /** affairs they stand for (a Dovecot "N attempts" summary is one event, N affairs) */
  affairs: number;
  /** distinct addresses with an affair or a ban */
  addresses: number;
  /** bans that began in the period */
  bans: number;
}

const SECONDS: Record<Period, number> = { day: 86400, hour: 3600 };

/** `2026-11-25` or `2026-11-25T10:00`, `...:30`, with `Z` or an offset; without one it is UTC. */
export function parseDate(text: string, option: string, endOfDay = false): number {
  const date = /^\d{4}-\d\d-\d\d$/.test(text);
  const time = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?(Z|[+-]\d\d:\d\d)?$/.test(text);
  const ms = date ? Date.parse(`${text}T00:00:00Z`) : time ? Date.parse(/Z|[+-]\d\d:\d\d$/.test(text) ? text : `${text}Z`) : NaN;
  if (Number.isNaN(ms)) throw new ConfigError(`${option}: expected a date such as 2026-11-25 or 2026-11-25T10:00Z, got ${JSON.stringify(text)}`);
  /* a whole day given as the end: that day is included */
  return ms / 1000 + (date && endOfDay ? 86400 : 0);
}

function periodLabel(start: number, by: Period): string {
  const iso = new Date(start * 1000).toISOString();
  return by === "day" ? iso.slice(0, 10) : `${iso.slice(0, 13)}:00:00Z`;
}

type Key = [string, string, string, string, string];
const keyOf = (r: StatRow): Key => [r.period, r.module, r.rule, r.class, r.vhost];

function compare(a: StatRow, b: StatRow): number {
  const [x, y] = [keyOf(a), keyOf(b)];
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return 0;
}

/** One module's rows in period, rule, class, vhost order, straight from SQLite. */
function* moduleRows(db: Database, module: ModuleName, o: StatOptions): Generator<StatRow> {
  const rows = new ReportReader(db, null).statRows(SECONDS[o.by], o.from ?? Number.MIN_SAFE_INTEGER, o.to ?? Number.MAX_SAFE_INTEGER);
  for (const { start, ...r } of rows) yield { period: periodLabel(start, o.by), module, ...r };
}

/**
 * The rows of every module, merged into period order as they come: a year by hour is
 * hundreds of thousands of rows, and none of them needs to be held in memory.
 */
export function* statRows(loaded: LoadedConfig, o: StatOptions): Generator<StatRow> {
  const dbs: Database[] = [];
  try {
    const streams: Generator<StatRow>[] = [];
    for (const module of reportedModules(loaded, o.modules)) {
      const db = openReadOnly(dbPath(loaded.paths, module));
      if (!db) continue;
      dbs.push(db);
      streams.push(moduleRows(db, module, o));
    }
    const heads = streams.map((s) => s.next());
    for (;;) {
      let min = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i]!;
        if (!h.done && (min < 0 || compare(h.value, (heads[min] as IteratorYieldResult<StatRow>).value) < 0)) min = i;
      }
      if (min < 0) return;
      yield (heads[min] as IteratorYieldResult<StatRow>).value;
      heads[min] = streams[min]!.next();
    }
  } finally {
    for (const db of dbs) db.close();
  }
}

/** One RFC 4180 field: quoted when it holds a comma, a quote or a line break. */
export function csvField(value: string | number): string {
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** The CSV text in pieces of about 64 KiB, header first. */
export function* csvChunks(rows: Iterable<StatRow>): Generator<string> {
  let chunk = `${STAT_COLUMNS.join(",")}\r\n`;
  for (const r of rows) {
    chunk += `${STAT_COLUMNS.map((c) => csvField(r[c])).join(",")}\r\n`;
    if (chunk.length >= 65536) {
      yield chunk;
      chunk = "";
    }
  }
  yield chunk;
}

export function toCsv(rows: Iterable<StatRow>): string {
  return [...csvChunks(rows)].join("");
}
