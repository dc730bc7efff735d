/**
 * Expiry, one operation for the master's schedule and `watcher expire` alike: hosts whose last
 * affair is older than their module's expireAfter and whose ban (if any) has ended are forgotten
 * (events stay, for statistics). A running ban, permanent ones too, keeps its host however short
 * expireAfter is: expiry never lifts a ban, nor forgets the ban count that lengthens a repeat
 * offender's next ban while it is still banned. In a fleet, fleet.db forgets the decisions it received long ago. Bans longer than the kernel takes (permanent
 * ones) are renewed in the kernel in the same run (ops/renew.ts). Safe while the modules write
 * (WAL, busy timeout) and idempotent. A dry run only reads: it works on a read-only root.
 */
import { existsSync } from "node:fs";
import { type LoadedConfig, enabledModules, type ModuleName, moduleConfig } from "../core/config";
import { createFirewall } from "../core/firewall";
import { moduleSetName } from "../core/firewall/types";
import { Lists } from "../core/lists";
import { FLEET_SET } from "../fleet/protocol";
import { renewLongBans } from "./renew";
import { FleetStore } from "../store/fleet-db";
import { ModuleStore } from "../store/module-db";
import { dbPath, fleetDbPath } from "../core/layout";

/** decisions received from the fleet are kept this long, for reports */
export const FLEET_HISTORY_S = 30 * 86400;

export interface ExpiredHost {
  readonly address: string;
  /** epoch seconds of its last affair */
  readonly lastSeen: number;
  readonly lastRule: string;
}

export interface ModuleExpiry {
  readonly module: ModuleName;
  readonly dryRun: boolean;
  /** hosts whose last affair is older than this, and whose ban has ended, are forgotten */
  readonly expireAfter: number;
  readonly expired: ExpiredHost[];
  /** long bans given the kernel's longest timeout again (ops/renew.ts) */
  readonly renewed: number;
}

export interface ExpireOptions {
  /** this module only; else the enabled modules that have a database */
  readonly module?: ModuleName;
  readonly now: number;
  readonly dryRun: boolean;
}

function modulesOf(loaded: LoadedConfig, wanted?: ModuleName): ModuleName[] {
  if (wanted) return [wanted].filter((m) => moduleConfig(loaded.config, m)); /* an unknown module is a ConfigError */
  return enabledModules(loaded.config).filter((m) => existsSync(dbPath(loaded.paths, m)));
}

export async function expire(loaded: LoadedConfig, o: ExpireOptions): Promise<ModuleExpiry[]> {
  if (!o.dryRun && loaded.config.fleet && existsSync(fleetDbPath(loaded.paths))) {
    const fleet = new FleetStore(fleetDbPath(loaded.paths));
    const firewall = createFirewall(loaded.config, loaded.paths);
    try {
      fleet.prune(o.now - FLEET_HISTORY_S, o.now);
      await renewLongBans(firewall, FLEET_SET, fleet.activeBans(o.now), Lists.of(loaded.paths), o.now);
    } finally {
      fleet.close();
      await firewall.close();
    }
  }
  const out: ModuleExpiry[] = [];
  for (const module of modulesOf(loaded, o.module)) out.push(await expireModule(loaded, module, o));
  return out;
}

async function expireModule(loaded: LoadedConfig, module: ModuleName, o: ExpireOptions): Promise<ModuleExpiry> {
  const expireAfter = moduleConfig(loaded.config, module).expireAfter;
  const store = new ModuleStore(dbPath(loaded.paths, module), { readOnly: o.dryRun });
  try {
    const expired = store.expirableHosts(o.now - expireAfter, o.now).map((h) => ({ address: h.address, lastSeen: h.lastSeen, lastRule: h.lastRule }));
    if (o.dryRun) return { module, dryRun: o.dryRun, expireAfter, expired, renewed: 0 };
    if (expired.length > 0) store.deleteExpirableHosts(expired.map((h) => h.address), o.now - expireAfter, o.now);
    const firewall = createFirewall(loaded.config, loaded.paths);
    try {
      const held = store.activeBans(o.now).map((h) => ({ address: h.address, until: h.bannedUntil }));
      const renewed = await renewLongBans(firewall, moduleSetName(module), held, Lists.of(loaded.paths), o.now);
      return { module, dryRun: o.dryRun, expireAfter, expired, renewed };
    } finally {
      await firewall.close();
    }
  } finally {
    store.close();
  }
}
