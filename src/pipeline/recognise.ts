/**
 * Stage 3 of a line's way, THE recogniser: the line's format found from its shape (formats.ts,
 * per source), its header split once (a header-less line is taken as its format's program),
 * the rules of that program, and the attribution of the line to the address its session
 * vouches for (sessions.ts). The resident module, `inject --direct`
 * and `rules test` all run lines through it, so what `rules test` shows is what the daemon
 * counts. It hands each attribution on to the next stage and does not count anything itself.
 */
import type { Ip } from "../core/ip";
import type { CompiledRule, RuleMatch, RuleSet } from "../core/rules";
import { HeaderScan, loadLocalZone } from "../core/syslog";
import type { SourceFormat } from "./formats";
import { SessionKeys, SessionTable, type Withdrawn } from "./sessions";

/** seconds a line's own time may lie ahead of our clock (hosts' clocks drift) */
const MAX_CLOCK_SKEW = 300;

/** A line's own time; one dated beyond the clock skew (a bad clock, a forged year) counts as now. */
function lineTime(time: number | null, now: number): number {
  return time === null || time > now + MAX_CLOCK_SKEW ? now : time;
}

/** A line attributed to an address: the line in hand, or an earlier one of its session that waited for the address or a verdict. */
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
  /** the tag of the line it is counted on: the line in hand, or its own when its session ended without a verdict */
  readonly at: number;
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
  private readonly sessionKeys = new SessionKeys();
  private readonly header = new HeaderScan();
  /** the text the last line was scanned in, null when no format fitted it (lastProgram) */
  private last: string | null = null;
  /** the time of the last matched line */
  private lastTime = 0;

  constructor(
    private rules: RuleSet,
    private readonly o: RecogniserOptions,
  ) {
    loadLocalZone(o.clock());
  }

  /** New rules (SIGHUP); sessions carry on. */
  reload(rules: RuleSet): void {
    this.rules = rules;
  }

  /** The program of the line last seen, null when no format fitted it: `rules test --missed`. */
  lastProgram(format: SourceFormat): string | null {
    if (this.last === null) return null;
    return format.program ?? this.last.slice(this.header.programStart, this.header.programEnd);
  }

  /** Lines no session could give an address the server wrote: counted against nobody. */
  get unattributed(): number {
    return this.sessions.stats.unattributed;
  }

  /** The log is over (a replay, `rules test`): lines its sessions still held for a verdict count, at the last line's time. */
  endOfLog(sink: RecognisedSink): void {
    for (const a of this.sessions.endOfLog()) {
      sink.attributed({ host: a.host, rule: a.rule, weight: a.weight, time: this.lastTime, user: null, vhost: null, tag: a.tag, at: a.at });
    }
  }

  /**
   * One line, `block[start, end)` of a source whose lines have `format`: its match (null when no
   * rule matched or no format fits the line), and through `sink` every attribution it releases.
   */
  line(block: string, start: number, end: number, format: SourceFormat, sink: RecognisedSink, tag = 0): RuleMatch | null {
    const h = this.header;
    const text = format.scan(block, start, end, h, this.rules);
    this.last = text;
    if (text === null) {
      this.stats.unparsed++;
      return null;
    }
    const program = format.program;
    const m = program === null ? this.rules.match(text, h, h.lineEnd) : this.rules.matchRaw(program, text, h.messageStart, h.lineEnd);
    if (!m) return null;
    this.stats.matched++;
    const now = this.o.clock();
    const time = this.o.useLineTime ? lineTime(format.time(text, h, now), now) : now;
    this.lastTime = time;
    /* a header-less line has no pid: its own address, or none; nor has a line whose session id, all it
       had to find its address by, reads two ways (its pid is every session's: OpenSMTPD) */
    const session = program === null && !(m.rule.sessionOnly && m.session === null) ? this.sessionKeys.of(text, h, m.session) : "";
    const attributed = this.sessions.attribute(session, m.host, m.rule, m.count, time, tag, m.user);
    if (m.rule.action === "success" && m.host) sink.succeeded?.(m.host, (everything) => this.sessions.forgive(session, everything), time);
    /* an ignored line may still bring the address or the verdict that earlier lines of its session waited for */
    for (const a of attributed) {
      sink.attributed({ host: a.host, rule: a.rule, weight: a.weight, time, user: a.current ? m.user : null, vhost: a.current ? m.vhost : null, tag: a.tag, at: a.at });
    }
    return m;
  }
}
