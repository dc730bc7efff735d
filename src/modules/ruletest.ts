/**
 * `watcher rules test`: run a log through a module's rules, like fail2ban-regex. Needs no
 * root and touches no database: hits per rule, extracted hosts, and the engine's speed.
 * Lines are attributed to sessions by the daemon's own SessionTable, in the lines' own time (as
 * `inject --direct` replays them), so each line shows the address the daemon would count it
 * against: its own, else its session's, including a session's address written after the line.
 * A line whose affair a later good login of its connection withdraws (a refused key, PAM's line:
 * rules marked `forgiven`) is marked `withdrawn`, as the daemon withdraws it without
 * forgiveOnSuccess.
 * The log's format is found from its lines, as the module finds it (formats.ts); --missed and
 * --unparsed show what no rule counted and what no format fits, like fail2ban-regex's missed lines.
 */
import type { Action, RuleSet } from "../core/rules";
import { type Attribution, Recogniser } from "../pipeline/recognise";
import { SourceFormat } from "../pipeline/formats";
import { decodeLog, forEachLine, type SkipCounts } from "../pipeline/split";
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

/** A line `rules test` prints for --missed / --unparsed: its number and text. */
export interface RuleTestLine {
  readonly line: number;
  readonly text: string;
  /** --missed: the rule that matched without counting (ignore, success), if one did */
  readonly rule?: string;
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
  /** lines per format found from their shape (formats.ts); with a given program, all under it */
  readonly formats: Record<string, number>;
  /** with `missed`: lines of the module's programs that no rule counted */
  readonly missed?: RuleTestLine[];
  /** with `unparsed`: lines no format fits */
  readonly unparsedLines?: RuleTestLine[];
}

export interface RuleTestOptions {
  /** the lines are this program's, whole (`--program`); else their format is found from their shape */
  readonly program?: string | null;
  /** collect the lines of the module's programs that no rule counted */
  readonly missed?: boolean;
  /** collect the lines no format fits */
  readonly unparsed?: boolean;
  /** the log's bytes, when `input` is its text and it turns out to be a journal export (binary fields) */
  readonly reread?: () => Uint8Array;
}


const counting = (action: Action): boolean => action === "count" || action === "ban";

/** `input`: the log as text or bytes (a journal export is read as bytes, see decodeLog). */
export function testRules(rules: RuleSet, input: string | Uint8Array, o: RuleTestOptions = {}): RuleTestResult {
  const hits: Record<string, number> = {};
  for (const r of rules.rules) hits[r.name] = 0;
  const matches: RuleTestMatch[] = [];
  const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
  /* the daemon's recogniser, in the lines' own time, as `inject --direct` replays them */
  const now = nowSeconds();
  const recogniser = new Recogniser(rules, { clock: () => now, useLineTime: true });
  const format = new SourceFormat(o.program ?? null);
  const programs = new Set(rules.programs);
  const missed: RuleTestLine[] = [];
  const unparsedLines: RuleTestLine[] = [];
  /* each line is tagged with its place in `matches`; an attribution may also fill in an earlier
     line's address (the one its session wrote later) */
  const attributions: Attribution[] = [];
  const sink = {
    attributed: (a: Attribution) => void attributions.push(a),
    succeeded: (_host: Ip, withdraw: (everything: boolean) => Withdrawn) => {
      for (const tag of withdraw(false).tags) matches[tag]!.withdrawn = true;
    },
  };
  const { block, journalExport } = decodeLog(input, skipped, o.reread);
  /* the engine's speed: reading and decoding the file are not its work */
  const started = performance.now();
  const lines = forEachLine(block, skipped, (start, end, index) => {
    attributions.length = 0;
    const m = recogniser.line(block, start, end, format, sink, matches.length);
    if (m) {
      hits[m.rule.name] = (hits[m.rule.name] ?? 0) + 1;
      const host = m.host?.text ?? null;
      /* `ambiguous` only where a line reads two ways, so that the common match stays four fields */
      matches.push(m.ambiguous ? { line: index + 1, rule: m.rule.name, host, action: m.rule.action, ambiguous: true } : { line: index + 1, rule: m.rule.name, host, action: m.rule.action });
      for (const a of attributions) matches[a.tag]!.host = a.host.text;
    }
    if (o.missed && !(m && counting(m.rule.action))) {
      const program = recogniser.lastProgram(format);
      if (program !== null && programs.has(program)) missed.push({ line: index + 1, text: block.slice(start, end), ...(m ? { rule: m.rule.name } : {}) });
    }
    if (o.unparsed && recogniser.lastProgram(format) === null) unparsedLines.push({ line: index + 1, text: block.slice(start, end) });
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
    unattributed: matches.filter((m) => m.host === null && counting(m.action)).length,
    formats: format.seen(journalExport),
    ...(o.missed ? { missed } : {}),
    ...(o.unparsed ? { unparsedLines } : {}),
  };
}
