/**
 * Stage 4 of a line's way: counting. What the recogniser attributed becomes an affair of its
 * host (protected and allowed addresses stop here, a blacklisted one is banned at sight), in a
 * sliding window (decide.ts), with the host's DNS class (presets), rate rules (rates.ts) and
 * its prefix (prefixes.ts), and a ban when a limit is crossed. Its writes go to the chunk's
 * PendingWrites (persist.ts); the bans it decides go on to the ban stage.
 */
import type { ModuleConfig, ModuleName } from "../core/config";
import { type ClassifierOptions, type DnsClient, DnsClassifier, type HostClass } from "../core/dns";
import { formatDuration } from "../core/duration";
import type { SetElement } from "../core/firewall/types";
import type { Ip } from "../core/ip";
import type { Lists } from "../core/lists";
import { type ModuleFleet, queueDecision } from "../fleet/publisher";
import { classifyHost, countAffair, forgiveAffairs, newHost } from "./decide";
import type { PendingWrites } from "./persist";
import { countPrefix } from "./prefixes";
import { RateCounter } from "./rates";
import type { Attribution } from "./recognise";
import type { Withdrawn } from "./sessions";

export interface BanReport {
  readonly address: string;
  readonly time: number;
  readonly seconds: number;
  readonly until: number;
  readonly rule: string;
  readonly reason: string;
}

/** What a chunk's counting decided: the elements for the firewall, and the bans to announce. */
export interface Decided {
  readonly elements: SetElement[];
  readonly reports: BanReport[];
}

export interface CountStats {
  affairs: number;
  /** matched lines that added nothing: the same attempt already counted by its session */
  merged: number;
  /** matched lines of whitelisted, own or reserved addresses */
  protected: number;
  bans: number;
}

export interface CounterOptions {
  readonly module: ModuleName;
  readonly config: ModuleConfig;
  readonly lists: Lists;
  readonly writes: PendingWrites;
  /** epoch seconds */
  readonly clock: () => number;
  /** classify new hosts by DNS (the resident loop; a replay does not) */
  readonly dns?: { readonly client: Pick<DnsClient, "classify">; readonly options: ClassifierOptions };
  /** fleet mode: bans are queued for the other nodes, affairs shared */
  readonly fleet?: { readonly publisher: string | null; readonly sink: Pick<ModuleFleet, "affair" | "decided" | "afterBlock"> };
}

export class Counter {
  readonly stats: CountStats = { affairs: 0, merged: 0, protected: 0, bans: 0 };
  readonly dns: DnsClassifier | null;
  private readonly rates = new RateCounter();
  private config: ModuleConfig;
  private lists: Lists;

  constructor(private readonly o: CounterOptions) {
    this.config = o.config;
    this.lists = o.lists;
    this.dns = o.dns ? new DnsClassifier(o.dns.client, o.dns.options, (address, cls) => this.applyClass(address, cls), o.clock) : null;
  }

  /** New settings and lists (SIGHUP); counts carry on. */
  reload(config: ModuleConfig, lists: Lists): void {
    this.config = config;
    this.lists = lists;
  }

  /** DNS classes that arrived since the last chunk (their lookups ran between chunks) */
  private arrivedClasses: [address: string, cls: HostClass][] = [];

  /**
   * A DNS class arrived (between chunks): it is stored on its host, and presets the counter if
   * guilty, in the next transaction (the next chunk's, or the loop's flush every 2 s): a
   * transaction per answer cost as much as the lines, and a read of the host outside one a lock
   * and the host's pages per answer.
   */
  private applyClass(address: string, cls: HostClass): void {
    this.arrivedClasses.push([address, cls]);
  }

  /** The classes that arrived since the last chunk onto their hosts: in the transaction, before the chunk's lines. */
  applyArrivedClasses(): void {
    if (this.arrivedClasses.length === 0) return;
    const now = this.o.clock();
    for (const [address, cls] of this.arrivedClasses) {
      const host = this.o.writes.getHost(address);
      if (host) this.o.writes.putHost(classifyHost(host, cls, this.config, now));
    }
    this.arrivedClasses = [];
  }

  /** Classes wait to be applied. */
  get classesArrived(): boolean {
    return this.arrivedClasses.length > 0;
  }

  /** What the recogniser attributed: an affair to count, unless a rate rule's rate is not reached. */
  attributed(a: Attribution, out: Decided): void {
    if (a.rule.action !== "count" && a.rule.action !== "ban") return;
    if (a.rule.rate && !this.rates.hit(a.host.text, a.vhost, a.rule.rate, a.time)) return;
    this.count(a.host, a.rule.name, a.weight, a.rule.action === "ban", a.time, a, out);
  }

  /** A good login withdraws what its session counted: all of it with forgiveOnSuccess, else its forgiven rules' share (a ban stays). */
  forgive(ip: Ip, withdraw: (everything: boolean) => Withdrawn, time: number): void {
    const { affairs } = withdraw(this.config.forgiveOnSuccess);
    if (affairs === 0) return;
    const host = this.o.writes.getHost(ip.text);
    if (host) this.o.writes.putHost(forgiveAffairs(host, affairs, time));
  }

  /** A ban of an address or a prefix, for the fleet (in the chunk's transaction), when this module publishes. */
  private publish(address: string, until: number, rule: string, time: number): void {
    const fleet = this.o.fleet;
    if (!fleet?.publisher) return;
    queueDecision(this.o.writes, fleet.publisher, this.o.module, "ban", address, until, rule, time);
    fleet.sink.decided();
  }

  private count(ip: Ip, rule: string, claimed: number, ruleBans: boolean, time: number, detail: Pick<Attribution, "user" | "vhost">, out: Decided): void {
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
    const before = this.o.writes.getHost(ip.text) ?? newHost(ip.text, time, rule);
    /* the cache is asked only for a host without a class yet: once its class is on the host, an affair costs no DNS work */
    const unclassified = before.class === null || before.class === "UNKNOWN";
    const cached = unclassified ? (this.dns?.cached(ip.text) ?? null) : null;
    if (before.class === "ALLOWED" || cached === "ALLOWED") {
      this.stats.protected++; /* a crawler of a domain the module allows, confirmed by DNS */
      return;
    }
    const counted = countAffair(before, time, weight, rule, this.config, ruleBans || blacklisted);
    const { banSeconds, reached, preset } = counted;
    let host = detail.vhost ? { ...counted.host, vhost: detail.vhost } : counted.host;
    if (this.dns && this.config.dns && unclassified) {
      if (!cached) this.dns.request(ip);
      else if (cached !== host.class) host = classifyHost(host, cached, this.config, time);
    }
    this.o.writes.putHost(host);
    this.o.writes.addEvent({ time, address: ip.text, rule, kind: "affair", value: weight, user: detail.user, vhost: detail.vhost }, host.class);
    this.stats.affairs += weight;
    this.o.fleet?.sink.affair(ip.text, weight);
    /* the address's prefix counts too: a rotating /64 is banned whole (pipeline/prefixes.ts) */
    const prefix = countPrefix(this.o.writes, this.config, this.lists, ip, rule, weight, banSeconds > 0, time, this.o.clock(), detail.vhost);
    if (prefix) {
      this.stats.bans++;
      if (prefix.element) out.elements.push(prefix.element);
      out.reports.push(prefix.ban);
      this.publish(prefix.ban.address, prefix.ban.until, prefix.ban.rule, time);
    }
    if (banSeconds === 0) return;
    this.o.writes.addEvent({ time, address: ip.text, rule, kind: "ban", value: banSeconds, user: null, vhost: detail.vhost }, host.class);
    this.publish(ip.text, host.bannedUntil, rule, time);
    this.stats.bans++;
    const remaining = host.bannedUntil - this.o.clock();
    if (remaining > 0) out.elements.push({ address: ip.text, timeout: remaining });
    const why = blacklisted
      ? "blacklisted: banned at sight"
      : ruleBans
        ? `rule ${rule} bans at once`
        : preset > 0
          ? `${reached - preset} affairs (${host.class}: counter preset to ${this.config.maxAffairs - 1}), last by rule ${rule}`
          : `${reached} affairs within ${formatDuration(this.config.findTime)}, last by rule ${rule}`;
    out.reports.push({
      address: ip.text,
      time,
      seconds: banSeconds,
      until: host.bannedUntil,
      rule,
      reason: host.banCount > 1 ? `${why} (ban #${host.banCount})` : why,
    });
  }
}
