/**
 * Manual decisions (`watcher ban` / `watcher unban`): recorded in the module's database like
 * any other ban, and applied to the firewall in the same step. Protected addresses
 * (whitelisted, own, loopback/reserved) are refused.
 */
import type { ModuleConfig, ModuleName } from "../core/config";
import { ConfigError, WatcherError } from "../core/errors";
import { FLEET_SET } from "../fleet/protocol";
import { FleetStore } from "../store/fleet-db";
import { type Firewall, moduleSet, moduleSetName } from "../core/firewall/types";
import type { Ip } from "../core/ip";
import type { Lists } from "../core/lists";
import type { HostRecord, ModuleStore } from "../store/module-db";
import { type ModuleContext } from "../modules/context";
import { banDuration, newHost } from "../pipeline/decide";
import { publisherOf, queueDecision } from "../fleet/publisher";
import { prefixOf } from "../pipeline/prefixes";
import { fleetDbPath } from "../core/layout";
import { nowSeconds } from "../core/duration";

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

/** What a ban made outside the line pipeline needs: the module's store, firewall and lists, and who publishes it. */
export interface BanParts {
  readonly module: ModuleName;
  readonly config: ModuleConfig;
  readonly store: ModuleStore;
  readonly firewall: Firewall;
  readonly lists: Lists;
  /** the fleet node name the ban is published under, or null */
  readonly publisher: string | null;
}

function banPartsOf(ctx: ModuleContext): BanParts {
  return { module: ctx.module, config: ctx.moduleConfig, store: ctx.store, firewall: ctx.firewall, lists: ctx.lists, publisher: publisherOf(ctx.config, ctx.module) };
}

/** Ban now, recorded with `rule` (and queued for the fleet); `seconds` defaults to the module's grown ban time. */
export async function banNow(p: BanParts, ip: Ip, rule: string, seconds: number | undefined, now: number): Promise<ManualBan> {
  refuseProtected(p.lists, ip);
  const host = p.store.getHost(ip.text) ?? newHost(ip.text, now, rule);
  const duration = seconds ?? banDuration(p.config, host.banCount);
  const until = now + duration;
  /* the kernel first: if it refuses, nothing is recorded */
  await p.firewall.ensure([moduleSet(p.module)]);
  const outcome = await p.firewall.ban(moduleSetName(p.module), [{ address: ip.text, timeout: duration }]);
  if (outcome.refused.length > 0) throw new WatcherError(`the kernel refused to ban ${ip.text}: ${outcome.refused[0]!.reason}`);
  p.store.transaction(() => {
    p.store.putHost({ ...host, lastSeen: now, lastRule: rule, banCount: host.banCount + 1, bannedUntil: until, affairs: 0, recent: [], preset: 0 });
    p.store.addEvent({ time: now, address: ip.text, rule, kind: "ban", value: duration, user: null, vhost: null }, host.class);
    if (p.publisher) queueDecision(p.store, p.publisher, p.module, "ban", ip.text, until, rule, now);
  });
  return { address: ip.text, seconds: duration, until };
}

export function manualBan(ctx: ModuleContext, ip: Ip, seconds: number | undefined, now = nowSeconds()): Promise<ManualBan> {
  return banNow(banPartsOf(ctx), ip, MANUAL_RULE, seconds, now);
}

/** In the database only: the host's (or prefix's) ban is over and its count starts afresh, recorded with `rule`. */
export function liftBan(store: ModuleStore, host: HostRecord, rule: string, now: number): void {
  store.transaction(() => {
    store.putHost({ ...host, bannedUntil: 0, affairs: 0, recent: [], preset: 0, ...(host.prefixWindow ? { prefixWindow: null } : {}) });
    store.addEvent({ time: now, address: host.address, rule, kind: "unban", value: 0, user: null, vhost: null }, host.class);
  });
}

/**
 * Lift a ban and start the address's count afresh; false when it was not banned. A prefix ban
 * that holds the address (pipeline/prefixes.ts) is lifted with it. In a fleet, the unban goes to
 * every node, and a fleet ban of the address here is lifted too.
 */
export async function manualUnban(ctx: ModuleContext, ip: Ip, now = nowSeconds()): Promise<boolean> {
  const host = ctx.store.getHost(ip.text);
  let wasBanned = !!host && host.bannedUntil > now;
  /* from the kernel even when the database had no ban: it may have been added by hand */
  await ctx.firewall.ensure([moduleSet(ctx.module)]);
  await ctx.firewall.unban(moduleSetName(ctx.module), [ip.text]);
  if (host) liftBan(ctx.store, host, MANUAL_RULE, now);
  const net = prefixOf(ip, ctx.moduleConfig);
  const prefix = net ? ctx.store.getHost(net.text) : null;
  if (prefix && prefix.bannedUntil > now) {
    await ctx.firewall.unban(moduleSetName(ctx.module), [prefix.address]);
    liftBan(ctx.store, prefix, MANUAL_RULE, now);
    wasBanned = true;
  }
  if (ctx.config.fleet) {
    await ctx.firewall.ensure([{ name: FLEET_SET, kind: "addresses" }]);
    await ctx.firewall.unban(FLEET_SET, [ip.text]);
    const fleet = new FleetStore(fleetDbPath(ctx.paths));
    try {
      wasBanned = fleet.deleteBan(ip.text) || wasBanned;
    } finally {
      fleet.close();
    }
    const publisher = publisherOf(ctx.config, ctx.module);
    if (publisher) ctx.store.transaction(() => queueDecision(ctx.store, publisher, ctx.module, "unban", ip.text, 0, MANUAL_RULE, now));
  }
  return wasBanned;
}
