/**
 * `watcher bans`: every ban in force, wherever it comes from: a module's ban (an address, a
 * prefix, a manual network), the fleet's (fleet.db), the blacklist, a blocklist. Read only:
 * lifted bans are over in the databases (banned_until 0), so they never show as current.
 */
import { type ConfigFiles, diskFiles } from "../core/config-files";
import { type Database } from "bun:sqlite";
import { type LoadedConfig, moduleConfig, moduleNames, type ModuleName } from "../core/config";
import { type Cidr, cidrOverlaps, parseCidr } from "../core/ip";
import { Lists } from "../core/lists";
import { enforcedEntries, readState } from "../dynload/load";
import { dynLists } from "../dynload/lists";
import { dbPath, fleetDbPath } from "../core/layout";
import { fleetBans, moduleBans, openForReading, openModuleForReading } from "../store/ban-queries";
import { PERMANENT_UNTIL } from "../store/module-db";

export type BanSource = "module" | "fleet" | "blacklist" | "blocklist";

export interface BanInForce {
  readonly source: BanSource;
  /** the module (LG, ...), "fleet", "blacklist", or the blocklist's name */
  readonly where: string;
  /** the module whose rule decided it (a fleet ban: on its origin node); null for a list */
  readonly module: ModuleName | null;
  /** an address or a network */
  readonly address: string;
  /** when it was decided (a list: when the list was last loaded); null when not recorded */
  readonly since: number | null;
  /** epoch seconds; null: until lifted (a permanent ban, a list entry) */
  readonly until: number | null;
  readonly rule: string | null;
  readonly reason: string | null;
  /** the DNS class of the address when it was banned */
  readonly class: string | null;
  /** the fleet node that decided it: ours for our own bans in a fleet, null outside a fleet */
  readonly origin: string | null;
}

export type BanOrder = "newest" | "until";

export interface BansQuery {
  readonly now: number;
  /** this module's bans (and the fleet's bans it decided) */
  readonly module?: ModuleName;
  /** decided at or after this time */
  readonly since?: number;
  /** bans of this address or network, of a network that holds it, or of addresses it holds */
  readonly match?: Cidr;
  /** list every blocklist network; without it they are listed only for `match` */
  readonly blocklists?: boolean;
  readonly order: BanOrder;
}

export interface BansView {
  readonly bans: BanInForce[];
  /** blocklist networks in force that were left out (listed with `blocklists`, or `match`) */
  readonly blocklistEntries: number;
}

function withDatabase<T>(path: string, open: (path: string) => Database | null, read: (db: Database) => T): T | null {
  const db = open(path);
  if (!db) return null;
  try {
    return read(db);
  } finally {
    db.close();
  }
}

function moduleBansInForce(loaded: LoadedConfig, module: ModuleName, now: number): BanInForce[] {
  const origin = loaded.config.fleet?.node ?? null;
  const rows = withDatabase(dbPath(loaded.paths, module), openModuleForReading, (db) => moduleBans(db, now)) ?? [];
  return rows.map((r) => ({
    source: "module",
    where: module,
    module,
    address: r.address,
    since: r.since,
    until: r.until >= PERMANENT_UNTIL ? null : r.until,
    rule: r.rule,
    reason: r.reason,
    class: r.class,
    origin,
  }));
}

function fleetBansInForce(loaded: LoadedConfig, now: number): BanInForce[] {
  if (!loaded.config.fleet) return [];
  const rows = withDatabase(fleetDbPath(loaded.paths), openForReading, (db) => fleetBans(db, now)) ?? [];
  return rows.map((b) => ({
    source: "fleet",
    where: "fleet",
    module: b.module as ModuleName,
    address: b.address,
    since: b.since,
    until: b.until >= PERMANENT_UNTIL ? null : b.until,
    rule: b.rule,
    reason: `decided by ${b.origin} (${b.module} rule ${b.rule})`,
    class: null,
    origin: b.origin,
  }));
}

function listBansInForce(loaded: LoadedConfig, withBlocklists: boolean, files: ConfigFiles): { bans: BanInForce[]; blocklistEntries: number } {
  const lists = Lists.of(loaded.paths, files);
  const bans: BanInForce[] = lists.blacklist
    .entries()
    .map((address) => ({ source: "blacklist", where: "blacklist", module: null, address, since: null, until: null, rule: null, reason: `listed in ${loaded.paths.blacklist}`, class: null, origin: null }));
  let blocklistEntries = 0;
  for (const list of dynLists(loaded.config).filter((l) => l.enabled)) {
    const entries = enforcedEntries(loaded.paths, list, lists).map((n) => n.text);
    if (!withBlocklists) {
      blocklistEntries += entries.length;
      continue;
    }
    const loadedAt = readState(loaded.paths, list.name).lastSuccess || null;
    for (const address of entries) bans.push({ source: "blocklist", where: list.name, module: null, address, since: loadedAt, until: null, rule: null, reason: `listed by blocklist ${list.name}`, class: null, origin: null });
  }
  return { bans, blocklistEntries };
}

function overlaps(ban: BanInForce, match: Cidr): boolean {
  const net = parseCidr(ban.address);
  return net !== null && cidrOverlaps(net, match);
}

/** Newest first (undated list entries last), or the soonest to end first (permanent ones last); then by address. */
function compare(order: BanOrder): (a: BanInForce, b: BanInForce) => number {
  const key = order === "newest" ? (b: BanInForce) => -(b.since ?? -Infinity) : (b: BanInForce) => b.until ?? Infinity;
  return (a, b) => key(a) - key(b) || a.where.localeCompare(b.where) || a.address.localeCompare(b.address);
}

/** `files`: where the lists are read (controlConfig: the disk, or the configuration in force) */
export function bansInForce(loaded: LoadedConfig, q: BansQuery, files: ConfigFiles = diskFiles): BansView {
  const modules = q.module ? [q.module].filter((m) => moduleConfig(loaded.config, m)) : moduleNames(loaded.config); /* an unknown module is a ConfigError */
  let bans = modules.flatMap((m) => moduleBansInForce(loaded, m, q.now));
  bans.push(...fleetBansInForce(loaded, q.now).filter((b) => !q.module || b.module === q.module));
  let blocklistEntries = 0;
  if (!q.module) {
    const lists = listBansInForce(loaded, q.blocklists === true || q.match !== undefined, files);
    bans.push(...lists.bans);
    blocklistEntries = lists.blocklistEntries;
  }
  if (q.since !== undefined) bans = bans.filter((b) => b.since !== null && b.since >= q.since!);
  if (q.match) bans = bans.filter((b) => overlaps(b, q.match!));
  return { bans: bans.sort(compare(q.order)), blocklistEntries };
}
