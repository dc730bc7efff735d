/**
 * Counting and the ban decision: pure functions of a host's record, one affair and the
 * module's policy. The caller owns the clock and the storage.
 */
import { PRESET_CLASSES } from "../core/dns";
import type { HostRecord } from "../core/store";

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
  return { address, class: null, affairs: 0, windowStart: time, firstSeen: time, lastSeen: time, banCount: 0, bannedUntil: 0, lastRule: rule };
}

export interface Decision {
  readonly host: HostRecord;
  /** seconds of the ban this affair triggered, or 0 */
  readonly banSeconds: number;
  /** affairs in the window, this one included */
  readonly reached: number;
}

/**
 * Count `weight` affairs for `host` at `time`. Affairs count within a window of findTime
 * from the first affair of the window; reaching maxAffairs bans, and the count starts
 * over. `banNow` (a rule with action ban, a blacklisted address) bans at once. A host that
 * is banned already is not banned again: its affairs are still recorded.
 */
export function countAffair(host: HostRecord, time: number, weight: number, rule: string, policy: BanPolicy, banNow = false): Decision {
  const h: HostRecord = { ...host, lastSeen: Math.max(host.lastSeen, time), lastRule: rule };
  if (time - h.windowStart > policy.findTime) {
    h.affairs = 0;
    h.windowStart = time;
  }
  h.affairs += weight;
  const reached = h.affairs;
  if (h.bannedUntil > time || !(banNow || reached >= policy.maxAffairs)) return { host: h, banSeconds: 0, reached };
  const banSeconds = banDuration(policy, h.banCount);
  h.banCount += 1;
  h.bannedUntil = time + banSeconds;
  h.affairs = 0;
  h.windowStart = time;
  return { host: h, banSeconds, reached };
}

/** A successful login withdraws what its session counted, unless the host is banned already. */
export function forgiveAffairs(host: HostRecord, affairs: number, time: number): HostRecord {
  if (host.bannedUntil > time) return host;
  return { ...host, affairs: Math.max(0, host.affairs - affairs) };
}

/**
 * A host's DNS class has arrived. NXDOMAIN and FAKEHOST preset its counter to maxAffairs - 1
 * (unless it is banned), so its next affair bans: an address without an honest name is
 * dropped on its second affair.
 */
export function classifyHost(host: HostRecord, cls: string, policy: BanPolicy, time: number): HostRecord {
  const preset = PRESET_CLASSES.has(cls) && host.bannedUntil <= time;
  return { ...host, class: cls, affairs: preset ? Math.max(host.affairs, policy.maxAffairs - 1) : host.affairs };
}
