/**
 * The runner: one read chunk through the stages in order. split (lines) → recognise (header,
 * rules, session) → count (affairs, windows, classes, prefixes) inside persist's one transaction
 * per chunk → ban (one firewall batch, announced after the commit). The sources (read.ts) and
 * the resident loop (modules/loop.ts) feed it chunks. Clock, store and firewall are injected.
 */
import type { ModuleConfig, ModuleName } from "../core/config";
import type { ClassifierOptions, DnsClient, DnsClassifier } from "../core/dns";
import { formatDuration } from "../core/duration";
import type { Firewall } from "../core/firewall/types";
import { type Ip, parseIp } from "../core/ip";
import type { Lists } from "../core/lists";
import type { CidrSet } from "../core/ip";
import type { RuleSet } from "../core/rules";
import { FLEET_AFFAIRS_RULE, type ModuleFleet } from "../fleet/publisher";
import type { ModuleContext, Reloadable } from "../modules/context";
import { banNow } from "../ops/ban";
import type { HistogramSnapshot } from "../ops/metrics";
import type { ModuleStore } from "../store/module-db";
import { Banning } from "./ban";
import { type BanReport, Counter, type Decided } from "./count";
import { CountedLines, type PendingStats, PendingWrites } from "./persist";
import { SourceFormat } from "./formats";
import { type Attribution, Recogniser } from "./recognise";
import type { Withdrawn } from "./sessions";
import { forEachLine, type SkipCounts } from "./split";

export type { BanReport } from "./count";

export interface RuntimeStats {
  lines: number;
  /** lines in no format we know (formats.ts) */
  unparsed: number;
  matched: number;
  affairs: number;
  /** matched lines that added nothing: the same attempt already counted by its session */
  merged: number;
  /** matched lines of whitelisted, own or reserved addresses */
  protected: number;
  /** matched lines without an address of their own that no open session could vouch for: counted against nobody */
  unattributed: number;
  bans: number;
  /** bans the kernel refused (a full set): recorded, logged, not in the firewall */
  refused: number;
  /** over-long and invalid lines, never processed */
  skipped: SkipCounts;
}

/** One rule's share of the counts (the metrics). */
export interface RuleCounts {
  matched: number;
  affairs: number;
}

export interface RuntimeOptions {
  readonly module: ModuleName;
  readonly config: ModuleConfig;
  readonly rules: RuleSet;
  readonly store: ModuleStore;
  readonly firewall: Firewall;
  readonly lists: Lists;
  /** epoch seconds */
  readonly clock: () => number;
  /** replay: windows and ban times follow each line's own timestamp */
  readonly useLineTime: boolean;
  /** classify new hosts by DNS (the resident loop; a replay does not) */
  readonly dns?: { readonly client: Pick<DnsClient, "classify">; readonly options: ClassifierOptions };
  readonly onBan?: (ban: BanReport) => void;
  /** a replay: chunks whose writes go out in one transaction (PendingWrites); 1 when absent */
  readonly chunksPerCommit?: number;
  /** storage trouble and recovery (the resident loop's log) */
  readonly log?: (message: string) => void;
  /** fleet mode (the resident loop): bans are queued for the other nodes, affairs shared */
  readonly fleet?: { readonly publisher: string | null; readonly sink: Pick<ModuleFleet, "affair" | "decided" | "afterBlock"> };
}

type ModuleParts = Pick<RuntimeOptions, "module" | "config" | "rules" | "store" | "firewall" | "lists">;

/** What a runtime takes from an open module. */
export function partsOf(ctx: ModuleContext): ModuleParts {
  return { module: ctx.module, config: ctx.moduleConfig, rules: ctx.rules, store: ctx.store, firewall: ctx.firewall, lists: ctx.lists };
}

export class ModuleRuntime {
  readonly stats: RuntimeStats = { lines: 0, unparsed: 0, matched: 0, affairs: 0, merged: 0, protected: 0, unattributed: 0, bans: 0, refused: 0, skipped: { tooLong: 0, invalid: 0 } };
  /** by rule name: lines matched, affairs counted */
  readonly rules = new Map<string, RuleCounts>();
  private readonly recogniser: Recogniser;
  private readonly counter: Counter;
  private readonly writes: PendingWrites;
  private readonly banning: Banning;
  private readonly countedLines = new CountedLines();
  /** every line's tag: an affair's attribution names the line it counts */
  private lineTag = 0;
  private readonly log: (message: string) => void;
  private config: ModuleConfig;
  private lists: Lists;
  /** the format of blocks handed in without one of their source's (tests, tools) */
  private readonly unsourced = new SourceFormat();

  constructor(private readonly o: RuntimeOptions) {
    this.log = o.log ?? (() => {});
    this.config = o.config;
    this.lists = o.lists;
    this.recogniser = new Recogniser(o.rules, { clock: o.clock, useLineTime: o.useLineTime });
    this.writes = new PendingWrites(o.store, undefined, o.chunksPerCommit);
    this.counter = new Counter({ module: o.module, config: o.config, lists: o.lists, writes: this.writes, clock: o.clock, dns: o.dns, fleet: o.fleet });
    this.banning = new Banning(o.module, o.firewall, this.log, (ban) => o.onBan?.(ban));
  }

  /** seconds from a chunk's arrival to the kernel's answer for its bans */
  get latency(): HistogramSnapshot {
    return this.banning.latency.snapshot();
  }

  get dns(): DnsClassifier | null {
    return this.counter.dns;
  }

  /** This machine's addresses as they are now (interfaces gain and lose them): from here on never counted nor banned; true when they changed. */
  refreshOwnAddresses(own: CidrSet): boolean {
    return this.lists.refreshOwn(own);
  }

  /** New settings, rules and lists (SIGHUP); counts and sessions carry on. */
  reload(next: Reloadable): void {
    this.config = next.moduleConfig;
    this.lists = next.lists;
    this.recogniser.reload(next.rules);
    this.counter.reload(next.moduleConfig, next.lists);
  }

  /**
   * One block of lines (from LineSplitter): one database transaction, then one firewall batch.
   * With the disk full, the block's writes wait in memory (PendingWrites), bans still reach the
   * firewall, and their announcement says they are not written yet. `arrived`: performance.now()
   * when the block's chunk came in (the line-to-ban latency).
   */
  async processBlock(block: string, format: SourceFormat = this.unsourced, arrived = performance.now(), endOfLog = false): Promise<void> {
    const decided: Decided = { elements: [], reports: [] };
    const { counter, writes, countedLines } = this;
    /* the line in hand, and whether it was attributed at once (else it may wait for its session) */
    let tag = 0;
    let lineStart = 0;
    let lineEnd = 0;
    let attributedNow = false;
    const sink = {
      attributed: (a: Attribution) => {
        attributedNow ||= a.tag === tag;
        writes.countedLine = a.tag === tag ? block.slice(lineStart, lineEnd) : countedLines.take(a.tag);
        const before = counter.stats.affairs;
        counter.attributed(a, decided);
        if (counter.stats.affairs !== before) this.ruleCounts(a.rule.name).affairs += counter.stats.affairs - before;
      },
      succeeded: (host: Ip, withdraw: (everything: boolean) => Withdrawn, time: number) => counter.forgive(host, withdraw, time),
    };
    let kernel: ReturnType<Banning["start"]> = null;
    const written = this.writes.commit(() => {
      counter.applyArrivedClasses();
      this.stats.lines += forEachLine(block, this.stats.skipped, (start, end) => {
        tag = ++this.lineTag;
        lineStart = start;
        lineEnd = end;
        attributedNow = false;
        const m = this.recogniser.line(block, start, end, format, sink, tag);
        if (m === null) return;
        this.ruleCounts(m.rule.name).matched++;
        /* a line waiting for its session's address or verdict is counted later: keep its text for the event */
        if (!attributedNow && (m.rule.action === "count" || m.rule.action === "ban")) countedLines.wait(tag, block.slice(start, end));
      });
      if (endOfLog) this.recogniser.endOfLog(sink);
      writes.countedLine = null;
      writes.noteBanReasons(decided.reports);
      kernel = this.banning.start(decided);
    }, this.log);
    this.o.fleet?.sink.afterBlock();
    await this.banning.announceAfter(decided, kernel, written ? null : this.writes.stats().error, arrived);
    this.updateStats();
  }

  /** The log is over (a replay, stdin at its end): lines its sessions still held for a verdict count (a FIFO's sessions go on). */
  endOfLog(format: SourceFormat = this.unsourced): Promise<void> {
    return this.processBlock("", format, performance.now(), true);
  }

  private ruleCounts(rule: string): RuleCounts {
    let c = this.rules.get(rule);
    if (!c) this.rules.set(rule, (c = { matched: 0, affairs: 0 }));
    return c;
  }

  private updateStats(): void {
    Object.assign(this.stats, this.recogniser.stats, this.counter.stats, { unattributed: this.recogniser.unattributed, refused: this.banning.refused });
  }

  /** Write what waits in memory (DNS classes between chunks, or everything after a full disk); false while it cannot. `retryNow`: the last chance (exit). */
  flushPending(retryNow = false): boolean {
    if (!this.writes.empty || this.counter.classesArrived) this.writes.commit(() => this.counter.applyArrivedClasses(), this.log, retryNow);
    return this.writes.empty;
  }

  get pending(): PendingStats {
    return this.writes.stats();
  }

  /** The fleet-wide count of an address reached fleetMaxAffairs on one of our affairs: ban it everywhere. */
  async fleetBan(address: string, total: number): Promise<void> {
    const ip = parseIp(address);
    const now = this.o.clock();
    if (!ip || this.lists.protection(ip) || (this.writes.getHost(address)?.bannedUntil ?? 0) > now) return;
    if (!this.flushPending()) return; /* banNow writes the store itself; with the disk full, the local count decides */
    const { module, store, firewall } = this.o;
    const reason = `${total} affairs across the fleet within ${formatDuration(this.config.findTime)}`;
    const ban = await banNow({ module, config: this.config, store, firewall, lists: this.lists, publisher: this.o.fleet?.publisher ?? null }, ip, FLEET_AFFAIRS_RULE, undefined, now, reason);
    this.counter.stats.bans++;
    this.updateStats();
    this.o.fleet?.sink.decided();
    this.o.fleet?.sink.afterBlock();
    this.o.onBan?.({ address: ban.address, seconds: ban.seconds, until: ban.until, time: now, rule: FLEET_AFFAIRS_RULE, reason });
  }
}
