/**
 * Stage 6 of a line's way: the chunk's bans into the kernel, one firewall batch, and their
 * announcement. The batch starts before the chunk's commit (a backend starts its work at once,
 * so the drop does not wait for SQLite; a ban without its record still lapses by itself), and
 * a ban is announced only after the commit, so an announced ban survives a crash. What the
 * kernel refuses is counted and logged, never fatal; clamped timeouts are said once. The time
 * from the chunk's arrival to the kernel's answer goes into a histogram (the metrics).
 */
import { type Firewall, type FirewallOutcome, moduleSetName, outcomeMessages } from "../core/firewall/types";
import { Histogram, LATENCY_BOUNDS } from "../ops/metrics";
import type { BanReport, Decided } from "./count";

export class Banning {
  /** bans the kernel refused (a full set): recorded, logged, not in the firewall */
  refused = 0;
  /** seconds from a chunk's arrival to the kernel's answer, once per ban that reached it */
  readonly latency = new Histogram(LATENCY_BOUNDS);
  private readonly set: string;
  private clampReported = false;

  constructor(
    module: string,
    private readonly firewall: Firewall,
    private readonly log: (message: string) => void,
    private readonly announce: (ban: BanReport) => void,
  ) {
    this.set = moduleSetName(module);
  }

  /** Hand the chunk's elements to the kernel now; `announce` waits for what it answers. */
  start(decided: Decided): Promise<FirewallOutcome> | null {
    return decided.elements.length > 0 ? this.firewall.ban(this.set, decided.elements) : null;
  }

  /**
   * After the commit: announce each ban, saying so when it is not written yet or the kernel
   * refused it. `arrived`: performance.now() when the chunk came in.
   */
  async announceAfter(decided: Decided, banning: Promise<FirewallOutcome> | null, unwritten: string | null, arrived: number): Promise<void> {
    const refused = banning ? this.outcome(await banning) : new Map<string, string>();
    if (banning) {
      const seconds = (performance.now() - arrived) / 1000;
      for (let i = decided.elements.length - refused.size; i > 0; i--) this.latency.observe(seconds);
    }
    const notWritten = unwritten === null ? "" : `; not written yet: ${unwritten}`;
    for (const ban of decided.reports) {
      const kernel = refused.has(ban.address) ? `; the kernel refused it: ${refused.get(ban.address)}` : "";
      this.announce(notWritten || kernel ? { ...ban, reason: ban.reason + notWritten + kernel } : ban);
    }
  }

  private outcome(outcome: FirewallOutcome): Map<string, string> {
    this.refused += outcome.refused.length;
    const clamped = this.clampReported ? { ...outcome, clamped: 0 } : outcome;
    if (outcome.clamped > 0) this.clampReported = true;
    for (const line of outcomeMessages(this.set, clamped, this.firewall.maxTimeout)) this.log(line);
    return new Map(outcome.refused.map((r) => [r.address, r.reason]));
  }
}
