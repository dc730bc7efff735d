/**
 * Manual decisions (`watcher ban` / `watcher unban`): recorded in the module's database like
 * any other ban, and applied to the firewall in the same step. Protected addresses
 * (whitelisted, own, loopback/reserved) are refused.
 */
import { ConfigError } from "../core/errors";
import { moduleSet, moduleSetName } from "../core/firewall/types";
import type { Ip } from "../core/ip";
import type { Lists } from "../core/lists";
import type { HostRecord, ModuleStore } from "../core/store";
import type { ModuleContext } from "./context";
import { banDuration, newHost } from "./decide";

export const MANUAL_RULE = "manual";

export interface ManualBan {
  readonly address: string;
  readonly seconds: number;
  readonly until: number;
}

/** Throws when `ip` must never be banned: whitelisted, our own, or loopback/reserved. */
export function refuseProtected(lists: Lists, ip: Ip): void {
  const protection = lists.protection(ip);
  if (protection) throw new ConfigError(`refusing to ban ${ip.text}: it is ${protection === "reserved" ? "a loopback or reserved address" : protection === "own" ? "an address of this machine" : "whitelisted"}`);
}

export async function manualBan(ctx: ModuleContext, ip: Ip, seconds: number | undefined, now = Math.floor(Date.now() / 1000)): Promise<ManualBan> {
  refuseProtected(ctx.lists, ip);
  const host = ctx.store.getHost(ip.text) ?? newHost(ip.text, now, MANUAL_RULE);
  const duration = seconds ?? banDuration(ctx.moduleConfig, host.banCount);
  const until = now + duration;
  /* the kernel first: if it refuses, nothing is recorded */
  await ctx.firewall.ensure([moduleSet(ctx.module)]);
  await ctx.firewall.ban(moduleSetName(ctx.module), [{ address: ip.text, timeout: duration }]);
  ctx.store.transaction(() => {
    ctx.store.putHost({ ...host, lastSeen: now, lastRule: MANUAL_RULE, banCount: host.banCount + 1, bannedUntil: until, affairs: 0, recent: [] });
    ctx.store.addEvent({ time: now, address: ip.text, rule: MANUAL_RULE, kind: "ban", value: duration, user: null, vhost: null }, host.class);
  });
  return { address: ip.text, seconds: duration, until };
}

/** In the database only: the host's ban is over and its count starts afresh, recorded with `rule`. */
export function liftBan(store: ModuleStore, host: HostRecord, rule: string, now: number): void {
  store.transaction(() => {
    store.putHost({ ...host, bannedUntil: 0, affairs: 0, recent: [] });
    store.addEvent({ time: now, address: host.address, rule, kind: "unban", value: 0, user: null, vhost: null }, host.class);
  });
}

/** Lift a ban and start the address's count afresh; false when it was not banned. */
export async function manualUnban(ctx: ModuleContext, ip: Ip, now = Math.floor(Date.now() / 1000)): Promise<boolean> {
  const host = ctx.store.getHost(ip.text);
  const wasBanned = !!host && host.bannedUntil > now;
  /* from the kernel even when the database had no ban: it may have been added by hand */
  await ctx.firewall.ensure([moduleSet(ctx.module)]);
  await ctx.firewall.unban(moduleSetName(ctx.module), [ip.text]);
  if (host) liftBan(ctx.store, host, MANUAL_RULE, now);
  return wasBanned;
}
