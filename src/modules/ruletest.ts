/**
 * `watcher rules test`: run a log through a module's rules, like fail2ban-regex. Needs no
 * root and touches no database: hits per rule, extracted hosts, and the engine's speed.
 * Lines are attributed to sessions by the daemon's own SessionTable, in the lines' own time (as
 * `inject --direct` replays them), so each line shows the address the daemon would count it
 * against: its own, else its session's, including a session's address written after the line.
 * A line whose affair a later good login of its connection withdraws (a refused key, PAM's line:
 * rules marked `forgiven`) is marked `withdrawn`, as the daemon withdraws it without
 * forgiveOnSuccess.
 */
import type { Action, RuleSet } from "../core/rules";
import { type Attribution, Recogniser } from "../pipeline/recognise";
import { forEachLine, type SkipCounts } from "../pipeline/split";
import { nowSeconds } from "../core/duration";
import type { Ip } from "../core/ip";
import type { Withdrawn } from "../pipeline/sessions";

export interface RuleTestMatch {
  /** 1-based line number in the input */
  readonly line: number;
  readonly rule: string;
  /** the address the line is attributed to: its own, else its session's (earlier or later line); null when none is certain */
  host: string | null;
  readonly action: Action;
  /** present (true) when the rule's templates read the line two ways: its own address is not taken, its session's decides */
  readonly ambiguous?: true;
  /** present (true) when a good login of its connection withdrew the affair this line counted */
  withdrawn?: true;
}

export interface RuleTestResult {
  readonly lines: number;
  readonly matched: number;
  readonly seconds: number;
  readonly rules: Record<string, number>;
  readonly matches: RuleTestMatch[];
  readonly unparsed: number;
  readonly skipped: SkipCounts;
  /** lines of counting rules no session could give an address the server wrote: the daemon never counts them */
  readonly unattributed: number;
}

/** `ambiguous` only where a line reads two ways, so that the common match stays four fields */
const ambiguous = (yes: boolean): { ambiguous?: true } => (yes ? { ambiguous: true } : {});

/** `rawProgram`: the lines carry no syslog header (a web server's own log file) and are this program's. */
export function testRules(rules: RuleSet, text: string, rawProgram: string | null = null): RuleTestResult {
  const started = performance.now();
  const hits: Record<string, number> = {};
  for (const r of rules.rules) hits[r.name] = 0;
  const matches: RuleTestMatch[] = [];
  const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
  /* the daemon's recogniser, in the lines' own time, as `inject --direct` replays them */
  const now = nowSeconds();
  const recogniser = new Recogniser(rules, { clock: () => now, useLineTime: true });
  /* each line is tagged with its place in `matches`; an attribution may also fill in an earlier
     line's address (the one its session wrote later) */
  const attributions: Attribution[] = [];
  const sink = {
    attributed: (a: Attribution) => void attributions.push(a),
    succeeded: (_host: Ip, withdraw: (everything: boolean) => Withdrawn) => {
      for (const tag of withdraw(false).tags) matches[tag]!.withdrawn = true;
    },
  };
  const block = text.endsWith("\n") || text === "" ? text : `${text}\n`;
  const lines = forEachLine(block, skipped, (start, end, index) => {
    attributions.length = 0;
    const m = recogniser.line(block, start, end, rawProgram, sink, matches.length);
    if (!m) return;
    hits[m.rule.name] = (hits[m.rule.name] ?? 0) + 1;
    matches.push({ line: index + 1, rule: m.rule.name, host: m.host?.text ?? null, action: m.rule.action, ...ambiguous(m.ambiguous) });
    for (const a of attributions) matches[a.tag]!.host = a.host.text;
  });
  return {
    lines,
    matched: matches.length,
    seconds: (performance.now() - started) / 1000,
    rules: hits,
    matches,
    unparsed: recogniser.stats.unparsed,
    skipped,
    /* the log is over: lines of counting rules still without an address never get one */
    unattributed: matches.filter((m) => m.host === null && (m.action === "count" || m.action === "ban")).length,
  };
}
