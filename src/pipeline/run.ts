/**
 * The module pipeline for one read chunk: syslog split → rules → session attribution and
 * merging → protection and blacklist → counting (SQLite, one transaction per chunk) → bans
 * (one firewall batch per chunk). Clock, store and firewall are injected.
 */
import type { ModuleConfig, ModuleName } from "../core/config";
import { type ClassifierOptions, type DnsClient, DnsClassifier, type HostClass } from "../core/dns";
import { formatDuration } from "../core/duration";
import { type Firewall, type FirewallOutcome, moduleSetName, outcomeMessages, type SetElement } from "../core/firewall/types";
import { type Ip, parseIp } from "../core/ip";
import type { Lists } from "../core/lists";
import type { RuleSet } from "../core/rules";
import type { ModuleStore } from "../store/module-db";
import type { ModuleContext, Reloadable } from "../modules/context";
import { classifyHost, countAffair, forgiveAffairs, newHost } from "./decide";
import { banNow } from "../ops/ban";
import { countPrefix } from "./prefixes";
import { FLEET_AFFAIRS_RULE, type ModuleFleet, queueDecision } from "../fleet/publisher";
import { forEachLine, type SkipCounts } from "./split";
import { RateCounter } from "./rates";
import { type Attribution, Recogniser } from "./recognise";
import { type PendingStats, PendingWrites } from "./persist";



export interface BanReport {
  readonly address: string;
  readonly time: number;
  readonly seconds: number;
  readonly until: number;
  readonly rule: string;
  readonly reason: string;
}

export interface RuntimeStats {
  lines: number;
  /** lines without a syslog header we understand */
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
  private readonly recogniser: Recogniser;
  private readonly rates = new RateCounter();
  private readonly set: string;
  private config: ModuleConfig;
  private lists: Lists;
  private readonly writes: PendingWrites;
  private readonly log: (message: string) => void;
  private clampReported = false;
  readonly dns: DnsClassifier | null;

  constructor(private readonly o: RuntimeOptions) {
    this.set = moduleSetName(o.module);
    this.writes = new PendingWrites(o.store);
    this.log = o.log ?? (() => {});
    this.config = o.config;
    this.recogniser = new Recogniser(o.rules, { clock: o.clock, useLineTime: o.useLineTime });
    this.lists = o.lists;
    this.dns = o.dns ? new DnsClassifier(o.dns.client, o.dns.options, (address, cls) => this.applyClass(address, cls), o.clock) : null;
  }

  /**
   * A DNS class arrived (between chunks): store it on the host, preset the counter if guilty.
   * It waits in memory with the chunk's writes and goes out with the next commit (the next
   * chunk, or the loop's flush every 2 s): a transaction per answer cost as much as the lines.
   */
  private applyClass(address: string, cls: HostClass): void {
    const host = this.writes.getHost(address);
    if (host) this.writes.putHost(classifyHost(host, cls, this.config, this.o.clock()));
  }

  /** New settings, rules and lists (SIGHUP); counts and sessions carry on. */
  reload(next: Reloadable): void {
    this.config = next.moduleConfig;
    this.recogniser.reload(next.rules);
    this.lists = next.lists;
  }

  /**
   * One block of lines (from LineSplitter): one database transaction, then one firewall batch.
   * A ban is announced (onBan) only once its transaction committed, so an announced ban
   * survives a crash. With the disk full, the block's writes wait in memory (PendingWrites),
   * bans still reach the firewall, and their announcement says they are not written yet.
   */
  async processBlock(block: string, rawProgram: string | null = null): Promise<void> {
    const bans: SetElement[] = [];
    const decided: BanReport[] = [];
    let banning: Promise<FirewallOutcome> | null = null;
    const sink = {
      attributed: (a: Attribution) => this.attributed(a, bans, decided),
      succeeded: (host: Ip, sessionAffairs: () => number, time: number) => {
        if (this.config.forgiveOnSuccess) this.forgive(host, sessionAffairs(), time);
      },
    };
    const written = this.writes.commit(() => {
      this.stats.lines += forEachLine(block, this.stats.skipped, (start, end) => void this.recogniser.line(block, start, end, rawProgram, sink));
      /* the kernel first, the commit after: a backend starts its work synchronously, so the
         drop does not wait for SQLite (a ban without its record would still lapse by itself) */
      if (bans.length > 0) banning = this.o.firewall.ban(this.set, bans);
    }, this.log);
    Object.assign(this.stats, this.recogniser.stats, { unattributed: this.recogniser.unattributed });
    this.o.fleet?.sink.afterBlock();
    const refused = banning ? this.reportOutcome(await banning) : new Map<string, string>();
    const unwritten = written ? "" : `; not written yet: ${this.writes.stats().error}`;
    for (const ban of decided) {
      const kernel = refused.has(ban.address) ? `; the kernel refused it: ${refused.get(ban.address)}` : "";
      this.o.onBan?.(unwritten || kernel ? { ...ban, reason: ban.reason + unwritten + kernel } : ban);
    }
  }

  /** Elements the kernel refused are counted and logged, never fatal; clamped timeouts are said once. */
  private reportOutcome(outcome: FirewallOutcome): Map<string, string> {
    this.stats.refused += outcome.refused.length;
    const clamped = this.clampReported ? { ...outcome, clamped: 0 } : outcome;
    if (outcome.clamped > 0) this.clampReported = true;
    for (const line of outcomeMessages(this.set, clamped, this.o.firewall.maxTimeout)) this.log(line);
    return new Map(outcome.refused.map((r) => [r.address, r.reason]));
  }

  /** Write what waits in memory (DNS classes between chunks, or everything after a full disk); false while it cannot. `retryNow`: the last chance (exit). */
  flushPending(retryNow = false): boolean {
    if (!this.writes.empty) this.writes.commit(() => {}, this.log, retryNow);
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
    const { module, store, firewall, lists } = this.o;
    const ban = await banNow({ module, config: this.config, store, firewall, lists, publisher: this.o.fleet?.publisher ?? null }, ip, FLEET_AFFAIRS_RULE, undefined, now);
    this.stats.bans++;
    this.o.fleet?.sink.decided();
    this.o.fleet?.sink.afterBlock();
    this.o.onBan?.({ ...ban, time: now, rule: FLEET_AFFAIRS_RULE, reason: `${total} affairs across the fleet within ${formatDuration(this.config.findTime)}` });
  }

  /** What the recogniser attributed: an affair to count, unless a rate rule's rate is not reached. */
  private attributed(a: Attribution, bans: SetElement[], decided: BanReport[]): void {
    if (a.rule.action !== "count" && a.rule.action !== "ban") return;
    if (a.rule.rate && !this.rates.hit(a.host.text, a.vhost, a.rule.rate, a.time)) return;
    this.countAffair(a.host, a.rule.name, a.weight, a.rule.action === "ban", a.time, a, bans, decided);
  }

  private forgive(ip: Ip, affairs: number, time: number): void {
    if (affairs === 0) return;
    const host = this.writes.getHost(ip.text);
    if (host) this.writes.putHost(forgiveAffairs(host, affairs, time));
  }

  private countAffair(ip: Ip, rule: string, claimed: number, ruleBans: boolean, time: number, detail: Pick<Attribution, "user" | "vhost">, bans: SetElement[], decided: BanReport[]): void {
    /* a count the line claims (Dovecot's "auth failed, N attempts", where a user name could
       claim N) stands for at most what one ban needs: it can neither inflate the statistics */
    const weight = Math.min(claimed, this.config.maxAffairs);
    if (this.lists.protection(ip)) {
      this.stats.protected++;
      return;
    }
    const blacklisted = this.lists.isBlacklisted(ip);
    if (weight === 0 && !ruleBans && !blacklisted) {
      this.stats.merged++;
      return;
    }
    const before = this.writes.getHost(ip.text) ?? newHost(ip.text, time, rule);
    if (before.class === "ALLOWED" || this.dns?.cached(ip.text) === "ALLOWED") {
      this.stats.protected++; /* a crawler of a domain the module allows, confirmed by DNS */
      return;
    }
    const counted = countAffair(before, time, weight, rule, this.config, ruleBans || blacklisted);
    const { banSeconds, reached, preset } = counted;
    let host = detail.vhost ? { ...counted.host, vhost: detail.vhost } : counted.host;
    if (this.dns && this.config.dns && (host.class === null || host.class === "UNKNOWN")) {
      const cls = this.dns.cached(ip.text);
      if (cls) host = classifyHost(host, cls, this.config, time);
      else this.dns.request(ip);
    }
    this.writes.putHost(host);
    this.writes.addEvent({ time, address: ip.text, rule, kind: "affair", value: weight, user: detail.user, vhost: detail.vhost }, host.class);
    this.stats.affairs += weight;
    this.o.fleet?.sink.affair(ip.text, weight);
    /* the address's prefix counts too: a rotating /64 is banned whole (pipeline/prefixes.ts) */
    const prefix = countPrefix(this.writes, this.config, this.lists, ip, rule, weight, banSeconds > 0, time, this.o.clock(), detail.vhost);
    if (prefix) {
      this.stats.bans++;
      if (prefix.element) bans.push(prefix.element);
      decided.push(prefix.ban);
    }
    if (banSeconds === 0) return;
    this.writes.addEvent({ time, address: ip.text, rule, kind: "ban", value: banSeconds, user: null, vhost: detail.vhost }, host.class);
    const fleet = this.o.fleet;
    if (fleet?.publisher) {
      queueDecision(this.writes, fleet.publisher, this.o.module, "ban", ip.text, host.bannedUntil, rule, time);
      fleet.sink.decided();
    }
    this.stats.bans++;
    const remaining = host.bannedUntil - this.o.clock();
    if (remaining > 0) bans.push({ address: ip.text, timeout: remaining });
    const why = blacklisted
      ? "blacklisted: banned at sight"
      : ruleBans
        ? `rule ${rule} bans at once`
        : preset > 0
          ? `${reached - preset} affairs (${host.class}: counter preset to ${this.config.maxAffairs - 1}), last by rule ${rule}`
          : `${reached} affairs within ${formatDuration(this.config.findTime)}, last by rule ${rule}`;
    decided.push({
      address: ip.text,
      time,
      seconds: banSeconds,
      until: host.bannedUntil,
      rule,
      reason: host.banCount > 1 ? `${why} (ban #${host.banCount})` : why,
    });
  }
}
