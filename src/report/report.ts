/**
 * What `watcher report` shows, gathered from the firewall and the module databases: one plain
 * document (the JSON output, checked by ReportSchema) that the text renderer lays out. Times
 * are UTC; "today" starts at 00:00Z.
 *
 * With a vhost, only the WB module's events of that vhost are read (db.ts vhostFilter), and
 * neither the firewall nor the hosts table is reported: both mix all vhosts.
 */
import { existsSync } from "node:fs";
import { z } from "zod";
import { type LoadedConfig, MODULE_NAME, moduleNames, type ModuleName, moduleConfig } from "../core/config";
import { iso } from "../core/duration";
import { ConfigError } from "../core/errors";
import { FLEET_SET } from "../fleet/protocol";
import { FleetStore } from "../store/fleet-db";
import { PERMANENT_UNTIL } from "../store/module-db";
import { createFirewall } from "../core/firewall";
import { BLACKLIST_SET, type Firewall, moduleSetName, WHITELIST_SET } from "../core/firewall/types";
import { readState } from "../dynload/load";
import { dynLists, dynloadSetName } from "../dynload/lists";
import { moduleTitle } from "../modules/registry";
import { openReadOnly, ReportReader } from "../store/report-db";
import { dbPath, fleetDbPath } from "../core/layout";

export const HOST_CLASSES = ["NXDOMAIN", "FAKEHOST", "TRUEHOST", "ALLOWED", "UNKNOWN", "unclassified"] as const;
export type HostClassLabel = (typeof HOST_CLASSES)[number];

const Iso = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, "expected an ISO time in UTC");
const Count = z.number().int().nonnegative();

export const ModuleReportSchema = z
  .object({
    module: z.string().regex(MODULE_NAME),
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
    /**
     * `seconds` the ban's length, null for a permanent one (`ban --time forever`, kept until
     * unbanned); `until` when it ended or ends (null: permanent and not lifted); `lifted` when an
     * unban ended it early
     */
    latestBans: z.array(z.object({ time: Iso, address: z.string(), rule: z.string(), seconds: Count.nullable(), until: Iso.nullable(), permanent: z.boolean(), lifted: z.boolean(), vhost: z.string().nullable() }).strict()),
    /** networks banned whole now (a rotating IPv6 /64: pipeline/prefixes.ts), soonest end first; empty for a vhost */
    prefixBans: z.array(z.object({ prefix: z.string(), until: Iso.nullable(), bans: Count, reason: z.string().nullable() }).strict()),
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
    /**
     * the enabled blocklists and those with a cached copy; empty for a vhost's report. `entries`:
     * in the list's set now; `lastFetch`, `nextDue`: null for a list never fetched (due at the
     * next dynload run), `nextDue` null for one not enabled
     */
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
          z.object({ time: Iso, action: z.enum(["ban", "unban"]), address: z.string(), module: z.string(), rule: z.string(), origin: z.string(), outcome: z.string() }).strict(),
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


/** A ban's end as ISO text; null for a ban kept until unbanned (`ban --time forever`). */
function untilOf(epochSeconds: number): string | null {
  return epochSeconds >= PERMANENT_UNTIL ? null : iso(epochSeconds);
}

function classLabel(c: string | null): HostClassLabel {
  return (HOST_CLASSES as readonly string[]).includes(c ?? "") ? (c as HostClassLabel) : "unclassified";
}

/** The modules a report covers: the ones asked for, else the enabled ones and those with data. */
export function reportedModules(loaded: LoadedConfig, wanted?: readonly ModuleName[]): ModuleName[] {
  if (wanted?.length) return wanted.filter((m) => moduleConfig(loaded.config, m)); /* an unknown module is a ConfigError */
  return moduleNames(loaded.config).filter((m) => moduleConfig(loaded.config, m).enabled || existsSync(dbPath(loaded.paths, m)));
}

/** The vhosts the web module has seen, for one report each. */
export function knownVhosts(loaded: LoadedConfig): string[] {
  const db = openReadOnly(dbPath(loaded.paths, "WB"));
  if (!db) return [];
  try {
    return new ReportReader(db, null).vhosts();
  } finally {
    db.close();
  }
}

function emptyModule(module: ModuleName, title: string, vhost: string | null, hourStart: number): ModuleReport {
  return {
    module,
    title,
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

function moduleFacts(reader: ReportReader, module: ModuleName, title: string, expireAfter: number, o: Required<ReportOptions>, vhost: string | null): ModuleReport {
  const { now, since, top } = o;
  const hourStart = Math.floor(now / HOUR) * HOUR - 23 * HOUR;
  const r = emptyModule(module, title, vhost, hourStart);
  r.tracked = reader.tracked(now - expireAfter);
  r.banned = reader.banned(now);
  r.affairsToday = reader.affairsSince(Math.floor(now / DAY) * DAY);
  for (const c of reader.byClass(since)) {
    const row = r.byClass.find((b) => b.class === classLabel(c.class))!;
    row.addresses += c.addresses;
    row.affairs += c.affairs;
  }
  r.byRule = reader.byRule(since);
  for (const rule of r.byRule) {
    r.affairs += rule.affairs;
    r.bans += rule.bans;
  }
  r.topAttackers = reader.topAttackers(since, top).map((a) => ({ address: a.address, affairs: a.affairs, bans: a.bans, class: classLabel(a.class), lastSeen: iso(a.last) }));
  /* a ban an unban lifted early ends when it was lifted: it is never shown as running */
  r.latestBans = reader
    .latestBans(since, top)
    .map((b) => {
      const permanent = b.time + b.value >= PERMANENT_UNTIL;
      return { time: iso(b.time), address: b.address, rule: b.rule, seconds: permanent ? null : b.value, until: untilOf(b.lifted ?? b.time + b.value), permanent, lifted: b.lifted !== null, vhost: b.vhost };
    });
  for (const { h, n } of reader.hourly(hourStart)) r.hourly.affairs[h] = n;
  if (vhost === null) r.prefixBans = reader.prefixBans(now).map((h) => ({ prefix: h.address, until: untilOf(h.banned_until), bans: h.ban_count, reason: h.reason }));
  return r;
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

/**
 * Each blocklist's state; `entries` is what its set holds now (what a download found may be
 * more: entries covering protected addresses are left out), 0 for a list not enabled. A list
 * never fetched has no times: it is due at the next dynload run.
 */
function blocklistFacts(loaded: LoadedConfig, firewall: NonNullable<Report["firewall"]>): Report["blocklists"] {
  return dynLists(loaded.config)
    .map((l) => ({ l, state: readState(loaded.paths, l.name) }))
    .filter(({ l, state }) => l.enabled || state.lastAttempt > 0)
    .map(({ l, state }) => ({
      list: l.name,
      enabled: l.enabled,
      lastFetch: state.lastAttempt ? iso(state.lastAttempt) : null,
      lastSuccess: state.lastSuccess ? iso(state.lastSuccess) : null,
      entries: (l.enabled && firewall.sets.find((s) => s.set === dynloadSetName(l.name))?.entries) || 0,
      nextDue: l.enabled && state.lastAttempt ? iso(Math.max(state.lastAttempt + l.interval, state.expires)) : null,
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
  const fleet = new FleetStore(path, { readOnly: true });
  try {
    const modules = o.modules.length ? o.modules : moduleNames(loaded.config);
    facts.byOrigin = fleet.byOrigin(o.since, modules);
    facts.latest = fleet
      .latestReceived(o.since, modules, o.top)
      .map((d) => ({ time: iso(d.received), action: d.action, address: d.address, module: d.module as ModuleName, rule: d.rule, origin: d.origin, outcome: d.outcome }));
  } finally {
    fleet.close();
  }
  return facts;
}

export async function gatherReport(loaded: LoadedConfig, options: ReportOptions, firewall?: Firewall): Promise<Report> {
  const vhost = options.vhost ? options.vhost.toLowerCase() : null;
  if (vhost !== null && options.modules?.some((m) => m !== "WB")) throw new ConfigError("--vhost reports the web module (WB) only; leave out --module or give --module WB");
  const o: Required<ReportOptions> = { ...options, top: options.top ?? 10, modules: options.modules ?? [], vhost };
  const modules = vhost === null ? reportedModules(loaded, options.modules) : (["WB"] as ModuleName[]);
  const sets = vhost === null ? await firewallFacts(loaded, modules, firewall) : null;
  const report: Report = {
    generatedAt: iso(o.now),
    since: iso(o.since),
    vhost,
    firewall: sets,
    blocklists: sets ? blocklistFacts(loaded, sets) : [],
    fleet: vhost === null ? fleetFacts(loaded, o) : null,
    modules: [],
  };
  for (const module of modules) {
    const title = moduleTitle(loaded.config, module);
    const db = openReadOnly(dbPath(loaded.paths, module));
    if (!db) {
      report.modules.push(emptyModule(module, title, vhost, Math.floor(o.now / HOUR) * HOUR - 23 * HOUR));
      continue;
    }
    try {
      report.modules.push(moduleFacts(new ReportReader(db, vhost), module, title, moduleConfig(loaded.config, module).expireAfter, o, vhost));
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
