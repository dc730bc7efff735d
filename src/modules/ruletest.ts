/**
 * `watcher rules test`: run a log through a module's rules, like fail2ban-regex. Needs no
 * root and touches no database: hits per rule, extracted hosts, and the engine's speed.
 * Lines are attributed to sessions by the daemon's own SessionTable, in the lines' own time (as
 * `inject --direct` replays them), so each line shows the address the daemon would count it
 * against: its own, else its session's, including a session's address written after the line.
 * A line waits where the daemon waits, and its affair shows where the daemon counts it: a line
 * without an address waits for the line that brings its session's, a held line (a refused key,
 * PAM's failure: rules marked `held`) for its connection's verdict: a failure, a login for another
 * account or the connection's end. Such a line shows action `held` and is `countedOn` that later
 * line, which `counts` it; a login for its account forgets a held line (`withdrawn`). A line whose affair a later good login of its
 * connection withdraws (rules marked `forgiven`) is marked `withdrawn`, as the daemon withdraws it
 * without forgiveOnSuccess.
 * The log's format is found from its lines, as the module finds it (formats.ts); --missed and
 * --unparsed show what no rule counted and what no format fits, like fail2ban-regex's missed lines.
 */
import type { Action, RuleSet } from "../core/rules";
import { type Attribution, Recogniser } from "../pipeline/recognise";
import { SourceFormat } from "../pipeline/formats";
import { decodeLog, EXPORT_START_BYTES, forEachLine, isJournalExport, type SkipCounts } from "../pipeline/split";
import { nowSeconds } from "../core/duration";
import type { Ip } from "../core/ip";
import type { Withdrawn } from "../pipeline/sessions";

export interface RuleTestMatch {
  /** 1-based line number in the input */
  readonly line: number;
  readonly rule: string;
  /**
   * the address the line counts against, on this line: its own, else its session's (earlier or
   * later line); null when none is certain, or when it is counted on another line (`countedOn`,
   * whose host it is) or forgotten
   */
  host: string | null;
  /**
   * what the line did: its rule's action; `count` for a line that counts earlier lines (`counts`);
   * `held` for a counting rule's line whose affair waited for a later line (`countedOn`), or was forgotten (`withdrawn`)
   */
  action: Action | "held";
  /** present (true) when the rule's templates read the line two ways: its own address is not taken, its session's decides */
  readonly ambiguous?: true;
  /** present (true) when a good login of its connection withdrew the affair this line counted, or forgot the held line */
  withdrawn?: true;
  /** the line this one's affair was counted on: it waited for that line's address or verdict */
  countedOn?: number;
  /** the earlier lines whose affairs this line counted */
  counts?: number[];
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
}


const counting = (action: Action | "held"): boolean => action === "count" || action === "ban";

/** `input`: the log as text or bytes (a journal export is read as bytes, see decodeLog). */
export function testRules(rules: RuleSet, input: string | Uint8Array, o: RuleTestOptions = {}): RuleTestResult {
  return runRules(rules, o, (skipped, add) => {
    const { block, journalExport } = decodeLog(input, skipped);
    add(block);
    return journalExport;
  });
}

/** bytes read at a time by testRulesInPieces (a line longer than this grows the buffer) */
const PIECE_BYTES = 1 << 20;

/**
 * testRules of a log read in pieces of whole lines, each decoded on its own: `read` fills
 * buffer[at, at + length) and returns the bytes it read, 0 at the end. A 100 MB log read whole
 * into one string cost several times the reading of it in 1 MiB pieces (fresh memory faulted in
 * page by page). A piece ends after a newline, which no UTF-8 sequence holds, so the pieces
 * decode to the text of the whole. A journal export (its binary fields) is read whole, as bytes.
 */
export function testRulesInPieces(rules: RuleSet, read: (buffer: Buffer, at: number, length: number) => number, o: RuleTestOptions = {}): RuleTestResult {
  let buffer = Buffer.allocUnsafe(PIECE_BYTES);
  /* buffer[0, filled): read, not yet handed on (the start of an unfinished line) */
  let filled = 0;
  const more = (): boolean => {
    if (filled === buffer.length) buffer = Buffer.concat([buffer, Buffer.allocUnsafe(buffer.length)]);
    const n = read(buffer, filled, buffer.length - filled);
    filled += n;
    return n > 0;
  };
  let open = true;
  while (open && filled < EXPORT_START_BYTES) open = more();
  if (isJournalExport(buffer.subarray(0, filled))) {
    const pieces = [Buffer.from(buffer.subarray(0, filled))];
    for (filled = 0; open; filled = 0) {
      open = more();
      pieces.push(Buffer.from(buffer.subarray(0, filled)));
    }
    return testRules(rules, Buffer.concat(pieces), o);
  }
  return runRules(rules, o, (_skipped, add) => {
    /* buffer[0, unfinished) holds no newline: only what comes after is searched (a long line is read once) */
    let unfinished = 0;
    for (;;) {
      const last = buffer.subarray(unfinished, filled).lastIndexOf(NL);
      if (last >= 0) {
        const end = unfinished + last + 1;
        add(buffer.toString("utf8", 0, end));
        buffer.copy(buffer, 0, end, filled);
        filled -= end;
      }
      unfinished = filled;
      if (!open) break;
      open = more();
    }
    /* the last line without its newline */
    if (filled > 0) add(`${buffer.toString("utf8", 0, filled)}\n`);
    return false;
  });
}

const NL = 10;

/**
 * Where an attribution's affair shows: on its own line (the line in hand, or a held line whose
 * session ended without a verdict), or on the line in hand that brought an earlier line's
 * address or verdict: that line then counts it, and the earlier one points there. True when it
 * is the line in hand's own attribution.
 */
function countOn(matches: RuleTestMatch[], a: Attribution, own: number): boolean {
  const from = matches[a.tag]!;
  if (a.tag === own || a.at !== own) {
    from.host = a.host.text;
    /* a held line whose session ended without a verdict counts on itself */
    if (a.tag !== own) from.action = a.rule.action;
    return a.tag === own;
  }
  const on = matches[own]!;
  from.host = null;
  from.action = "held";
  from.countedOn = on.line;
  on.host = a.host.text;
  if (!counting(on.action)) on.action = "count";
  (on.counts ??= []).push(from.line);
  return false;
}

/**
 * The engine over the blocks of whole lines `feed` hands to `add` (it returns whether the log was
 * a journal export); only the engine's own time is its speed, not reading and decoding.
 */
function runRules(rules: RuleSet, o: RuleTestOptions, feed: (skipped: SkipCounts, add: (block: string) => void) => boolean): RuleTestResult {
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
  let lines = 0;
  let seconds = 0;
  const add = (block: string): void => {
    /* line numbers go on from the blocks before */
    const before = lines;
    const started = performance.now();
    lines += forEachLine(block, skipped, (start, end, index) => {
      const line = before + index + 1;
      attributions.length = 0;
      const m = recogniser.line(block, start, end, format, sink, matches.length);
      if (m) {
        hits[m.rule.name] = (hits[m.rule.name] ?? 0) + 1;
        const host = m.host?.text ?? null;
        /* `ambiguous` only where a line reads two ways, so that the common match stays four fields */
        const own = matches.length;
        matches.push(m.ambiguous ? { line, rule: m.rule.name, host, action: m.rule.action, ambiguous: true } : { line, rule: m.rule.name, host, action: m.rule.action });
        /* a counting line with its address and no attribution of its own waits for its connection's verdict */
        let attributedNow = false;
        for (const a of attributions) attributedNow = countOn(matches, a, own) || attributedNow;
        if (host !== null && !attributedNow && counting(m.rule.action)) {
          matches[own]!.action = "held";
          matches[own]!.host = null;
        }
      }
      if (o.missed && !(m && counting(m.rule.action))) {
        const program = recogniser.lastProgram(format);
        if (program !== null && programs.has(program)) missed.push({ line, text: block.slice(start, end), ...(m ? { rule: m.rule.name } : {}) });
      }
      if (o.unparsed && recogniser.lastProgram(format) === null) unparsedLines.push({ line, text: block.slice(start, end) });
    });
    seconds += (performance.now() - started) / 1000;
  };
  const journalExport = feed(skipped, add);
  /* the log is over: held lines whose connection never gave a verdict count on themselves */
  attributions.length = 0;
  recogniser.endOfLog(sink);
  for (const a of attributions) countOn(matches, a, -1);
  return {
    lines,
    matched: matches.length,
    seconds,
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
