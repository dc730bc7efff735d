/**
 * Restore at start (and `restart`): every set watcher owns goes into the kernel in one bulk
 * operation per set, replacing what was there, so starting twice duplicates nothing: the
 * whitelist, the blacklist, each module's active bans with their remaining time, and each
 * enabled blocklist from its cached copy, and in a fleet the other nodes' bans (fleet.db). A ban of an address that is now whitelisted (or own,
 * or reserved) is lifted instead, and so is a prefix ban whose network now holds such an address.
 * What each set should hold is planFirewall's answer alone: `watcher doctor` compares the kernel with it.
 */
import type { LoadedConfig, ModuleName } from "../core/config";
import { FLEET_SET, fleetRefusal } from "../fleet/protocol";
import { FleetStore } from "../store/fleet-db";
import { existsSync } from "node:fs";
import { BLACKLIST_SET, type Firewall, moduleSet, outcomeMessages, type SetElement, type SetSpec, WHITELIST_SET } from "../core/firewall/types";
import { parseCidr, parseIp } from "../core/ip";
import { enforcedEntries } from "../dynload/load";
import { dynLists, dynloadSetName } from "../dynload/lists";
import { type Lists, protectionWords } from "../core/lists";
import { type HostRecord, kernelTimeout, ModuleStore } from "../store/module-db";
import { liftBan } from "../ops/ban";
import { dbPath, fleetDbPath } from "../core/layout";

export interface RestoreReport {
  readonly backend: string;
  readonly sets: { name: string; entries: number }[];
  /** bans lifted because the address is protected now */
  readonly lifted: string[];
  /** what the kernel refused or cut short (a full set, a timeout beyond its limit), for the log */
  readonly refusals: string[];
  readonly seconds: number;
}

/** A set as it should be: its spec and every element, timeouts the bans' remaining time. */
/** How far a restore is: `sets` of `of` done, `entries` of `ofEntries`, `set` going in now. */
export interface RestoreProgress {
  readonly set: string;
  readonly sets: number;
  readonly of: number;
  readonly entries: number;
  readonly ofEntries: number;
}

export interface PlannedSet {
  readonly spec: SetSpec;
  readonly elements: SetElement[];
}

/** A recorded ban of an address that is protected now: lifted (in its database) instead of restored. */
export type ProtectedBan = {
  readonly set: string;
  readonly address: string;
  /** why it may not be dropped now, in words (whitelisted, this machine's, reserved) */
  readonly why: string;
} & (
  | { readonly source: "fleet" }
  | { readonly source: "module"; readonly module: ModuleName; readonly host: HostRecord }
);

export interface FirewallPlan {
  readonly sets: PlannedSet[];
  readonly protectedBans: ProtectedBan[];
}

/**
 * What every set watcher owns should hold at `now`, read from the lists, the cached blocklists
 * and the databases, changing nothing: restore loads it, `doctor` compares the kernel with it.
 * `readOnly`: databases are opened read-only, and one that does not exist holds no bans.
 */
export function planFirewall(loaded: LoadedConfig, modules: readonly ModuleName[], lists: Lists, now: number, readOnly = false): FirewallPlan {
  const sets: PlannedSet[] = [];
  const protectedBans: ProtectedBan[] = [];
  const networks = (name: string, addresses: readonly string[]) =>
    sets.push({ spec: { name, kind: "networks" }, elements: addresses.map((address) => ({ address, timeout: 0 })) });
  networks(WHITELIST_SET, lists.whitelist.entries());
  networks(BLACKLIST_SET, lists.blacklist.entries());
  /* blocklists from their last good copies: no network at boot */
  for (const list of dynLists(loaded.config).filter((l) => l.enabled)) {
    networks(dynloadSetName(list.name), enforcedEntries(loaded.paths, list, lists).map((n) => n.text));
  }
  const exists = (path: string) => !readOnly || existsSync(path);
  if (loaded.config.fleet) {
    const elements: SetElement[] = [];
    const path = fleetDbPath(loaded.paths);
    const fleet = exists(path) ? new FleetStore(path, { readOnly }) : null;
    try {
      for (const ban of fleet?.activeBans(now) ?? []) {
        const refusal = fleetRefusal(lists, ban.address);
        if (refusal) protectedBans.push({ set: FLEET_SET, address: ban.address, why: refusal, source: "fleet" });
        else elements.push({ address: ban.address, timeout: ban.until - now });
      }
    } finally {
      fleet?.close();
    }
    sets.push({ spec: { name: FLEET_SET, kind: "addresses" }, elements });
  }
  for (const module of modules) {
    const elements: SetElement[] = [];
    const spec = moduleSet(module);
    const path = dbPath(loaded.paths, module);
    const store = exists(path) ? new ModuleStore(path, { readOnly }) : null;
    try {
      for (const ban of store?.activeBanTimes(now) ?? []) {
        /* a prefix ban (pipeline/prefixes.ts): the network, for its remaining time */
        const net = ban.address.includes("/") ? parseCidr(ban.address) : null;
        const ip = net ? null : parseIp(ban.address);
        const refusal = net ? lists.dropConflict(net) : ip ? protectionWords(lists.protection(ip)) : "not an address";
        const host = refusal ? store!.getHost(ban.address) : null;
        if (!refusal) elements.push({ address: (net ?? ip)!.text, timeout: kernelTimeout(ban.bannedUntil, now) });
        else if (host) protectedBans.push({ set: spec.name, address: ban.address, why: refusal, source: "module", module, host });
      }
    } finally {
      store?.close();
    }
    sets.push({ spec, elements });
  }
  return { sets, protectedBans };
}

/** Lift recorded bans of addresses that are protected now, in the databases that hold them. */
export function liftProtectedBans(loaded: LoadedConfig, bans: readonly ProtectedBan[], now: number): void {
  const fleetBans = bans.filter((b) => b.source === "fleet");
  if (fleetBans.length) {
    const fleet = new FleetStore(fleetDbPath(loaded.paths));
    try {
      for (const b of fleetBans) fleet.deleteBan(b.address);
    } finally {
      fleet.close();
    }
  }
  for (const module of new Set(bans.flatMap((b) => (b.source === "module" ? [b.module] : [])))) {
    const store = new ModuleStore(dbPath(loaded.paths, module));
    try {
      for (const b of bans) if (b.source === "module" && b.module === module) liftBan(store, b.host, "protected", now, `lifted: it ${b.why}`);
    } finally {
      store.close();
    }
  }
}

/** Restore every set; `onSet` hears of each set before it goes in (the master's progress, for `start` on a terminal). */
export async function restoreFirewall(
  loaded: LoadedConfig,
  firewall: Firewall,
  modules: readonly ModuleName[],
  lists: Lists,
  now: number,
  onSet?: (progress: RestoreProgress) => void,
): Promise<RestoreReport> {
  const started = performance.now();
  const plan = planFirewall(loaded, modules, lists, now);
  liftProtectedBans(loaded, plan.protectedBans, now);
  await firewall.ensure(plan.sets.map((s) => s.spec));
  const sets: RestoreReport["sets"] = [];
  const refusals: string[] = [];
  /* what the kernel refuses is left out and said; the rest of the set still goes in */
  const entries = plan.sets.reduce((n, s) => n + s.elements.length, 0);
  let done = 0;
  for (const { spec, elements } of plan.sets) {
    onSet?.({ set: spec.name, sets: sets.length, of: plan.sets.length, entries: done, ofEntries: entries });
    done += elements.length;
    const outcome = await firewall.restore(spec.name, elements);
    refusals.push(...outcomeMessages(spec.name, outcome, firewall.maxTimeout));
    sets.push({ name: spec.name, entries: elements.length - outcome.refused.length });
  }
  const lifted = plan.protectedBans.map((b) => b.address);
  return { backend: firewall.backend, sets, lifted, refusals, seconds: (performance.now() - started) / 1000 };
}
