/**
 * Restore at start (and `restart`): every set watcher owns goes into the kernel in one bulk
 * operation per set, replacing what was there, so starting twice duplicates nothing: the
 * whitelist, the blacklist, each module's active bans with their remaining time, and each
 * enabled blocklist from its cached copy, and in a fleet the other nodes' bans (fleet.db). A ban of an address that is now whitelisted (or own,
 * or reserved) is lifted instead, and so is a prefix ban whose network now holds such an address.
 */
import type { LoadedConfig, ModuleName } from "../core/config";
import { FLEET_SET } from "../fleet/protocol";
import { FleetStore } from "../store/fleet-db";
import { BLACKLIST_SET, type Firewall, moduleSet, outcomeMessages, type SetElement, WHITELIST_SET } from "../core/firewall/types";
import { parseCidr, parseIp } from "../core/ip";
import { cachedEntries, protectedFilter } from "../dynload/load";
import { dynLists, dynloadSetName } from "../dynload/lists";
import type { Lists } from "../core/lists";
import { ModuleStore } from "../store/module-db";
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

export async function restoreFirewall(loaded: LoadedConfig, firewall: Firewall, modules: readonly ModuleName[], lists: Lists, now: number): Promise<RestoreReport> {
  const started = performance.now();
  const blocklists = dynLists(loaded.config).filter((l) => l.enabled);
  await firewall.ensure([
    { name: WHITELIST_SET, kind: "networks" },
    { name: BLACKLIST_SET, kind: "networks" },
    ...modules.map(moduleSet),
    ...(loaded.config.fleet ? [{ name: FLEET_SET, kind: "addresses" as const }] : []),
    ...blocklists.map((l) => ({ name: dynloadSetName(l.name), kind: "networks" as const })),
  ]);
  const sets: RestoreReport["sets"] = [];
  const lifted: string[] = [];
  const refusals: string[] = [];
  /* what the kernel refuses is left out and said; the rest of the set still goes in */
  const load = async (name: string, elements: SetElement[]) => {
    const outcome = await firewall.restore(name, elements);
    refusals.push(...outcomeMessages(name, outcome, firewall.maxTimeout));
    sets.push({ name, entries: elements.length - outcome.refused.length });
  };
  await load(WHITELIST_SET, lists.whitelist.entries().map((address) => ({ address, timeout: 0 })));
  await load(BLACKLIST_SET, lists.blacklist.entries().map((address) => ({ address, timeout: 0 })));
  /* blocklists from their last good copies: no network at boot */
  const coversProtected = protectedFilter(lists);
  for (const list of blocklists) {
    const nets = cachedEntries(loaded.paths, list).map((t) => parseCidr(t)!);
    await load(dynloadSetName(list.name), nets.filter((n) => !coversProtected(n)).map((n) => ({ address: n.text, timeout: 0 })));
  }
  if (loaded.config.fleet) {
    const fleet = new FleetStore(fleetDbPath(loaded.paths));
    try {
      const elements: SetElement[] = [];
      for (const ban of fleet.activeBans(now)) {
        const ip = parseIp(ban.address);
        if (!ip || lists.protection(ip)) {
          fleet.deleteBan(ban.address);
          lifted.push(ban.address);
        } else elements.push({ address: ip.text, timeout: ban.until - now });
      }
      await load(FLEET_SET, elements);
    } finally {
      fleet.close();
    }
  }
  for (const module of modules) {
    const store = new ModuleStore(dbPath(loaded.paths, module));
    try {
      const elements: SetElement[] = [];
      for (const host of store.activeBans(now)) {
        if (host.address.includes("/")) {
          /* a prefix ban (pipeline/prefixes.ts): the network, for its remaining time */
          const net = parseCidr(host.address);
          if (!net || lists.dropConflict(net)) {
            liftBan(store, host, "whitelist", now);
            lifted.push(host.address);
          } else elements.push({ address: net.text, timeout: host.bannedUntil - now });
          continue;
        }
        const ip = parseIp(host.address);
        if (!ip || lists.protection(ip)) {
          liftBan(store, host, "whitelist", now);
          lifted.push(host.address);
          continue;
        }
        elements.push({ address: ip.text, timeout: host.bannedUntil - now });
      }
      await load(moduleSet(module).name, elements);
    } finally {
      store.close();
    }
  }
  return { backend: firewall.backend, sets, lifted, refusals, seconds: (performance.now() - started) / 1000 };
}
