/**
 * Stage 3 of a line's way, THE recogniser: the syslog header split once (or a header-less line
 * taken as its source's program), the rules of that program, and the attribution of the line
 * to the address its session vouches for (sessions.ts). The resident module, `inject --direct`
 * and `rules test` all run lines through it, so what `rules test` shows is what the daemon
 * counts. It hands each attribution on to the next stage and does not count anything itself.
 */
import type { Ip } from "../core/ip";
import type { CompiledRule, RuleMatch, RuleSet } from "../core/rules";
import { HeaderScan, parseSyslogTime, scanSyslog } from "../core/syslog";
import { SessionTable, sessionOf, type Withdrawn } from "./sessions";

/** seconds a line's own time may lie ahead of our clock (hosts' clocks drift) */
const MAX_CLOCK_SKEW = 300;

/** A line's own time; one dated beyond the clock skew (a bad clock, a forged year) counts as now. */
function lineTime(time: number | null, now: number): number {
  return time === null || time > now + MAX_CLOCK_SKEW ? now : time;
}

/** A line attributed to an address: the line in hand, or an earlier one of its session that waited for it. */
export interface Attribution {
  readonly host: Ip;
  readonly rule: CompiledRule;
  /** affairs it stands for: 0 when merged into attempts its session counted already */
  readonly weight: number;
  readonly time: number;
  /** the account and web server instance the line names (the line in hand only) */
  readonly user: string | null;
  readonly vhost: string | null;
  /** what the caller tagged the line with (`rules test`: its index) */
  readonly tag: number;
}

/** Where the recogniser hands its results. */
export interface RecognisedSink {
  attributed(a: Attribution): void;
  /** a good login: `withdraw` takes back its session's affairs against `host`, all of them (forgiveOnSuccess) or its forgiven rules' */
  succeeded?(host: Ip, withdraw: (everything: boolean) => Withdrawn, time: number): void;
}

export interface RecogniserOptions {
  /** epoch seconds */
  readonly clock: () => number;
  /** replay: a line's time is its own (within MAX_CLOCK_SKEW), else it is now */
  readonly useLineTime: boolean;
}

export class Recogniser {
  readonly stats = { unparsed: 0, matched: 0 };
  readonly sessions = new SessionTable();
  private readonly header = new HeaderScan();

  constructor(
    private rules: RuleSet,
    private readonly o: RecogniserOptions,
  ) {}

  /** New rules (SIGHUP); sessions carry on. */
  reload(rules: RuleSet): void {
    this.rules = rules;
  }

  /** Lines no session could give an address the server wrote: counted against nobody. */
  get unattributed(): number {
    return this.sessions.stats.unattributed;
  }

  /**
   * One line, `text[start, end)`: its match (null when no rule matched or the header is not
   * understood), and through `sink` every attribution it releases. `rawProgram`: the line has no
   * syslog header and is this program's (a web server's own log): no session, the time is now.
   */
  line(text: string, start: number, end: number, rawProgram: string | null, sink: RecognisedSink, tag = 0): RuleMatch | null {
    if (rawProgram) {
      const m = this.rules.matchRaw(rawProgram, text, start, end);
      if (!m) return null;
      this.stats.matched++;
      if (m.host) sink.attributed({ host: m.host, rule: m.rule, weight: 1, time: this.o.clock(), user: m.user, vhost: m.vhost, tag });
      return m;
    }
    const h = this.header;
    if (!scanSyslog(text, start, end, h)) {
      this.stats.unparsed++;
      return null;
    }
    const m = this.rules.match(text, h, end);
    if (!m) return null;
    this.stats.matched++;
    const now = this.o.clock();
    const time = this.o.useLineTime ? lineTime(parseSyslogTime(text.slice(h.timeStart, h.timeEnd), now), now) : now;
    const session = sessionOf(text, h, m.session);
    const attributed = this.sessions.attribute(session, m.host, m.rule, m.count, time, tag);
    if (m.rule.action === "success" && m.host) sink.succeeded?.(m.host, (everything) => this.sessions.forgive(session, everything), time);
    /* an ignored line may still bring the address that earlier lines of its session waited for */
    for (const a of attributed) {
      sink.attributed({ host: a.host, rule: a.rule, weight: a.weight, time, user: a.current ? m.user : null, vhost: a.current ? m.vhost : null, tag: a.tag });
    }
    return m;
  }
}
