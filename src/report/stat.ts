/**
 * `watcher stat`: CSV statistics (RFC 4180: header row, CRLF, fields quoted where needed) per
 * period, module, rule, host class and vhost. Computed from events, which expiry keeps, so
 * the figures of a month ago stay the same after its hosts are forgotten. Periods are UTC.
 */
import type { LoadedConfig, ModuleName } from "../core/config";
import { ConfigError } from "../core/errors";
import { dbPath } from "../modules/context";
import { openReadOnly } from "./db";
import { reportedModules } from "./report";

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

export function statRows(loaded: LoadedConfig, o: StatOptions): StatRow[] {
  const size = SECONDS[o.by];
  const rows: StatRow[] = [];
  for (const module of reportedModules(loaded, o.modules)) {
    const db = openReadOnly(dbPath(loaded.paths, module));
    if (!db) continue;
    try {
      const found = db
        .query<Omit<StatRow, "module" | "period"> & { start: number }, [number, number]>(
          `SELECT (time / ${size}) * ${size} start, rule, COALESCE(class, '') class, COALESCE(vhost, '') vhost,
             SUM(kind = 'affair') events, SUM(CASE kind WHEN 'affair' THEN value ELSE 0 END) affairs,
             COUNT(DISTINCT address) addresses, SUM(kind = 'ban') bans
           FROM events WHERE kind IN ('affair', 'ban') AND time >= ? AND time < ?
           GROUP BY start, rule, class, vhost`,
        )
        .all(o.from ?? Number.MIN_SAFE_INTEGER, o.to ?? Number.MAX_SAFE_INTEGER);
      for (const { start, ...r } of found) rows.push({ period: periodLabel(start, o.by), module, ...r });
    } finally {
      db.close();
    }
  }
  const order = (r: StatRow) => [r.period, r.module, r.rule, r.class, r.vhost];
  return rows.sort((a, b) => {
    const [x, y] = [order(a), order(b)];
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
    return 0;
  });
}

/** One RFC 4180 field: quoted when it holds a comma, a quote or a line break. */
export function csvField(value: string | number): string {
  const s = String(value);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function toCsv(rows: readonly StatRow[]): string {
  const lines = [STAT_COLUMNS.join(",")];
  for (const r of rows) lines.push(STAT_COLUMNS.map((c) => csvField(r[c])).join(","));
  return `${lines.join("\r\n")}\r\n`;
}
