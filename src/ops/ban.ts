/**
 * Manual decisions (`watcher ban` / `watcher unban`): recorded in the module's database like
 * any other ban, and applied to the firewall in the same step. Protected addresses
 * (whitelisted, own, loopback/reserved) are refused, and so is a network that holds one. A
 * ban may be permanent (until unbanned): the database holds it for ever, the kernel for its
 * longest timeout, renewed before it lapses (ops/renew.ts). An unban without a module lifts
 * the address everywhere: every module, every network ban that holds it, the fleet.
 */
import { existsSync } from "node:fs";
import { type LoadedConfig, moduleNames, type ModuleConfig, type ModuleName, moduleConfig } from "../core/config";
import { ConfigError, WatcherError } from "../core/errors";
import { FLEET_SET } from "../fleet/protocol";
import { FleetStore } from "../store/fleet-db";
import { type Firewall, moduleSet, moduleSetName } from "../core/firewall/types";
import { type Cidr, cidrContains, type Ip, parseCidr, parseIp } from "../core/ip";
import type { Lists } from "../core/lists";
import { type HostRecord, ModuleStore, PERMANENT_UNTIL } from "../store/module-db";
import { type ModuleContext } from "../modules/context";
import { banDuration, newHost } from "../pipeline/decide";
import { publisherOf, queueDecision } from "../fleet/publisher";
import { dbPath, fleetDbPath } from "../core/layout";
import { formatDuration, nowSeconds } from "../core/duration";
import { whoRuns } from "./manual-log";

export const MANUAL_RULE = "manual";

/** `--time forever`: banned until unbanned. */
export const FOREVER = "forever";

export interface ManualBan {
  readonly address: string;
  readonly seconds: number;
  readonly until: number;
  readonly permanent: boolean;
  /** why, as recorded with the ban (who, how long and why that long) */
  readonly reason: string;
}

/** An address or network given by an operator: canonical, or a usage error. */
export function parseOperatorTarget(text: string): Cidr {
  const net = parseCidr(text);
  if (!net) throw new ConfigError(`${JSON.stringify(text)} is not an IPv4 or IPv6 address or network (CIDR)`);
  return net;
}

/** The single address a target is, or null for a network wider than one address. */
export function singleAddress(target: Cidr | Ip): Ip | null {
  if (!("prefix" in target)) return target;
  return target.prefix === (target.family === 4 ? 32 : 128) ? parseIp(target.text) : null;
}

/** Throws when `target` must never be banned: whitelisted, our own, loopback/reserved, or a network that holds one (or too wide). */
export function refuseProtected(lists: Lists, target: Cidr | Ip): void {
  const ip = singleAddress(target);
  if (ip) {
    const protection = lists.protection(ip);
    if (protection) throw new ConfigError(`refusing to ban ${ip.text}: it is ${protection === "reserved" ? "a loopback or reserved address" : protection === "own" ? "an address of this machine" : "whitelisted"}`);
    return;
  }
  const conflict = lists.dropConflict(target as Cidr);
  if (conflict) throw new ConfigError(`refusing to ban ${target.text}: it ${conflict}`);
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

/** How long: a number of seconds, FOREVER, or undefined for the module's ban time grown for repeat offenders. */
export type BanLength = number | typeof FOREVER | undefined;

/**
 * Ban `target` (an address or a network) now, recorded with `rule` and `reason` (and queued for
 * the fleet). The reason gets how long and why that long.
 */
export async function banNow(p: BanParts, target: Cidr | Ip, rule: string, length: BanLength, now: number, reason: string): Promise<ManualBan> {
  refuseProtected(p.lists, target);
  const host = p.store.getHost(target.text) ?? newHost(target.text, now, rule);
  const permanent = length === FOREVER;
  const seconds = permanent ? PERMANENT_UNTIL - now : (length ?? banDuration(p.config, host.banCount));
  const until = now + seconds;
  const howLong = permanent
    ? "until unbanned"
    : length !== undefined
      ? `for ${formatDuration(seconds)} as asked`
      : `for ${formatDuration(seconds)}: ban #${host.banCount + 1}, banTime ${formatDuration(p.config.banTime)} × ${p.config.banTimeFactor}^${host.banCount}${seconds >= p.config.maxBanTime ? `, capped at maxBanTime ${formatDuration(p.config.maxBanTime)}` : ""}`;
  const fullReason = `${reason}, ${howLong}`;
  /* the kernel first: if it refuses, nothing is recorded; a permanent ban for the longest the kernel takes */
  await p.firewall.ensure([moduleSet(p.module)]);
  const outcome = await p.firewall.ban(moduleSetName(p.module), [{ address: target.text, timeout: Math.min(seconds, p.firewall.maxTimeout) }]);
  if (outcome.refused.length > 0) throw new WatcherError(`the kernel refused to ban ${target.text}: ${outcome.refused[0]!.reason}`);
  p.store.transaction(() => {
    p.store.putHost({ ...host, lastSeen: now, lastRule: rule, banCount: host.banCount + 1, bannedUntil: until, affairs: 0, recent: [], preset: 0 });
    p.store.addEvent({ time: now, address: target.text, rule, kind: "ban", value: seconds, user: null, vhost: null, reason: fullReason }, host.class);
    if (p.publisher) queueDecision(p.store, p.publisher, p.module, "ban", target.text, until, rule, now);
  });
  return { address: target.text, seconds, until, permanent, reason: fullReason };
}

export function manualBan(ctx: ModuleContext, target: Cidr | Ip, length: BanLength, now = nowSeconds(), who = whoRuns()): Promise<ManualBan> {
  return banNow(banPartsOf(ctx), target, MANUAL_RULE, length, now, `manual ban by ${who}`);
}

/** In the database only: the host's (or prefix's) ban is over and its count starts afresh, recorded with `rule`. */
export function liftBan(store: ModuleStore, host: HostRecord, rule: string, now: number, reason: string | null = null): void {
  store.transaction(() => {
    store.putHost({ ...host, bannedUntil: 0, affairs: 0, recent: [], preset: 0, ...(host.prefixWindow ? { prefixWindow: null } : {}) });
    store.addEvent({ time: now, address: host.address, rule, kind: "unban", value: 0, user: null, vhost: null, reason }, host.class);
  });
}

/** A ban an unban lifted: in a module (the address, or a network that held it), or the fleet's. */
export interface Lifted {
  readonly where: ModuleName | "fleet";
  readonly address: string;
}

/**
 * Lift the bans of `target` in one module and start its count afresh: the host's, and for a
 * single address every network ban of the module that holds it (a prefix ban, a manual CIDR),
 * so that the address can connect again.
 * The kernel is told even when the database had no ban: it may have been added by hand.
 */
async function unbanInModule(p: BanParts, target: Cidr, now: number, reason: string): Promise<Lifted[]> {
  const lifted: Lifted[] = [];
  const ip = singleAddress(target);
  const host = p.store.getHost(target.text);
  const networks = ip ? p.store.bannedNetworks(now).filter((h) => cidrContains(parseCidr(h.address)!, ip)) : [];
  await p.firewall.ensure([moduleSet(p.module)]);
  await p.firewall.unban(moduleSetName(p.module), [target.text, ...networks.map((h) => h.address)]);
  for (const h of [host, ...networks]) {
    if (!h) continue;
    if (h.bannedUntil > now) lifted.push({ where: p.module, address: h.address });
    liftBan(p.store, h, MANUAL_RULE, now, reason);
  }
  /* the fleet lifts what was asked, and the networks that held the address here */
  publishUnbans(p, [target.text, ...networks.map((h) => h.address)], now);
  return lifted;
}

/** Unbans for the fleet, in the module's outbox, when the module publishes: an unban is applied by every node, whatever its module. */
function publishUnbans(p: Pick<BanParts, "store" | "publisher" | "module">, addresses: readonly string[], now: number): void {
  const { publisher } = p;
  if (publisher && addresses.length > 0) p.store.transaction(() => addresses.forEach((a) => queueDecision(p.store, publisher, p.module, "unban", a, 0, MANUAL_RULE, now)));
}

/** The fleet's networks an unban of an address lifted here: the other nodes lift them too. */
const fleetNetworks = (lifted: readonly Lifted[]) => lifted.filter((l) => l.where === "fleet" && l.address.includes("/")).map((l) => l.address);

/** The fleet's bans of `target` here (fleet.db and watcher_fleet), and of the networks that hold an address, when the fleet is on. */
async function unbanFleet(loaded: LoadedConfig, firewall: Firewall, target: Cidr, now: number): Promise<Lifted[]> {
  if (!loaded.config.fleet) return [];
  const fleet = new FleetStore(fleetDbPath(loaded.paths));
  try {
    const ip = singleAddress(target);
    const networks = ip ? fleet.activeBans(now).filter((b) => b.address.includes("/") && cidrContains(parseCidr(b.address)!, ip)) : [];
    const addresses = [target.text, ...networks.map((b) => b.address)];
    await firewall.ensure([{ name: FLEET_SET, kind: "addresses" }]);
    await firewall.unban(FLEET_SET, addresses);
    return addresses.filter((a) => fleet.deleteBan(a)).map((address) => ({ where: "fleet", address }));
  } finally {
    fleet.close();
  }
}

/** Lift a ban in one module (and the fleet's ban of the address): what was lifted. */
export async function manualUnban(ctx: ModuleContext, target: Cidr | Ip, now = nowSeconds(), who = whoRuns()): Promise<Lifted[]> {
  const net = parseCidr(target.text)!;
  const reason = `manual unban by ${who}`;
  const parts = banPartsOf(ctx);
  const lifted = await unbanInModule(parts, net, now, reason);
  const fleet = await unbanFleet({ config: ctx.config, paths: ctx.paths }, ctx.firewall, net, now);
  publishUnbans(parts, fleetNetworks(fleet), now);
  return [...lifted, ...fleet];
}

/** The modules an unban everywhere visits: every one with a database, enabled or not (its bans may still be in force). */
function modulesWithDatabase(loaded: LoadedConfig): ModuleName[] {
  return moduleNames(loaded.config).filter((m) => existsSync(dbPath(loaded.paths, m)));
}

/** Lift `target` in every module that has a database, and the fleet's ban of it: what was lifted. */
export async function unbanEverywhere(loaded: LoadedConfig, firewall: Firewall, lists: Lists, target: Cidr, now = nowSeconds(), who = whoRuns()): Promise<{ lifted: Lifted[]; modules: ModuleName[] }> {
  const reason = `manual unban by ${who}`;
  const lifted: Lifted[] = [];
  const modules = modulesWithDatabase(loaded);
  const fleet = await unbanFleet(loaded, firewall, target, now);
  /* the fleet's networks that held the address go out through the first module that publishes */
  let networks = fleetNetworks(fleet);
  for (const module of modules) {
    const store = new ModuleStore(dbPath(loaded.paths, module));
    try {
      const parts: BanParts = { module, config: moduleConfig(loaded.config, module), store, firewall, lists, publisher: publisherOf(loaded.config, module) };
      lifted.push(...(await unbanInModule(parts, target, now, reason)));
      if (parts.publisher) {
        publishUnbans(parts, networks, now);
        networks = [];
      }
    } finally {
      store.close();
    }
  }
  lifted.push(...fleet);
  return { lifted, modules };
}
