/**
 * Expiry: hosts whose last affair is older than the module's expireAfter are forgotten, and a
 * ban they still hold is lifted from the kernel in the same step. Events stay (statistics).
 * Safe while the module writes (WAL, busy timeout) and idempotent.
 */
import { moduleSetName } from "../core/firewall/types";
import type { ModuleStore } from "../core/store";
import type { ModuleContext } from "./context";

export interface ExpireResult {
  readonly module: string;
  /** addresses forgotten */
  readonly expired: string[];
  /** of those, the ones whose ban was lifted */
  readonly lifted: string[];
}

/** What an expiry would forget and lift, touching nothing (`expire --dry-run` reads only). */
export function staleHosts(store: ModuleStore, module: string, expireAfter: number, now: number): ExpireResult {
  const stale = store.hostsLastSeenBefore(now - expireAfter);
  return { module, expired: stale.map((h) => h.address), lifted: stale.filter((h) => h.bannedUntil > now).map((h) => h.address) };
}

export async function expireModule(ctx: ModuleContext, now: number): Promise<ExpireResult> {
  const { expired, lifted } = staleHosts(ctx.store, ctx.module, ctx.moduleConfig.expireAfter, now);
  if (expired.length > 0) {
    ctx.store.deleteHosts(expired, now - ctx.moduleConfig.expireAfter);
    if (lifted.length > 0) await ctx.firewall.unban(moduleSetName(ctx.module), lifted);
  }
  return { module: ctx.module, expired, lifted };
}
