/**
 * The resident module loop (`watcher module LG`, what `start` forks): read every source,
 * split lines, run each chunk through the runtime, until SIGTERM/SIGINT; then finish the
 * chunk in hand, close the database and exit cleanly. SIGHUP reloads rules and lists without
 * losing counts. A status file in the run folder tells `watcher status` how it is doing.
 */
import { RecordingFiles } from "../core/config-files";
import { type ClassifierStats, DnsClient, systemNameServers } from "../core/dns";
import { moduleSet, moduleSetName, outcomeMessages, type SetElement } from "../core/firewall/types";
import { parseIp } from "../core/ip";
import { statusFile } from "../core/layout";
import { removeFile, writeJson } from "../core/runfiles";
import { loadFleetKey } from "../fleet/protocol";
import { ModuleFleet, type ModuleFleetStats, publisherOf } from "../fleet/publisher";
import type { PendingStats } from "../pipeline/persist";
import type { Source } from "../pipeline/read";
import { type BanReport, ModuleRuntime, partsOf, type RuntimeStats } from "../pipeline/run";
import { LineSplitter } from "../pipeline/split";
import { keepInForce, type ModuleContext, readReloadable } from "./context";
import { nowSeconds } from "../core/duration";

/** What a module writes about itself every few seconds. */
export interface ModuleStatus {
  module: string;
  pid: number;
  startedAt: number;
  updatedAt: number;
  lines: number;
  matched: number;
  affairs: number;
  bans: number;
  /** DNS lookups, cache hits and dropped requests; null when the module does not classify */
  dns: ClassifierStats | null;
  /** decisions published and waiting, affairs shared; null without [fleet] */
  fleet: ModuleFleetStats | null;
  /** writes waiting in memory (the disk was full); `error` is null while the database is written */
  pending: PendingStats;
  /**
   * Set when this module runs on its last good configuration because a file on disk is broken
   * (a restart after an edit not yet reloaded): the error, naming the file; null or absent otherwise.
   */
  configError?: string | null;
}

const STATUS_EVERY_MS = 2000;
/**
 * A module that starts puts the bans of the last hour back into its set: a crash between a
 * chunk's commit and the kernel's answer leaves a recorded ban out of the kernel, and the
 * master restarts a module within seconds (a whole restart restores every ban anyway).
 */
const REAPPLY_BANS_S = 3600;

export interface LoopOptions {
  readonly log: (message: string) => void;
  readonly clock?: () => number;
  /** the broken file that made the module start on its configuration in force (openModuleInForce) */
  readonly configError?: string | null;
}

export async function runModuleLoop(ctx: ModuleContext, sources: readonly Source[], o: LoopOptions): Promise<RuntimeStats> {
  const resolver = ctx.config.dns;
  const dnsClient = ctx.moduleConfig.dns
    ? new DnsClient({
        servers: resolver.servers.length > 0 ? resolver.servers : systemNameServers(),
        timeout: resolver.timeout,
        retries: resolver.retries,
        allow: ctx.moduleConfig.dnsAllow,
        log: o.log,
      })
    : null;
  let busy: Promise<void> = Promise.resolve();
  /* the fleet's bans take their turn between chunks, like every other change to the store */
  const fleet = ctx.config.fleet
    ? new ModuleFleet(ctx.config.fleet, loadFleetKey(ctx.paths.fleetKey), ctx.module, ctx.store, ctx.moduleConfig.findTime, (address, total) => {
        busy = busy.then(() => runtime.fleetBan(address, total)).catch((e) => o.log(`fleet ban of ${address} failed: ${(e as Error).message}`));
      })
    : null;
  const runtime: ModuleRuntime = new ModuleRuntime({
    ...partsOf(ctx),
    clock: o.clock ?? (nowSeconds),
    useLineTime: false,
    onBan: (b: BanReport) => o.log(`ban ${b.address} for ${b.seconds}s: ${b.reason}`),
    log: o.log,
    dns: dnsClient ? { client: dnsClient, options: resolver } : undefined,
    fleet: fleet ? { publisher: publisherOf(ctx.config, ctx.module), sink: fleet } : undefined,
  });
  await ctx.firewall.ensure([moduleSet(ctx.module)]);
  await reapplyRecentBans(ctx, o.log);
  fleet?.start();
  let stopping = false;

  const startedAt = nowSeconds();
  const status = statusFile(ctx.paths.runDir, ctx.module);
  let configError = o.configError ?? null;
  if (configError) o.log(configError);
  let statusWritten = true;
  const writeStatus = () => {
    const { lines, matched, affairs, bans } = runtime.stats;
    const s: ModuleStatus = { module: ctx.module, pid: process.pid, startedAt, updatedAt: nowSeconds(), lines, matched, affairs, bans, dns: runtime.dns?.stats ?? null, fleet: fleet?.snapshot() ?? null, pending: runtime.pending, configError };
    /* a full disk: said once, and once when it is written again */
    const written = writeJson(status, s, (why) => statusWritten && o.log(`${why}; the module goes on`));
    if (written && !statusWritten) o.log(`status ${status} written again`);
    statusWritten = written;
    /* DNS classes arrive between chunks; after a full disk, the writes that wait in memory */
    busy = busy.then(() => void runtime.flushPending());
  };
  writeStatus();
  const statusTimer = setInterval(writeStatus, STATUS_EVERY_MS);

  process.on("SIGHUP", () => {
    try {
      const files = new RecordingFiles();
      const next = readReloadable(ctx.paths.root, ctx.module, files);
      keepInForce(ctx.paths.root, ctx.module, files);
      configError = null;
      runtime.reload(next);
      fleet?.reload(next.moduleConfig.findTime);
      o.log(`SIGHUP: reloaded config, ${next.rules.rules.length} rules, ${next.lists.whitelist.size} whitelist and ${next.lists.blacklist.size} blacklist entries`);
    } catch (e) {
      configError = `${(e as Error).message} (the configuration in force stays until this is fixed)`;
      o.log(`SIGHUP: kept the rules and lists in force: ${(e as Error).message}`);
    }
  });

  const stop = new Promise<void>((resolve) => {
    const onSignal = (signal: string) => {
      if (stopping) return;
      stopping = true;
      o.log(`${signal}: stopping after the chunk in hand`);
      resolve();
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
  });

  const readers = sources.map(async (source) => {
    const splitter = new LineSplitter(runtime.stats.skipped, () => runtime.stats.lines++);
    o.log(`reading ${source.label}`);
    for await (const chunk of source.chunks()) {
      if (stopping) break;
      const block = splitter.push(chunk);
      if (block === "") continue;
      busy = busy.then(() => runtime.processBlock(block, source.rawProgram));
      await busy;
    }
    if (!stopping) {
      const rest = splitter.end();
      if (rest !== "") await (busy = busy.then(() => runtime.processBlock(rest, source.rawProgram)));
    }
  });

  /* a stdin or file source may end by itself; FIFOs end only on a signal */
  await Promise.race([stop, Promise.all(readers)]);
  await busy;
  clearInterval(statusTimer);
  if (!runtime.flushPending(true)) {
    const p = runtime.pending;
    o.log(`exiting with ${p.hosts} hosts and ${p.events} events not written: ${p.error}`);
  }
  await fleet?.close();
  dnsClient?.close();
  removeFile(status);
  return runtime.stats;
}

/** What was decided before a crash is decided again: recent recorded bans go back into the kernel. */
async function reapplyRecentBans(ctx: ModuleContext, log: (message: string) => void): Promise<void> {
  const now = nowSeconds();
  const elements: SetElement[] = [];
  for (const host of ctx.store.bansSince(now - REAPPLY_BANS_S, now)) {
    const ip = parseIp(host.address);
    if (ip && !ctx.lists.protection(ip)) elements.push({ address: ip.text, timeout: host.bannedUntil - now });
  }
  if (elements.length === 0) return;
  const outcome = await ctx.firewall.ban(moduleSetName(ctx.module), elements);
  for (const line of outcomeMessages(moduleSetName(ctx.module), outcome, ctx.firewall.maxTimeout)) log(line);
  log(`put ${elements.length - outcome.refused.length} recent bans back into ${moduleSetName(ctx.module)}`);
}
