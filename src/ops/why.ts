/**
 * `watcher why <address>`: the whole story of one address, to answer "why can't my customer
 * connect?": whether a list protects or drops it, and in every module its DNS class, its counter
 * and window, every affair with the log lines that counted, each ban with its reason and why
 * it lasted that long, the network bans that hold it, and the fleet's decisions about it.
 * Read only.
 */
import type { Database } from "bun:sqlite";
import { type LoadedConfig, moduleNames, type ModuleConfig, type ModuleName, moduleConfig } from "../core/config";
import { formatDuration, iso } from "../core/duration";
import { cidrContains, type Ip, parseCidr } from "../core/ip";
import { Lists, type Protection } from "../core/lists";
import { type ConfigFiles, diskFiles } from "../core/config-files";
import { enforcedEntries } from "../dynload/load";
import { dynloadSetName, dynLists } from "../dynload/lists";
import { dbPath, fleetDbPath } from "../core/layout";
import { createFirewall } from "../core/firewall";
import { BLACKLIST_SET, type Firewall, moduleSetName, WHITELIST_SET } from "../core/firewall/types";
import { FLEET_SET } from "../fleet/protocol";
import { banDuration } from "../pipeline/decide";
import { countedLines, decisionsOf, eventsOf, fleetDecisionsAbout, fleetBans, hostOfAddress, networkHosts, openForReading, openModuleForReading, type StoredEvent } from "../store/ban-queries";
import type { ReceivedDecision } from "../store/fleet-db";
import { type CountedLine, type HostRecord, PERMANENT_UNTIL } from "../store/module-db";

/** What each DNS class means, and what it did to the counter. */
const CLASS_MEANING: Record<string, string> = {
  NXDOMAIN: "the address has no reverse DNS name: its counter was preset to maxAffairs - 1, so its next affair bans",
  FAKEHOST: "its reverse DNS names do not resolve back to it (probable spoofing): its counter was preset to maxAffairs - 1",
  TRUEHOST: "a reverse DNS name resolves back to it (forward-confirmed): counted like any address",
  ALLOWED: "a forward-confirmed name under one of the module's dnsAllow domains: never counted",
  UNKNOWN: "the resolver did not answer (timeout or server failure): no presumption either way",
};
const NOT_CLASSIFIED = "not classified: DNS is off for this module, or no answer came yet";
/** core/dns.ts: a reverse name is the attacker's text, never stored */
export const NAMES_NOT_KEPT = "the DNS answers are not kept: a reverse name is text the address's owner writes";

export interface BanStory {
  readonly time: number;
  readonly seconds: number;
  /** null: until unbanned */
  readonly until: number | null;
  readonly rule: string;
  readonly reason: string | null;
  /** why it lasted that long: the module's policy for the address's nth ban, or a length given by hand */
  readonly length: string;
}

export interface NetworkStory {
  readonly network: string;
  readonly bannedUntil: number | null;
  readonly inForce: boolean;
  readonly events: StoredEvent[];
}

export interface ModuleStory {
  readonly module: ModuleName;
  readonly host: HostRecord | null;
  readonly class: { readonly class: string | null; readonly meaning: string; readonly answers: string };
  /** the sliding window now: affairs in it, what bans, how long it looks back */
  readonly window: { readonly affairs: number; readonly preset: number; readonly maxAffairs: number; readonly findTime: number; readonly oldest: number | null } | null;
  readonly inForce: boolean;
  readonly bans: BanStory[];
  /** every event (affairs, bans, unbans), oldest first: the latest `limit` (bans above are all of them) */
  readonly events: StoredEvent[];
  readonly eventsTotal: number;
  readonly lines: CountedLine[];
  /** network bans of this module that hold the address (a prefix, a manual CIDR) */
  readonly networks: NetworkStory[];
}

export interface Story {
  readonly address: string;
  readonly now: number;
  readonly lists: {
    /** why it is never banned, or null */
    readonly protection: Protection;
    readonly whitelist: string | null;
    readonly blacklist: string | null;
    readonly blocklists: { readonly list: string; readonly entry: string }[];
  };
  /** one line per place that drops it now; empty when nothing does */
  readonly droppedBy: string[];
  readonly modules: ModuleStory[];
  /** null outside a fleet */
  readonly fleet: { readonly ban: { until: number | null; module: string; rule: string; origin: string } | null; readonly decisions: ReceivedDecision[] } | null;
}

/** What the firewall itself holds of an address: the sets of watcher's that drop it (or accept it: the whitelist), or why they were not read. */
export type KernelStory = { readonly sets: string[] } | { readonly error: string };

/**
 * The watcher sets that hold `ip` now, read from the firewall itself (the databases say what
 * watcher decided; a firewall flushed or changed by hand may hold something else).
 */
export async function kernelStory(loaded: LoadedConfig, ip: Ip): Promise<KernelStory> {
  const names = [WHITELIST_SET, BLACKLIST_SET, ...moduleNames(loaded.config).map(moduleSetName), ...(loaded.config.fleet ? [FLEET_SET] : []), ...dynLists(loaded.config).map((l) => dynloadSetName(l.name))];
  let firewall: Firewall;
  try {
    firewall = createFirewall(loaded.config, loaded.paths);
  } catch (e) {
    return { error: (e as Error).message };
  }
  try {
    const sets: string[] = [];
    const errors: string[] = [];
    for (const name of names) {
      try {
        const elements = await firewall.list(name);
        if (elements.some((e) => holds(e.address, ip))) sets.push(name);
      } catch (e) {
        errors.push((e as Error).message); /* a set not made (yet) holds nothing; no set readable at all is an answer of its own */
      }
    }
    return errors.length === names.length ? { error: errors[0]! } : { sets };
  } finally {
    await firewall.close();
  }
}

function holds(element: string, ip: Ip): boolean {
  const net = parseCidr(element);
  return net !== null && cidrContains(net, ip);
}

/** Why a ban of `seconds` lasted that long, by the module's policy. */
export function banLengthReason(policy: ModuleConfig, seconds: number, rule: string, permanent: boolean): string {
  if (permanent) return "until unbanned (--time forever)";
  for (let earlier = 0; earlier < 64; earlier++) {
    const d = banDuration(policy, earlier);
    if (d === seconds) {
      const grown = earlier === 0 ? `banTime ${formatDuration(policy.banTime)} (a first ban)` : `banTime ${formatDuration(policy.banTime)} × banTimeFactor ${policy.banTimeFactor}^${earlier} (${earlier} earlier ban${earlier > 1 ? "s" : ""})`;
      return d >= policy.maxBanTime && earlier > 0 ? `${formatDuration(d)}: capped at maxBanTime ${formatDuration(policy.maxBanTime)}` : `${formatDuration(d)}: ${grown}`;
    }
    if (d >= policy.maxBanTime) break;
  }
  return rule === "manual" ? `${formatDuration(seconds)}: given by hand (--time)` : `${formatDuration(seconds)}: by the policy in force then (not the one configured now)`;
}

function moduleStory(db: Database, module: ModuleName, policy: ModuleConfig, ip: Ip, now: number, limit: number): ModuleStory | null {
  const host = hostOfAddress(db, ip.text);
  const { events, total } = eventsOf(db, ip.text, limit || Number.MAX_SAFE_INTEGER);
  const networks: NetworkStory[] = networkHosts(db)
    .filter((h) => cidrContains(parseCidr(h.address)!, ip) && (h.banCount > 0 || h.bannedUntil > 0))
    .map((h) => ({
      network: h.address,
      bannedUntil: h.bannedUntil >= PERMANENT_UNTIL ? null : h.bannedUntil,
      inForce: h.bannedUntil > now,
      events: decisionsOf(db, h.address),
    }));
  if (!host && total === 0 && networks.length === 0) return null;
  const cls = host?.class ?? null;
  const recent = host ? host.recent.filter((t) => t > now - policy.findTime) : [];
  return {
    module,
    host,
    class: { class: cls, meaning: cls ? (CLASS_MEANING[cls] ?? cls) : NOT_CLASSIFIED, answers: NAMES_NOT_KEPT },
    window: host ? { affairs: recent.length, preset: Math.min(host.preset, recent.length), maxAffairs: policy.maxAffairs, findTime: policy.findTime, oldest: recent[0] ?? null } : null,
    inForce: (host?.bannedUntil ?? 0) > now,
    bans: decisionsOf(db, ip.text)
      .filter((e) => e.kind === "ban")
      .map((e) => {
        const permanent = e.time + e.value >= PERMANENT_UNTIL;
        return { time: e.time, seconds: e.value, until: permanent ? null : e.time + e.value, rule: e.rule, reason: e.reason, length: banLengthReason(policy, e.value, e.rule, permanent) };
      }),
    events,
    eventsTotal: total,
    lines: countedLines(db, ip.text),
    networks,
  };
}

/** The lists that drop an address, in words: what unban cannot lift. */
export function listedDrops(lists: Story["lists"]): string[] {
  return [...(lists.blacklist ? [`blacklist entry ${lists.blacklist}`] : []), ...lists.blocklists.map((b) => `blocklist ${b.list} entry ${b.entry}`)];
}

export function listsStory(loaded: LoadedConfig, ip: Ip, files: ConfigFiles = diskFiles): Story["lists"] {
  const lists = Lists.of(loaded.paths, files);
  const net = parseCidr(ip.text)!;
  const blocklists: { list: string; entry: string }[] = [];
  for (const list of dynLists(loaded.config).filter((l) => l.enabled)) {
    for (const n of enforcedEntries(loaded.paths, list, lists)) if (cidrContains(n, ip)) blocklists.push({ list: list.name, entry: n.text });
  }
  return { protection: lists.protection(ip), whitelist: lists.whitelist.overlapping(net)?.text ?? null, blacklist: lists.blacklist.overlapping(net)?.text ?? null, blocklists };
}

function fleetStory(loaded: LoadedConfig, ip: Ip, now: number): Story["fleet"] {
  if (!loaded.config.fleet) return null;
  const db = openForReading(fleetDbPath(loaded.paths));
  if (!db) return { ban: null, decisions: [] };
  try {
    const ban = fleetBans(db, now).find((b) => b.address === ip.text);
    return {
      ban: ban ? { until: ban.until >= PERMANENT_UNTIL ? null : ban.until, module: ban.module, rule: ban.rule, origin: ban.origin } : null,
      decisions: fleetDecisionsAbout(db, ip.text),
    };
  } finally {
    db.close();
  }
}

function until(u: number | null): string {
  return u === null || u >= PERMANENT_UNTIL ? "until unbanned" : `until ${iso(u)}`;
}

/** `limit`: at most this many of the latest events per module (0: all). */
/** `files`: where the lists are read (controlConfig: the disk, or the configuration in force) */
export function whyStory(loaded: LoadedConfig, ip: Ip, now: number, limit: number, files: ConfigFiles = diskFiles): Story {
  const modules: ModuleStory[] = [];
  for (const module of moduleNames(loaded.config)) {
    const db = openModuleForReading(dbPath(loaded.paths, module));
    if (!db) continue;
    try {
      const story = moduleStory(db, module, moduleConfig(loaded.config, module), ip, now, limit);
      if (story) modules.push(story);
    } finally {
      db.close();
    }
  }
  const lists = listsStory(loaded, ip, files);
  const fleet = fleetStory(loaded, ip, now);
  const droppedBy: string[] = [];
  if (!lists.protection) {
    for (const m of modules) {
      if (m.inForce) droppedBy.push(`${m.module} ban ${until(m.host!.bannedUntil)}`);
      for (const n of m.networks) if (n.inForce) droppedBy.push(`${m.module} ban of network ${n.network} ${until(n.bannedUntil)}`);
    }
    if (fleet?.ban) droppedBy.push(`fleet ban ${until(fleet.ban.until)} (decided by ${fleet.ban.origin}, ${fleet.ban.module} rule ${fleet.ban.rule})`);
    droppedBy.push(...listedDrops(lists));
  }
  return { address: ip.text, now, lists, droppedBy, modules, fleet };
}
