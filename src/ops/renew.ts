/**
 * Bans that outlast what the kernel takes (a permanent ban, a ban time beyond ipset's 24.8
 * days): the kernel holds them for the backend's longest timeout (the clamp stays: no element
 * without a timeout), and this gives them their time again before it runs out. It runs with
 * every expiry (hourly by default) and looks at what the kernel holds: an element whose time
 * left has fallen behind its database ban's (cut to maxTimeout) is given that time again. So an
 * element never outlives its database ban, never lapses early while the schedule runs at least
 * once in maxTimeout / 2, and what is not in the kernel (removed by hand, `stop --remove-firewall`)
 * is not put back: that is start's restore.
 */
import type { Firewall, ListedElement, SetElement } from "../core/firewall/types";
import { parseCidr, parseIp } from "../core/ip";
import type { Lists } from "../core/lists";

/** A ban in force as the databases hold it (module hosts, fleet.db). */
export interface HeldBan {
  readonly address: string;
  readonly until: number;
}

/** seconds an element's time left may trail its ban's before it is renewed (the clocks' rounding) */
export const RENEW_SLACK = 5;

/**
 * The elements to hand the kernel again. A ban of an address that is protected now is left
 * out (start's restore lifts it): a renewal never bans what the lists protect.
 */
export function renewals(bans: readonly HeldBan[], held: readonly ListedElement[], lists: Lists, maxTimeout: number, now: number): SetElement[] {
  const left = new Map(held.map((e) => [e.address, e.timeout]));
  const out: SetElement[] = [];
  for (const b of bans) {
    const kernel = left.get(b.address);
    const due = Math.min(b.until - now, maxTimeout);
    if (kernel === undefined || kernel === 0 || kernel >= due - RENEW_SLACK) continue;
    if (b.address.includes("/")) {
      const net = parseCidr(b.address);
      if (!net || lists.dropConflict(net)) continue;
    } else {
      const ip = parseIp(b.address);
      if (!ip || lists.protection(ip)) continue;
    }
    out.push({ address: b.address, timeout: due });
  }
  return out;
}

/**
 * Renew the long bans of one set; how many were renewed. Only bans with more than half of
 * maxTimeout left can trail the kernel (a shorter one got its whole time, or was renewed to it
 * when it still had more): without one, the set is not even listed.
 */
export async function renewLongBans(firewall: Firewall, set: string, bans: readonly HeldBan[], lists: Lists, now: number): Promise<number> {
  const long = bans.filter((b) => b.until - now > firewall.maxTimeout / 2);
  if (long.length === 0) return 0;
  const elements = renewals(long, await firewall.list(set), lists, firewall.maxTimeout, now);
  if (elements.length === 0) return 0;
  const outcome = await firewall.ban(set, elements);
  return elements.length - outcome.refused.length;
}
