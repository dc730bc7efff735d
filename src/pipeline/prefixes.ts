/**
 * Prefix counting: an attacker who holds a network (an IPv6 /64, every customer's share) can
 * rotate its addresses, a few affairs each, and no address ever reaches maxAffairs. So every
 * affair also counts for its address's prefix (`ipv6Prefix`, default 64; `ipv4Prefix`, off by
 * default), and a prefix whose addresses cross its limit is banned as one element of the
 * module's set (its kernel backend keeps networks apart: core/firewall/types.ts).
 *
 * A prefix is recorded in the module's database like an address: a hosts row whose address
 * is the network (`2001:db8:1:2::/64`), its window of affairs and bans in `prefixWindow`, its
 * ban in bannedUntil (restored at start, lifted by expire and unban like any other). No state
 * lives in memory, so nothing is evicted: a flood of other prefixes cannot make one forget.
 *
 * A prefix that holds a whitelisted, own, reserved or loopback address is never banned whole
 * (Lists.dropConflict); its addresses still are, one by one.
 */
import type { ModuleConfig } from "../core/config";
import { formatDuration } from "../core/duration";
import type { SetElement } from "../core/firewall/types";
import { type Cidr, type Ip, networkOf } from "../core/ip";
import type { Lists } from "../core/lists";
import type { EventRecord, HostRecord } from "../store/module-db";
import { type BanPolicy, banDuration, newHost } from "./decide";

/** the rule a prefix ban is recorded with */
export const PREFIX_RULE = "prefix";

/** How many affairs of one prefix ban it, by default: four addresses' worth. */
export const PREFIX_AFFAIRS_FACTOR = 4;

export type PrefixPolicy = BanPolicy & Partial<Pick<ModuleConfig, "ipv6Prefix" | "ipv4Prefix" | "prefixMaxAffairs" | "prefixMaxBans">>;

/** Affairs within findTime from at least two addresses of a prefix that ban it: prefixMaxAffairs, else 4 × maxAffairs. */
export function prefixMaxAffairs(policy: PrefixPolicy): number {
  return policy.prefixMaxAffairs ?? PREFIX_AFFAIRS_FACTOR * policy.maxAffairs;
}

/** The prefix an address counts for, or null when prefixes of its family are off. */
export function prefixOf(ip: Ip, policy: PrefixPolicy): Cidr | null {
  const length = ip.family === 6 ? policy.ipv6Prefix : policy.ipv4Prefix;
  if (!length) return null;
  return networkOf(ip, length);
}

/** A prefix's recent affairs and bans: [time, address], oldest first. */
interface Window {
  affairs: [number, string][];
  bans: [number, string][];
}

/**
 * Windows as last written, by their text: a busy prefix's window is read again at its next affair,
 * usually from the record just written, and parsing it each time was most of a prefix's cost. A
 * window read from here is never changed (countPrefixAffair makes new arrays).
 */
const written = new Map<string, Window>();
const WRITTEN_MAX = 256;

function writeWindow(w: Window): string {
  const text = JSON.stringify(w);
  if (written.size >= WRITTEN_MAX) written.clear();
  written.set(text, w);
  return text;
}

function readWindow(host: HostRecord): Window {
  if (!host.prefixWindow) return { affairs: [], bans: [] };
  const known = written.get(host.prefixWindow);
  if (known) return known;
  try {
    const w = JSON.parse(host.prefixWindow) as Window;
    return { affairs: Array.isArray(w.affairs) ? w.affairs : [], bans: Array.isArray(w.bans) ? w.bans : [] };
  } catch {
    return { affairs: [], bans: [] };
  }
}

export interface PrefixDecision {
  readonly host: HostRecord;
  /** seconds of the ban this affair triggered, or 0 */
  readonly banSeconds: number;
  /** affairs in the window, and how many addresses made them */
  readonly affairs: number;
  readonly addresses: number;
  /** addresses banned within the window */
  readonly banned: number;
}

/**
 * Count `weight` affairs of `address` for its prefix at `time` (and its ban, when this affair
 * banned it). The window slides over findTime. The prefix is banned when its addresses made
 * prefixMaxAffairs affairs from at least two of them, or prefixMaxBans of its addresses were
 * banned. One address weighs at most maxAffairs in the window (beyond that it is banned by
 * itself), so one loud address and a neighbour's typo do not ban a whole network. A prefix
 * banned already is not banned again; after its ban the window starts afresh. `mayBan` is asked
 * only when the limit is reached (a prefix that must never be dropped whole says no).
 */
export function countPrefixAffair(
  prefix: HostRecord,
  time: number,
  address: string,
  weight: number,
  addressBanned: boolean,
  rule: string,
  policy: PrefixPolicy,
  mayBan: () => boolean = () => true,
): PrefixDecision {
  const limit = prefixMaxAffairs(policy);
  const maxBans = policy.prefixMaxBans ?? 3;
  const w = readWindow(prefix);
  const since = time - policy.findTime;
  let affairs = w.affairs.filter(([t]) => t > since);
  let bans = w.bans.filter(([t]) => t > since);
  for (let i = 0; i < Math.min(weight, limit); i++) {
    const own = affairs.filter(([, a]) => a === address);
    if (own.length >= policy.maxAffairs) affairs.splice(affairs.indexOf(own[0]!), 1);
    affairs.push([time, address]);
  }
  affairs.sort((a, b) => a[0] - b[0]); /* a replayed log may be slightly out of order */
  affairs = affairs.slice(-limit);
  if (addressBanned) bans = [...bans.filter(([, a]) => a !== address), [time, address] as [number, string]].slice(-maxBans);
  const addresses = new Set(affairs.map(([, a]) => a)).size;
  const h: HostRecord = { ...prefix, lastSeen: Math.max(prefix.lastSeen, time), lastRule: rule, affairs: affairs.length, recent: [] };
  const reached = (affairs.length >= limit && addresses >= 2) || bans.length >= maxBans;
  const result = { affairs: affairs.length, addresses, banned: bans.length };
  if (h.bannedUntil > time || !reached || !mayBan()) return { host: { ...h, prefixWindow: writeWindow({ affairs, bans }) }, banSeconds: 0, ...result };
  const banSeconds = banDuration(policy, h.banCount);
  return { host: { ...h, banCount: h.banCount + 1, bannedUntil: time + banSeconds, affairs: 0, prefixWindow: JSON.stringify({ affairs: [], bans: [] }) }, banSeconds, ...result };
}

/** What a ban looks like to the runtime (its BanReport). */
export interface PrefixBan {
  /** for the module's set; absent when the ban is over already (a replayed log) */
  readonly element: SetElement | null;
  readonly ban: { address: string; time: number; seconds: number; until: number; rule: string; reason: string };
}

/** The reason a prefix ban is recorded and announced with. */
export function prefixReason(net: string, d: PrefixDecision, policy: PrefixPolicy): string {
  const within = formatDuration(policy.findTime);
  const counted = `${d.affairs} affairs from ${d.addresses} addresses`;
  return d.banned >= (policy.prefixMaxBans ?? 3) ? `prefix ${net}: ${d.banned} of its addresses banned within ${within} (${counted})` : `prefix ${net}: ${counted} within ${within}`;
}

/** The pipeline's writes, as the prefix hook uses them (pipeline/persist.ts PendingWrites). */
export interface PrefixWrites {
  getHost(address: string): HostRecord | null;
  putHost(h: HostRecord): void;
  addEvent(e: EventRecord, hostClass: string | null): void;
}

/**
 * The runtime's hook, after an address's affair was counted: count it for the address's
 * prefix, in the same writes (one transaction with the address's), and ban the prefix when it
 * crossed its limit, unless it holds a whitelisted, own or reserved address. `now` is the
 * clock, `time` the affair's (a replay).
 */
export function countPrefix(writes: PrefixWrites, policy: PrefixPolicy, lists: Lists, ip: Ip, rule: string, weight: number, addressBanned: boolean, time: number, now: number, vhost: string | null): PrefixBan | null {
  const net = prefixOf(ip, policy);
  if (!net) return null;
  const before = writes.getHost(net.text) ?? newHost(net.text, time, rule);
  /* a prefix that holds a protected address is never dropped whole: its addresses are banned one by one */
  const d = countPrefixAffair(before, time, ip.text, weight, addressBanned, rule, policy, () => lists.dropConflict(net) === null);
  writes.putHost(d.host);
  if (d.banSeconds === 0) return null;
  const reason = prefixReason(net.text, d, policy);
  const until = d.host.bannedUntil;
  writes.addEvent({ time, address: net.text, rule: PREFIX_RULE, kind: "ban", value: d.banSeconds, user: null, vhost, reason }, null);
  const remaining = until - now;
  return {
    element: remaining > 0 ? { address: net.text, timeout: remaining } : null,
    ban: { address: net.text, time, seconds: d.banSeconds, until, rule: PREFIX_RULE, reason: d.host.banCount > 1 ? `${reason} (ban #${d.host.banCount})` : reason },
  };
}
