/**
 * What `watcher report` shows, gathered from the firewall and the module databases: one plain
 * document (the JSON output, checked by ReportSchema) that the text renderer lays out. Times
 * are UTC; "today" starts at 00:00Z.
 *
 * With a vhost, only the WB module's events of that vhost are read (db.ts vhostFilter), and
 * neither the firewall nor the hosts table is reported: both mix all vhosts.
 */
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { z } from "zod";
import { type LoadedConfig, MODULE_NAMES, type ModuleName } from "../core/config";
import { ConfigError } from "../core/errors";
import { FLEET_SET } from "../fleet/protocol";
import { createFirewall } from "../core/firewall";
import { BLACKLIST_SET, type Firewall, moduleSetName, WHITELIST_SET } from "../core/firewall/types";
import { readState } from "../dynload/load";
import { dynLists, dynloadSetName } from "../dynload/lists";
import { MODULES } from "../modules/registry";
import { openReadOnly, vhostFilter } from "../store/report-db";
import { dbPath, fleetDbPath } from "../core/layout";

export const HOST_CLASSES = ["NXDOMAIN", "FAKEHOST", "TRUEHOST", "ALLOWED", "UNKNOWN", "unclassified"] as const;
export type HostClassLabel = (typeof HOST_CLASSES)[number];

const Iso = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, "expected an ISO time in UTC");
const Count = z.number().int().nonnegative();

export const ModuleReportSchema = z
  .object({
    module: z.enum(MODULE_NAMES),
    title: z.string(),
    vhost: z.string().nullable(),
    /** addresses the module keeps state for (with a vhost: those that attacked it within expireAfter) */
    tracked: Count,
    /** addresses banned now */
    banned: Count,
    affairsToday: Count,
    /** affairs and new bans since the report's `since` */
    affairs: Count,
    bans: Count,
    byClass: z.array(z.object({ class: z.enum(HOST_CLASSES), addresses: Count, affairs: Count }).strict()),
    byRule: z.array(z.object({ rule: z.string(), affairs: Count, addresses: Count, bans: Count }).strict()),
    topAttackers: z.array(z.object({ address: z.string(), affairs: Count, bans: Count, class: z.enum(HOST_CLASSES), lastSeen: Iso }).strict()),
    latestBans: z.array(z.object({ time: Iso, address: z.string(), rule: z.string(), seconds: Count, until: Iso, vhost: z.string().nullable() }).strict()),
    /** networks banned whole now (a rotating IPv6 /64: pipeline/prefixes.ts), soonest end first; empty for a vhost */
    prefixBans: z.array(z.object({ prefix: z.string(), until: Iso, bans: Count, reason: z.string().nullable() }).strict()),
    /** affairs per hour, oldest first; the last hour is the current one */
    hourly: z.object({ start: Iso, affairs: z.array(Count).length(24) }).strict(),
  })
  .strict();
export type ModuleReport = z.infer<typeof ModuleReportSchema>;

export const ReportSchema = z
  .object({
    generatedAt: Iso,
    since: Iso,
    vhost: z.string().nullable(),
    firewall: z.object({ backend: z.string(), sets: z.array(z.object({ set: z.string(), entries: Count }).strict()) }).strict().nullable(),
    /** the enabled blocklists and those with a cached copy; empty for a vhost's report */
    blocklists: z.array(
      z
        .object({
          list: z.string(),
          enabled: z.boolean(),
          lastFetch: Iso.nullable(),
          lastSuccess: Iso.nullable(),
          entries: Count,
          nextDue: Iso.nullable(),
          lastError: z.string().nullable(),
        })
        .strict(),
    ),
    /** fleet mode: bans received from other nodes since `since`, by origin node; null without [fleet] */
    fleet: z
      .object({
        node: z.string(),
        byOrigin: z.array(z.object({ origin: z.string(), bans: Count, unbans: Count, refused: Count }).strict()),
        latest: z.array(
          z.object({ time: Iso, action: z.enum(["ban", "unban"]), address: z.string(), module: z.enum(MODULE_NAMES), rule: z.string(), origin: z.string(), outcome: z.string() }).strict(),
        ),
      })
      .strict()
      .nullable(),
    modules: z.array(ModuleReportSchema),
  })
  .strict();
export type Report = z.infer<typeof ReportSchema>;

export interface ReportOptions {
  /** epoch seconds */
  readonly now: number;
  readonly since: number;
  /** default: the enabled modules and those with a database */
  readonly modules?: readonly ModuleName[];
  readonly vhost?: string | null;
  /** rows of top attackers and latest bans */
  readonly top?: number;
}

const HOUR = 3600;
const DAY = 86400;

export function iso(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function classLabel(c: string | null): HostClassLabel {
  return (HOST_CLASSES as readonly string[]).includes(c ?? "") ? (c as HostClassLabel) : "unclassified";
}

/** The modules a report covers: the ones asked for, else the enabled ones and those with data. */
export function reportedModules(loaded: LoadedConfig, wanted?: readonly ModuleName[]): ModuleName[] {
  if (wanted?.length) return [...wanted];
  return MODULE_NAMES.filter((m) => loaded.config.modules[m].enabled || existsSync(dbPath(loaded.paths, m)));
}

/** The vhosts the web module has seen, for one report each. */
export function knownVhosts(loaded: LoadedConfig): string[] {
  const db = openReadOnly(dbPath(loaded.paths, "WB"));
  if (!db) return [];
  try {
    return db.query<{ vhost: string }, []>("SELECT DISTINCT vhost FROM events WHERE vhost IS NOT NULL ORDER BY vhost").all().map((r) => r.vhost);
  } finally {
    db.close();
  }
}

function emptyModule(module: ModuleName, vhost: string | null, hourStart: number): ModuleReport {
  return {
    module,
    title: MODULES[module].title,
    vhost,
    tracked: 0,
    banned: 0,
    affairsToday: 0,
    affairs: 0,
    bans: 0,
    byClass: HOST_CLASSES.map((c) => ({ class: c, addresses: 0, affairs: 0 })),
    byRule: [],
    topAttackers: [],
    latestBans: [],
    prefixBans: [],
    hourly: { start: iso(hourStart), affairs: new Array<number>(24).fill(0) },
  };
}

function moduleFacts(db: Database, module: ModuleName, expireAfter: number, o: Required<ReportOptions>, vhost: string | null): ModuleReport {
  const { now, since, top } = o;
  const hourStart = Math.floor(now / HOUR) * HOUR - 23 * HOUR;
  const r = emptyModule(module, vhost, hourStart);
  const v = vhostFilter(vhost);
  const one = <T>(sql: string, ...params: (string | number)[]) => db.query<T, (string | number)[]>(sql).get(...params)!;
  const all = <T>(sql: string, ...params: (string | number)[]) => db.query<T, (string | number)[]>(sql).all(...params);

  if (vhost === null) {
    /* addresses; the networks of prefix counting (`2001:db8:1:2::/64`) are reported apart */
    r.tracked = one<{ n: number }>("SELECT COUNT(*) n FROM hosts WHERE instr(address, '/') = 0").n;
    r.banned = one<{ n: number }>("SELECT COUNT(*) n FROM hosts WHERE banned_until > ? AND instr(address, '/') = 0", now).n;
  } else {
    r.tracked = one<{ n: number }>(`SELECT COUNT(DISTINCT address) n FROM events WHERE kind = 'affair' AND time >= ? AND ${v.sql}`, now - expireAfter, ...v.params).n;
    /* a ban this vhost caused, still running, and not lifted since (the host says so) */
    const e = vhostFilter(vhost, "e");
    r.banned = one<{ n: number }>(
      `SELECT COUNT(DISTINCT e.address) n FROM events e JOIN hosts h ON h.address = e.address
       WHERE e.kind = 'ban' AND e.time + e.value > ? AND h.banned_until > ? AND ${e.sql}`,
      now,
      now,
      ...e.params,
    ).n;
  }
  r.affairsToday = one<{ n: number }>(`SELECT COALESCE(SUM(value), 0) n FROM events WHERE kind = 'affair' AND time >= ? AND ${v.sql}`, Math.floor(now / DAY) * DAY, ...v.params).n;

  const classes = all<{ class: string | null; addresses: number; affairs: number }>(
    `SELECT class, COUNT(DISTINCT address) addresses, SUM(value) affairs FROM events
     WHERE kind = 'affair' AND time >= ? AND ${v.sql} GROUP BY class`,
    since,
    ...v.params,
  );
  for (const c of classes) {
    const row = r.byClass.find((b) => b.class === classLabel(c.class))!;
    row.addresses += c.addresses;
    row.affairs += c.affairs;
  }

  r.byRule = all<ModuleReport["byRule"][number]>(
    `SELECT rule, SUM(CASE kind WHEN 'affair' THEN value ELSE 0 END) affairs, COUNT(DISTINCT address) addresses, SUM(kind = 'ban') bans
     FROM events WHERE kind IN ('affair', 'ban') AND time >= ? AND ${v.sql}
     GROUP BY rule ORDER BY affairs DESC, bans DESC, rule`,
    since,
    ...v.params,
  );
  for (const rule of r.byRule) {
    r.affairs += rule.affairs;
    r.bans += rule.bans;
  }

  /* SQLite takes the bare column `class` from the row of MAX(time): the latest class */
  r.topAttackers = all<{ address: string; affairs: number; bans: number; last: number; class: string | null }>(
    `SELECT address, SUM(CASE kind WHEN 'affair' THEN value ELSE 0 END) affairs, SUM(kind = 'ban') bans, MAX(time) last, class
     FROM events WHERE kind IN ('affair', 'ban') AND time >= ? AND ${v.sql}
     GROUP BY address ORDER BY affairs DESC, bans DESC, address LIMIT ?`,
    since,
    ...v.params,
    top,
  ).map((a) => ({ address: a.address, affairs: a.affairs, bans: a.bans, class: classLabel(a.class), lastSeen: iso(a.last) }));

  r.latestBans = all<{ time: number; address: string; rule: string; value: number; vhost: string | null }>(
    `SELECT time, address, rule, value, vhost FROM events WHERE kind = 'ban' AND time >= ? AND ${v.sql} ORDER BY time DESC, rowid DESC LIMIT ?`,
    since,
    ...v.params,
    top,
  ).map((b) => ({ time: iso(b.time), address: b.address, rule: b.rule, seconds: b.value, until: iso(b.time + b.value), vhost: b.vhost }));

  const hours = all<{ h: number; n: number }>(
    `SELECT (time - ?) / ${HOUR} h, SUM(value) n FROM events WHERE kind = 'affair' AND time >= ? AND time < ? AND ${v.sql} GROUP BY h`,
    hourStart,
    hourStart,
    hourStart + 24 * HOUR,
    ...v.params,
  );
  for (const { h, n } of hours) r.hourly.affairs[h] = n;
  if (vhost === null) r.prefixBans = prefixBans(db, now);
  return r;
}

/** The prefix bans in force (hosts rows whose address is a network), with the reason of each one's last ban (schema 5). */
function prefixBans(db: Database, now: number): ModuleReport["prefixBans"] {
  const withReason = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version >= 5;
  const reason = withReason ? db.query<{ reason: string | null }, [string]>("SELECT reason FROM events WHERE address = ? AND kind = 'ban' ORDER BY rowid DESC LIMIT 1") : null;
  return db
    .query<{ address: string; banned_until: number; ban_count: number }, [number]>(
      "SELECT address, banned_until, ban_count FROM hosts WHERE banned_until > ? AND instr(address, '/') > 0 ORDER BY banned_until, address",
    )
    .all(now)
    .map((h) => ({ prefix: h.address, until: iso(h.banned_until), bans: h.ban_count, reason: reason?.get(h.address)?.reason ?? null }));
}

/** The firewall's sets and their sizes; the caller's firewall, else the configured one. */
async function firewallFacts(loaded: LoadedConfig, modules: readonly ModuleName[], given?: Firewall): Promise<NonNullable<Report["firewall"]>> {
  const fw = given ?? createFirewall(loaded.config, loaded.paths);
  try {
    const sets = [];
    const blocklists = dynLists(loaded.config).filter((l) => l.enabled).map((l) => dynloadSetName(l.name));
    const fleet = loaded.config.fleet ? [FLEET_SET] : [];
    for (const set of [WHITELIST_SET, BLACKLIST_SET, ...modules.map(moduleSetName), ...fleet, ...blocklists]) sets.push({ set, entries: (await fw.list(set)).length });
    return { backend: fw.backend, sets };
  } finally {
    if (!given) await fw.close();
  }
}

function blocklistFacts(loaded: LoadedConfig): Report["blocklists"] {
  return dynLists(loaded.config)
    .map((l) => ({ l, state: readState(loaded.paths, l.name) }))
    .filter(({ l, state }) => l.enabled || state.lastAttempt > 0)
    .map(({ l, state }) => ({
      list: l.name,
      enabled: l.enabled,
      lastFetch: state.lastAttempt ? iso(state.lastAttempt) : null,
      lastSuccess: state.lastSuccess ? iso(state.lastSuccess) : null,
      entries: state.entries,
      nextDue: l.enabled ? iso(Math.max(state.lastAttempt + l.interval, state.expires)) : null,
      lastError: state.lastError,
    }));
}

/** Decisions received from the other nodes (fleet.db), by origin; what each became here. */
function fleetFacts(loaded: LoadedConfig, o: Required<ReportOptions>): Report["fleet"] {
  const settings = loaded.config.fleet;
  if (!settings) return null;
  const facts: NonNullable<Report["fleet"]> = { node: settings.node, byOrigin: [], latest: [] };
  const path = fleetDbPath(loaded.paths);
  if (!existsSync(path)) return facts;
  const db = new Database(path, { readonly: true, strict: true });
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    const modules = o.modules.length ? o.modules : MODULE_NAMES;
    const inModules = `module IN (${modules.map(() => "?").join(", ")})`;
    facts.byOrigin = db
      .query<{ origin: string; bans: number; unbans: number; refused: number }, (string | number)[]>(
        `SELECT origin, sum(action = 'ban' AND outcome = 'applied') AS bans, sum(action = 'unban') AS unbans,
                sum(outcome IN ('protected', 'not-accepted')) AS refused
         FROM received WHERE received >= ? AND ${inModules} GROUP BY origin ORDER BY bans DESC, origin`,
      )
      .all(o.since, ...modules);
    facts.latest = db
      .query<{ received: number; action: "ban" | "unban"; address: string; module: ModuleName; rule: string; origin: string; outcome: string }, (string | number)[]>(
        `SELECT received, action, address, module, rule, origin, outcome FROM received WHERE received >= ? AND ${inModules} ORDER BY received DESC, id LIMIT ?`,
      )
      .all(o.since, ...modules, o.top)
      .map(({ received, ...d }) => ({ time: iso(received), ...d }));
  } finally {
    db.close();
  }
  return facts;
}

export async function gatherReport(loaded: LoadedConfig, options: ReportOptions, firewall?: Firewall): Promise<Report> {
  const vhost = options.vhost ? options.vhost.toLowerCase() : null;
  if (vhost !== null && options.modules?.some((m) => m !== "WB")) throw new ConfigError("--vhost reports the web module (WB) only; leave out --module or give --module WB");
  const o: Required<ReportOptions> = { ...options, top: options.top ?? 10, modules: options.modules ?? [], vhost };
  const modules = vhost === null ? reportedModules(loaded, options.modules) : (["WB"] as ModuleName[]);
  const report: Report = {
    generatedAt: iso(o.now),
    since: iso(o.since),
    vhost,
    firewall: vhost === null ? await firewallFacts(loaded, modules, firewall) : null,
    blocklists: vhost === null ? blocklistFacts(loaded) : [],
    fleet: vhost === null ? fleetFacts(loaded, o) : null,
    modules: [],
  };
  for (const module of modules) {
    const db = openReadOnly(dbPath(loaded.paths, module));
    if (!db) {
      report.modules.push(emptyModule(module, vhost, Math.floor(o.now / HOUR) * HOUR - 23 * HOUR));
      continue;
    }
    try {
      report.modules.push(moduleFacts(db, module, loaded.config.modules[module].expireAfter, o, vhost));
    } finally {
      db.close();
    }
  }
  return report;
}

/** Nothing happened in the period: `--quiet` prints nothing then. */
export function isQuiet(report: Report): boolean {
  return report.modules.every((m) => m.affairs === 0 && m.bans === 0);
}
