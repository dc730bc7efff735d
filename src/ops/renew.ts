/**
 * Bans that outlast what the kernel takes (a permanent ban, a ban time beyond ipset's 24.8
 * days): the kernel holds them for the backend's longest timeout (the clamp stays: no element
 * without a timeout), and this gives them that time again before it runs out. It runs with
 * every expiry (hourly by default): a ban with more than half of maxTimeout left is given
 * min(time left, maxTimeout) again, so an element never outlives its database ban and never
 * lapses early while the schedule runs at least once in maxTimeout / 2.
 */
import type { Firewall, SetElement } from "../core/firewall/types";
import { parseCidr, parseIp } from "../core/ip";
import type { Lists } from "../core/lists";

/** A ban in force as the databases hold it (module hosts, fleet.db). */
export interface HeldBan {
  readonly address: string;
  readonly until: number;
}

/**
 * The elements to hand the kernel again. A ban of an address that is protected now is left
 * out (start's restore lifts it): a renewal never bans what the lists protect.
 */
export function renewals(bans: readonly HeldBan[], lists: Lists, maxTimeout: number, now: number): SetElement[] {
  const out: SetElement[] = [];
  for (const b of bans) {
    const left = b.until - now;
    if (left <= maxTimeout / 2) continue;
    if (b.address.includes("/")) {
      const net = parseCidr(b.address);
      if (!net || lists.dropConflict(net)) continue;
    } else {
      const ip = parseIp(b.address);
      if (!ip || lists.protection(ip)) continue;
    }
    out.push({ address: b.address, timeout: Math.min(left, maxTimeout) });
  }
  return out;
}

/** Renew the long bans of one set; how many were renewed. */
export async function renewLongBans(firewall: Firewall, set: string, bans: readonly HeldBan[], lists: Lists, now: number): Promise<number> {
  const elements = renewals(bans, lists, firewall.maxTimeout, now);
  if (elements.length === 0) return 0;
  const outcome = await firewall.ban(set, elements);
  return elements.length - outcome.refused.length;
}
