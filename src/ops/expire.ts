/**
 * Expiry, one operation for the master's schedule and `watcher expire` alike: hosts whose last
 * affair is older than their module's expireAfter and whose ban (if any) has ended are forgotten,
 * and events older than its eventRetention are deleted (those of a ban in force stay), in short
 * batches beside the module that writes, with the space they held given back. A running ban,
 * permanent ones too, keeps its host however short expireAfter is: expiry never lifts a ban, nor
 * forgets the ban count that lengthens a repeat offender's next ban while it is still banned. In a
 * fleet, fleet.db forgets the decisions it received long ago. Bans longer than the kernel takes
 * (permanent ones) are renewed in the kernel in the same run (ops/renew.ts). Safe while the modules write
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
import { type EventCursor, ModuleStore } from "../store/module-db";
import { dbPath, fleetDbPath } from "../core/layout";

/** decisions received from the fleet are kept this long, for reports */
export const FLEET_HISTORY_S = 30 * 86400;

export interface ExpiredHost {
  readonly address: string;
  /** epoch seconds of its last affair */
  readonly lastSeen: number;
  readonly lastRule: string;
}

/**
 * Events deleted in one write transaction: 5,000 took 8 ms on average on the idle build machine,
 * 18 ms under load (bench/expire-events.ts); a running module's commit waits that long at most.
 */
export const EVENTS_A_BATCH = 5000;
/** Free pages given back to the file system in one write transaction (4 MB; at most 55 ms measured). */
export const PAGES_A_STEP = 1000;
/**
 * The write lock stays free this long after each batch, and at least as long as the batch held it:
 * a module waiting in its busy handler (which sleeps up to 25 ms between tries at first) gets in.
 */
const PAUSE_MS = 25;
/** A database created before incremental vacuum is rewritten (VACUUM) only while it holds less than this: about half a second of lock. */
export const VACUUM_MAX_BYTES = 32 * 1024 * 1024;

/** Events deleted and pages given back: what expiry did to a module's database. */
export interface EventExpiry {
  /** events older than this many seconds go: eventRetention, or expireAfter if longer; 0: kept for ever */
  readonly eventRetention: number;
  /** events deleted (a dry run: that would be) */
  readonly eventsExpired: number;
  /** bytes the database file gave back to the file system (a dry run: 0) */
  readonly bytesFreed: number;
}

export interface ModuleExpiry extends EventExpiry {
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

/** How long a module's events are kept: its eventRetention, never shorter than expireAfter (a tracked host's events stay); 0 for ever. */
export function eventRetentionOf(settings: { eventRetention: number; expireAfter: number }): number {
  return settings.eventRetention === 0 ? 0 : Math.max(settings.eventRetention, settings.expireAfter);
}

async function expireModule(loaded: LoadedConfig, module: ModuleName, o: ExpireOptions): Promise<ModuleExpiry> {
  const settings = moduleConfig(loaded.config, module);
  const expireAfter = settings.expireAfter;
  const eventRetention = eventRetentionOf(settings);
  const store = new ModuleStore(dbPath(loaded.paths, module), { readOnly: o.dryRun });
  try {
    const expired = store.expirableHosts(o.now - expireAfter, o.now).map((h) => ({ address: h.address, lastSeen: h.lastSeen, lastRule: h.lastRule }));
    if (o.dryRun) {
      const eventsExpired = eventRetention === 0 ? 0 : store.expirableEventCount(o.now - eventRetention, o.now);
      return { module, dryRun: o.dryRun, expireAfter, expired, renewed: 0, eventRetention, eventsExpired, bytesFreed: 0 };
    }
    if (expired.length > 0) store.deleteExpirableHosts(expired.map((h) => h.address), o.now - expireAfter, o.now);
    const events = await expireEvents(store, eventRetention, o.now);
    const firewall = createFirewall(loaded.config, loaded.paths);
    try {
      const held = store.activeBans(o.now).map((h) => ({ address: h.address, until: h.bannedUntil }));
      const renewed = await renewLongBans(firewall, moduleSetName(module), held, Lists.of(loaded.paths), o.now);
      return { module, dryRun: o.dryRun, expireAfter, expired, renewed, ...events };
    } finally {
      await firewall.close();
    }
  } finally {
    store.close();
  }
}

/** The lock left free after a step that held it `heldMs`. */
function pause(heldMs: number): Promise<void> {
  return Bun.sleep(Math.max(PAUSE_MS, heldMs));
}

/**
 * Delete the events older than `retention` (store.deleteExpirableEvents) in batches of
 * EVENTS_A_BATCH, each its own short transaction with a pause after it, then give the free pages
 * back in steps of PAGES_A_STEP. The WAL is copied into the database between batches (a PASSIVE
 * checkpoint takes no write lock), not inside one of them. Free pages left (a database too large to
 * rewrite, or a full disk) are reused by the next events, so the file grows no further.
 */
async function expireEvents(store: ModuleStore, retention: number, now: number): Promise<EventExpiry> {
  const before = store.pages();
  let eventsExpired = 0;
  if (retention > 0) {
    store.deferCheckpoints();
    for (let from: EventCursor | undefined; ; ) {
      const started = performance.now();
      const batch = store.deleteExpirableEvents(now - retention, now, EVENTS_A_BATCH, from);
      const held = performance.now() - started;
      eventsExpired += batch.deleted;
      store.checkpoint();
      if (!batch.next) break;
      from = batch.next;
      await pause(held);
    }
  }
  giveSpaceBack(store);
  for (let free = store.pages(); free.incremental && free.free > 0; ) {
    const started = performance.now();
    try {
      store.incrementalVacuum(PAGES_A_STEP);
    } catch {
      break; /* a full disk or a writer holding the lock beyond busy_timeout: the pages wait for the next run, or are reused */
    }
    store.checkpoint();
    const left = store.pages();
    if (left.free >= free.free) break;
    free = left;
    await pause(performance.now() - started);
  }
  const after = store.pages();
  return { eventRetention: retention, eventsExpired, bytesFreed: Math.max(0, (before.total - after.total) * before.size) };
}

/**
 * A database created before incremental vacuum, holding free pages: rewritten once with it while
 * that is short (what it keeps under VACUUM_MAX_BYTES); a larger one keeps its free pages for the
 * next events (README, "watcher expire": a VACUUM by hand, the module stopped, gives them back).
 */
function giveSpaceBack(store: ModuleStore): void {
  const p = store.pages();
  if (p.incremental || p.free === 0 || (p.total - p.free) * p.size > VACUUM_MAX_BYTES) return;
  try {
    store.vacuumIntoIncremental();
  } catch {
    /* a full disk or a writer holding the lock beyond busy_timeout: the next run tries again */
  }
}
