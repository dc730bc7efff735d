/**
 * `watcher expire` from the shell: the master's expiry (src/modules/expire.ts) for each module,
 * with the forgotten hosts described so that the operator sees what happened (or, with
 * --dry-run, what would).
 */
import { existsSync } from "node:fs";
import { type LoadedConfig, loadConfig, MODULE_NAMES, type ModuleName } from "../core/config";
import { dbPath, openModule } from "../modules/context";
import { ModuleStore } from "../core/store";
import { checkFirewallFreeFor } from "../master/claim";
import { type ExpireResult, expireModule, staleHosts } from "../modules/expire";
import { iso } from "./report";

export interface ExpiredHost {
  readonly address: string;
  readonly lastSeen: string;
  readonly lastRule: string;
  /** its ban was (or would be) lifted from the firewall */
  readonly banLifted: boolean;
}

export interface ModuleExpiry {
  readonly module: ModuleName;
  readonly dryRun: boolean;
  /** hosts whose last affair is older than this are forgotten */
  readonly expireAfter: number;
  readonly expired: ExpiredHost[];
  readonly lifted: number;
}

/** The modules expire covers: the one asked for, else the enabled ones that have a database. */
export function expiredModules(loaded: LoadedConfig, wanted?: ModuleName): ModuleName[] {
  if (wanted) return [wanted];
  return MODULE_NAMES.filter((m) => loaded.config.modules[m].enabled && existsSync(dbPath(loaded.paths, m)));
}

export async function expire(root: string | undefined, module: ModuleName | undefined, now: number, dryRun: boolean): Promise<ModuleExpiry[]> {
  const loaded = loadConfig(root);
  const out: ModuleExpiry[] = [];
  for (const m of expiredModules(loaded, module)) {
    const expireAfter = loaded.config.modules[m].expireAfter;
    /* a dry run only reads: it works on a read-only root and while the module writes */
    const store = new ModuleStore(dbPath(loaded.paths, m), { readOnly: dryRun });
    try {
      /* read before expiring: afterwards the hosts are gone */
      const before = new Map(store.hostsLastSeenBefore(now - expireAfter).map((h) => [h.address, h]));
      const r = dryRun ? staleHosts(store, m, expireAfter, now) : await expireWith(root, m, now);
      const lifted = new Set(r.lifted);
      out.push({
        module: m,
        dryRun,
        expireAfter,
        expired: r.expired.map((address) => {
          const h = before.get(address);
          return { address, lastSeen: h ? iso(h.lastSeen) : "", lastRule: h?.lastRule ?? "", banLifted: lifted.has(address) };
        }),
        lifted: r.lifted.length,
      });
    } finally {
      store.close();
    }
  }
  return out;
}

async function expireWith(root: string | undefined, module: ModuleName, now: number): Promise<ExpireResult> {
  const ctx = openModule(root, module);
  try {
    checkFirewallFreeFor(ctx.firewall, ctx.paths.root, "expire");
    return await expireModule(ctx, now);
  } finally {
    await ctx.close();
  }
}
