/**
 * Counting and the ban decision: pure functions of a host's record, one affair and the
 * module's policy. The caller owns the clock and the storage.
 */
import { PRESET_CLASSES } from "../core/dns";
import type { HostRecord } from "../store/module-db";

export interface BanPolicy {
  readonly maxAffairs: number;
  readonly findTime: number;
  readonly banTime: number;
  readonly banTimeFactor: number;
  readonly maxBanTime: number;
}

/** How long the next ban of an address lasts: banTime × factor^(earlier bans), capped. */
export function banDuration(policy: BanPolicy, earlierBans: number): number {
  const seconds = policy.banTime * policy.banTimeFactor ** earlierBans;
  return Math.round(Math.min(seconds, policy.maxBanTime));
}

export function newHost(address: string, time: number, rule: string): HostRecord {
  return { address, class: null, affairs: 0, recent: [], preset: 0, firstSeen: time, lastSeen: time, banCount: 0, bannedUntil: 0, lastRule: rule, vhost: null };
}

export interface Decision {
  readonly host: HostRecord;
  /** seconds of the ban this affair triggered, or 0 */
  readonly banSeconds: number;
  /** affairs in the window, this one included */
  readonly reached: number;
  /** of those, how many a DNS class preset */
  readonly preset: number;
}

/**
 * Count `weight` affairs for `host` at `time`. The window slides: maxAffairs affairs within
 * any findTime ban, however an attacker paces them around a boundary; then the count starts
 * over. `banNow` (a rule with action ban, a blacklisted address) bans at once. A host that is
 * banned already is not banned again: its affairs are still recorded.
 */
export function countAffair(host: HostRecord, time: number, weight: number, rule: string, policy: BanPolicy, banNow = false): Decision {
  const recent = host.recent.filter((t) => t > time - policy.findTime);
  /* the preset affairs are the oldest: the window lets them go first */
  let preset = Math.max(0, host.preset - (host.recent.length - recent.length));
  for (let i = 0; i < Math.min(weight, policy.maxAffairs); i++) recent.push(time);
  recent.sort((a, b) => a - b); /* a replayed log may be slightly out of order */
  const reached = recent.length;
  const kept = recent.slice(-policy.maxAffairs);
  preset = Math.max(0, preset - (recent.length - kept.length));
  const h: HostRecord = { ...host, lastSeen: Math.max(host.lastSeen, time), lastRule: rule, recent: kept, preset, affairs: reached };
  if (h.bannedUntil > time || !(banNow || reached >= policy.maxAffairs)) return { host: h, banSeconds: 0, reached, preset };
  const banSeconds = banDuration(policy, h.banCount);
  h.banCount += 1;
  h.bannedUntil = time + banSeconds;
  h.affairs = 0;
  h.recent = [];
  h.preset = 0;
  return { host: h, banSeconds, reached, preset };
}

/** A successful login withdraws what its session counted (the latest affairs), unless the host is banned already. */
export function forgiveAffairs(host: HostRecord, affairs: number, time: number): HostRecord {
  if (host.bannedUntil > time) return host;
  const recent = host.recent.slice(0, Math.max(0, host.recent.length - affairs));
  return { ...host, recent, preset: Math.min(host.preset, recent.length), affairs: recent.length };
}

/**
 * A host's DNS class has arrived. NXDOMAIN and FAKEHOST preset its counter to maxAffairs - 1
 * (unless it is banned), so its next affair bans: an address without an honest name is
 * dropped on its second affair.
 */
export function classifyHost(host: HostRecord, cls: string, policy: BanPolicy, time: number): HostRecord {
  if (!PRESET_CLASSES.has(cls) || host.bannedUntil > time) return { ...host, class: cls };
  const recent = [...host.recent];
  let preset = host.preset;
  for (; recent.length < policy.maxAffairs - 1; preset++) recent.unshift(time);
  return { ...host, class: cls, recent, preset, affairs: recent.length };
}
