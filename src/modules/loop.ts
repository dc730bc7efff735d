/**
 * The resident module loop (`watcher module LG`, what `start` forks): read every source,
 * split lines, run each chunk through the runtime, until SIGTERM/SIGINT; then finish the
 * chunk in hand, close the database and exit cleanly. SIGHUP reloads rules and lists without
 * losing counts; when it changes what the module reads only at start (its sources, its DNS
 * client, its actions: start-settings.ts), a supervised module stops as for SIGTERM and asks the
 * master to start it again (RESTART_EXIT). A status file in the run folder tells `watcher status` how it is doing, and
 * carries the counters the metrics show (ops/metrics.ts). The operator's actions run here,
 * on this module's bans and their ends (ops/actions.ts).
 */
import type { SourceConfig } from "../core/config";
import { RecordingFiles } from "../core/config-files";
import { HeapBudget, releaseStartupPages } from "../core/heap";
import { type ClassifierStats, DnsClient, systemNameServers } from "../core/dns";
import { moduleSet, moduleSetName, outcomeMessages, type SetElement } from "../core/firewall/types";
import { parseCidr, parseIp } from "../core/ip";
import { ownAddresses } from "../core/lists";
import { kernelTimeout } from "../store/module-db";
import { statusFile } from "../core/layout";
import { removeFile, writeJson } from "../core/runfiles";
import { loadFleetKey } from "../fleet/protocol";
import { ModuleFleet, type ModuleFleetStats, publisherOf } from "../fleet/publisher";
import type { PendingStats } from "../pipeline/persist";
import type { Source } from "../pipeline/read";
import { type BanReport, ModuleRuntime, partsOf, type RuleCounts, type RuntimeStats } from "../pipeline/run";
import { type ActionStats, type BanEnd, BanEnds, ModuleActions } from "../ops/actions";
import type { HistogramSnapshot } from "../ops/metrics";
import { LineSplitter } from "../pipeline/split";
import { keepInForce, type ModuleContext, readReloadable } from "./context";
import { changedAtStart, type StartSettings, startSettings } from "./start-settings";
import { nowSeconds } from "../core/duration";

/** What a module writes about itself every few seconds. */
export interface ModuleStatus {
  module: string;
  pid: number;
  startedAt: number;
  updatedAt: number;
  lines: number;
  /** when the module last read a line (seen at its status writes, 2 s apart); null: none since it started (absent from older modules' files) */
  lastLineAt?: number | null;
  matched: number;
  affairs: number;
  bans: number;
  /** DNS lookups, cache hits and dropped requests; null when the module does not classify */
  dns: ClassifierStats | null;
  /** decisions published and waiting, affairs shared; null without [fleet] */
  fleet: ModuleFleetStats | null;
  /** writes waiting in memory (the disk was full); `error` is null while the database is written */
  pending: PendingStats;
  /** bans the kernel refused (a full set) */
  refused: number;
  /** lines matched and affairs counted, by rule name */
  rules: Record<string, RuleCounts>;
  /** seconds from a chunk's arrival to the kernel's answer for its bans */
  latency: HistogramSnapshot;
  /** this module's bans that ended, by how */
  bansEnded: Record<BanEnd, number>;
  /** [[actions]] runs, by action name */
  actions: Record<string, ActionStats>;
  /**
   * Set when this module runs on its last good configuration because a file on disk is broken
   * (a restart after an edit not yet reloaded): the error, naming the file; null or absent otherwise.
   */
  configError?: string | null;
  /**
   * The configured sources this process reads (what it started with: an edit takes effect at the
   * SIGHUP that loads it); null with --stdin or --file; absent from older modules' files.
   */
  sources?: SourceConfig[] | null;
}

const STATUS_EVERY_MS = 2000;

/**
 * When the status timer copies the WAL into the database. A checkpoint syncs the WAL and the
 * database (4-47 ms each time on this kind of disk), and the line loop waits meanwhile: so it waits
 * for a quiet moment, no input for `quietMs`, and only a flood that never pauses has it at most
 * every `everyMs`. A commit still does it past 10,000 pages (ModuleStore.deferCheckpoints).
 */
export class CheckpointPolicy {
  private lastInput = Number.NEGATIVE_INFINITY;

  constructor(
    private lastCheckpoint: number,
    private readonly quietMs = 1000,
    private readonly everyMs = 60_000,
  ) {}

  /** Input arrived at `now` (performance.now()). */
  input(now: number): void {
    this.lastInput = now;
  }

  /** Whether to checkpoint at `now`; if so, it counts as done. */
  take(now: number): boolean {
    if (now - this.lastInput < this.quietMs && now - this.lastCheckpoint < this.everyMs) return false;
    this.lastCheckpoint = now;
    return true;
  }
}

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
  /** the module reads its configured sources (not --stdin or --file): a SIGHUP that changes them needs a new process */
  readonly ownSources?: boolean;
  /**
   * the master's module: a SIGHUP that changes what it reads only at start stops the loop, which
   * says so (`restart`) for the master to start it again; otherwise that is only logged
   */
  readonly supervised?: boolean;
  /** whether a SIGHUP came before the loop listened (while the module opened): it reloads then, once */
  readonly sighupBeforeLoop?: () => boolean;
}

/** How the loop ended: `restart` names the settings read at start that a SIGHUP changed, when it stopped for them. */
export interface LoopEnd {
  readonly stats: RuntimeStats;
  readonly restart: string | null;
}

/**
 * One change to the store at a time: chunks, DNS classes, fleet bans and flushes take turns. A
 * turn that fails fails the loop (the master restarts the module, which sets its firewall up again).
 */
class Turns {
  private last: Promise<void> = Promise.resolve();

  take(fn: () => Promise<void> | void): Promise<void> {
    this.last = this.last.then(fn);
    return this.last;
  }

  get done(): Promise<void> {
    return this.last;
  }
}

export async function runModuleLoop(ctx: ModuleContext, sources: readonly Source[], o: LoopOptions): Promise<LoopEnd> {
  const turns = new Turns();
  const { runtime, fleet, dnsClient, actions, ends } = wire(ctx, o);
  await ctx.firewall.ensure([moduleSet(ctx.module)]);
  await reapplyRecentBans(ctx, o.log);
  for (const host of ctx.store.activeBans(nowSeconds())) ends.banned(host.address, host.bannedUntil, host.lastRule);
  /* unbans from here on end known bans at once; those before were seen by the database already */
  const endsCursor = { event: ctx.store.unbansAfter(Number.MAX_SAFE_INTEGER).last };
  /* the fleet's bans take their turn between chunks, like every other change to the store */
  fleet?.start((address, total) => void turns.take(() => runtime.fleetBan(address, total).catch((e) => o.log(`fleet ban of ${address} failed: ${(e as Error).message}`))));
  const status = new StatusWriter(ctx, runtime, fleet, actions, ends, o);
  ctx.store.deferCheckpoints();
  const checkpoints = new CheckpointPolicy(performance.now());
  const statusTimer = setInterval(() => {
    /* an address this machine gains while running (DHCP, a link coming up) is protected within seconds */
    const own = ownAddresses();
    if (runtime.refreshOwnAddresses(own)) o.log(`this machine's addresses are now ${own.entries().join(", ")}: never counted nor banned`);
    status.write();
    /* DNS classes arrive between chunks; after a full disk, the writes that wait in memory;
       the WAL's checkpoint, here rather than in the commit of a line waiting for its ban */
    void turns.take(() => {
      runtime.flushPending();
      checkBanEnds(ctx, ends, actions, endsCursor);
      if (checkpoints.take(performance.now())) ctx.store.checkpoint();
    });
  }, STATUS_EVERY_MS);
  const running = startSettings(ctx.module, ctx.config, ctx.moduleConfig, ctx.rules.programs, o.ownSources ?? false);
  const signals = handleSignals(ctx, runtime, fleet, status, running, o);

  /* a stdin or file source may end by itself; FIFOs end only on a signal */
  /* memory follows what the module holds, not how many addresses it has seen (core/heap.ts) */
  releaseStartupPages();
  const heap = new HeapBudget();
  const readers = sources.map((source) => readSource(source, runtime, turns, signals, o.log, heap, checkpoints));
  await Promise.race([signals.stop, Promise.all(readers)]);
  if (signals.stopping) {
    /* a FIFO takes nothing more from its pipe and what it took is processed: the rest waits there for the next process */
    for (const source of sources) source.stop?.();
    await Promise.all(readers.filter((_, i) => sources[i]!.stop));
  }
  /* every source ended by itself (stdin, a file read to its end): what the sessions still held for a verdict counts, as a replay's does */
  if (!signals.stopping) await turns.take(() => runtime.endOfLog());
  await turns.done;
  clearInterval(statusTimer);
  if (!runtime.flushPending(true)) {
    const p = runtime.pending;
    o.log(`exiting with ${p.hosts} hosts and ${p.events} events not written: ${p.error}`);
  }
  await fleet?.close();
  dnsClient?.close();
  await actions.close();
  status.remove();
  return { stats: runtime.stats, restart: signals.restart };
}

/** The resident module's parts: the runtime, the DNS client and fleet publisher it talks to, the actions its bans run. */
function wire(ctx: ModuleContext, o: LoopOptions): { runtime: ModuleRuntime; fleet: ModuleFleet | null; dnsClient: DnsClient | null; actions: ModuleActions; ends: BanEnds } {
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
  const actions = new ModuleActions(ctx.module, ctx.config.actions, o.log);
  const ends = new BanEnds();
  const fleet = ctx.config.fleet ? new ModuleFleet(ctx.config.fleet, loadFleetKey(ctx.paths.fleetKey), ctx.module, ctx.store, ctx.moduleConfig.findTime) : null;
  const runtime = new ModuleRuntime({
    ...partsOf(ctx),
    clock: o.clock ?? nowSeconds,
    useLineTime: false,
    onBan: (b: BanReport) => {
      o.log(`ban ${b.address} for ${b.seconds}s: ${b.reason}`);
      ends.banned(b.address, b.until, b.rule);
      actions.ban(b);
    },
    log: o.log,
    dns: dnsClient ? { client: dnsClient, options: resolver } : undefined,
    fleet: fleet ? { publisher: publisherOf(ctx.config, ctx.module), sink: fleet } : undefined,
  });
  return { runtime, fleet, dnsClient, actions, ends };
}

/**
 * Bans that ended, counted by how and handed to the unban actions: those lifted since the last
 * look (their unban events after `cursor.event`), then those whose time is up.
 */
function checkBanEnds(ctx: ModuleContext, ends: BanEnds, actions: ModuleActions, cursor: { event: number }): void {
  const now = nowSeconds();
  const ended = (address: string, how: BanEnd, rule: string) =>
    actions.unban(address, now, rule, how === "expired" ? "ban time over" : "lifted before its time was over (watcher unban, expire or the fleet)");
  const { unbans, last } = ctx.store.unbansAfter(cursor.event);
  cursor.event = last;
  ends.lifted(unbans.map((u) => u.address), ended);
  ends.check(now, (address) => ctx.store.getHost(address)?.bannedUntil ?? null, ended);
}

/** The read loop of one source: chunks into whole lines, each block through the runtime in its turn. */
async function readSource(source: Source, runtime: ModuleRuntime, turns: Turns, signals: { readonly stopping: boolean }, log: (message: string) => void, heap: HeapBudget, checkpoints: CheckpointPolicy): Promise<void> {
  const splitter = new LineSplitter(runtime.stats.skipped, () => runtime.stats.lines++);
  log(`reading ${source.label}`);
  for await (const chunk of source.chunks()) {
    /* stopping: a FIFO's last chunks were taken from its pipe and are processed; a file or the journal is read again from its position */
    if (signals.stopping && !source.stop) return;
    const arrived = performance.now();
    checkpoints.input(arrived);
    const block = splitter.push(chunk);
    const { matched, affairs } = runtime.stats;
    if (block !== "") await turns.take(() => runtime.processBlock(block, source.format, arrived));
    heap.afterChunk(chunk.length, runtime.stats.matched - matched, runtime.stats.affairs - affairs);
  }
  const rest = splitter.end();
  if (!signals.stopping && rest !== "") await turns.take(() => runtime.processBlock(rest, source.format));
}

/**
 * SIGHUP reloads config, rules and lists (the configuration in force stays when a file is bad);
 * one that changes what the module read at start (`running`) stops a supervised module after the
 * chunk in hand, to be started again on it (its new configuration is the one in force by then).
 * SIGTERM/SIGINT stop after the chunk in hand.
 */
function handleSignals(ctx: ModuleContext, runtime: ModuleRuntime, fleet: ModuleFleet | null, status: StatusWriter, running: StartSettings, o: LoopOptions) {
  const log = o.log;
  const signals = { stopping: false, restart: null as string | null, stop: Promise.resolve() };
  let stop: (message: string) => void = () => {};
  signals.stop = new Promise<void>((resolve) => {
    stop = (message: string) => {
      if (signals.stopping) return;
      signals.stopping = true;
      log(message);
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM: stopping after the chunk in hand"));
    process.once("SIGINT", () => stop("SIGINT: stopping after the chunk in hand"));
  });
  const reload = () => {
    let changed: string[];
    try {
      const files = new RecordingFiles();
      const next = readReloadable(ctx.paths.root, ctx.module, files);
      keepInForce(ctx.paths.root, ctx.module, files);
      status.configError = null;
      runtime.reload(next);
      fleet?.reload(next.moduleConfig.findTime);
      log(`SIGHUP: reloaded config, ${next.rules.rules.length} rules, ${next.lists.whitelist.size} whitelist and ${next.lists.blacklist.size} blacklist entries`);
      changed = changedAtStart(running, startSettings(ctx.module, next.config, next.moduleConfig, next.rules.programs, o.ownSources ?? false));
    } catch (e) {
      status.configError = `${(e as Error).message} (the configuration in force stays until this is fixed)`;
      log(`SIGHUP: kept the rules and lists in force: ${(e as Error).message}`);
      return;
    }
    if (changed.length === 0 || signals.stopping) return;
    if (!o.supervised) {
      log(`SIGHUP: ${changed.join(", ")} changed: read only when the module starts, they take effect when it is started again`);
      return;
    }
    signals.restart = changed.join(", ");
    stop(`SIGHUP: ${signals.restart} changed, read only when the module starts: stopping after the chunk in hand to be started again`);
  };
  process.on("SIGHUP", reload);
  if (o.sighupBeforeLoop?.()) reload();
  return signals;
}

/** The module's status file, which `watcher status` reads; a full disk is said once, and once when it is written again. */
class StatusWriter {
  configError: string | null;
  private readonly path: string;
  private readonly startedAt = nowSeconds();
  private written = true;
  private linesSeen = 0;
  private lastLineAt: number | null = null;

  constructor(
    private readonly ctx: ModuleContext,
    private readonly runtime: ModuleRuntime,
    private readonly fleet: ModuleFleet | null,
    private readonly actions: ModuleActions,
    private readonly ends: BanEnds,
    private readonly o: LoopOptions,
  ) {
    this.path = statusFile(ctx.paths.runDir, ctx.module);
    this.configError = o.configError ?? null;
    if (this.configError) o.log(this.configError);
    this.write();
  }

  write(): void {
    const { lines, matched, affairs, bans } = this.runtime.stats;
    const now = nowSeconds();
    if (lines !== this.linesSeen) [this.linesSeen, this.lastLineAt] = [lines, now];
    const s: ModuleStatus = {
      module: this.ctx.module, pid: process.pid, startedAt: this.startedAt, updatedAt: now, lines, lastLineAt: this.lastLineAt, matched, affairs, bans,
      dns: this.runtime.dns?.stats ?? null, fleet: this.fleet?.snapshot() ?? null, pending: this.runtime.pending, configError: this.configError,
      sources: this.o.ownSources ? this.ctx.moduleConfig.sources : null, refused: this.runtime.stats.refused, rules: Object.fromEntries(this.runtime.rules), latency: this.runtime.latency, bansEnded: { ...this.ends.ended }, actions: this.actions.stats,
    };
    const written = writeJson(this.path, s, (why) => this.written && this.o.log(`${why}; the module goes on`));
    if (written && !this.written) this.o.log(`status ${this.path} written again`);
    this.written = written;
  }

  remove(): void {
    removeFile(this.path);
  }
}

/** What was decided before a crash is decided again: recent recorded bans go back into the kernel. */
async function reapplyRecentBans(ctx: ModuleContext, log: (message: string) => void): Promise<void> {
  const now = nowSeconds();
  const elements: SetElement[] = [];
  for (const host of ctx.store.bansSince(now - REAPPLY_BANS_S, now)) {
    /* a network (a prefix ban, or `ban` of a CIDR) as restore.ts puts it back */
    const net = host.address.includes("/") ? parseCidr(host.address) : null;
    const ip = net ? null : parseIp(host.address);
    const allowed = net ? !ctx.lists.dropConflict(net) : ip && !ctx.lists.protection(ip);
    if (allowed) elements.push({ address: (net ?? ip)!.text, timeout: kernelTimeout(host.bannedUntil, now) });
  }
  if (elements.length === 0) return;
  const outcome = await ctx.firewall.ban(moduleSetName(ctx.module), elements);
  for (const line of outcomeMessages(moduleSetName(ctx.module), outcome, ctx.firewall.maxTimeout)) log(line);
  log(`put ${elements.length - outcome.refused.length} recent bans back into ${moduleSetName(ctx.module)}`);
}
