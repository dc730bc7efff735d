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
import type { Action, CompiledRule, RuleSet } from "../core/rules";
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
const PIECE_BYTES = 1 << 16;

/**
 * testRules of a log read in pieces of whole lines, each decoded on its own: `read` fills
 * buffer[at, at + length) and returns the bytes it read, 0 at the end. A 100 MB log read whole
 * into one string cost several times the reading of it in 1 MiB pieces (fresh memory faulted in
 * page by page), and 64 KiB pieces less system time again than 1 MiB (gen_auth.py's 1M lines). A
 * piece ends after a newline, which no UTF-8 sequence holds, so the pieces decode to the text of
 * the whole. A journal export (its binary fields) is read whole, as bytes.
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

/** a match's action, as a number in MatchColumns */
const ACTION_NAMES = ["count", "ban", "ignore", "success", "held"] as const satisfies readonly (Action | "held")[];
/** its place in ACTION_NAMES: a switch, where a Map's lookup is a call into the runtime until the loop is compiled */
function actionCode(action: Action | "held"): number {
  switch (action) {
    case "count":
      return 0;
    case "ban":
      return 1;
    case "ignore":
      return 2;
    case "success":
      return 3;
    case "held":
      return 4;
  }
}
const AMBIGUOUS = 0x80;
const NO_HOST = -1;

/**
 * Addresses numbered once each, with their JSON text in bytes. By the Ip itself: the recogniser
 * hands out one Ip per address it has seen lately, so most lookups find it without hashing a
 * string; an address met again as another Ip gets another number, and its same text.
 */
class Hosts {
  private readonly numbers = new Map<Ip, number>();
  readonly texts: string[] = [];
  readonly json: Buffer[] = [];
  /* a matched line's host is asked for twice in a row: its match, then its attribution */
  private last: Ip | null = null;
  private lastNumber = 0;

  number(host: Ip): number {
    if (host === this.last) return this.lastNumber;
    let n = this.numbers.get(host);
    if (n === undefined) {
      n = this.texts.length;
      this.numbers.set(host, n);
      this.texts.push(host.text);
      this.json.push(Buffer.from(JSON.stringify(host.text)));
    }
    this.last = host;
    this.lastNumber = n;
    return n;
  }
}

/** the fields a later line sets on a match, in the order they were set (its JSON keeps that order) */
type LaterFields = Pick<RuleTestMatch, "withdrawn" | "countedOn" | "counts">;

/**
 * The matches of a run, column by column: a day of a busy server's log makes hundreds of
 * thousands (gen_auth.py's 1M lines: 400k), and as objects turned into text by JSON.stringify
 * they cost up to a sixth of `rules test --json`'s CPU time and 70 MB of peak RSS. at(i) is the
 * match as a RuleTestMatch, writeJson the same text as JSON.stringify of them all.
 */
class MatchColumns {
  length = 0;
  private lines = new Float64Array(1024);
  /** the rule's index in the rule set */
  private rules = new Uint32Array(1024);
  /** a number in `hosts`, NO_HOST for none */
  private hostOf = new Int32Array(1024);
  /** actionCode, | AMBIGUOUS */
  private kinds = new Uint8Array(1024);
  /** the few matches a later line changed: withdrawn, countedOn, counts */
  private readonly later = new Map<number, LaterFields>();
  private readonly hosts = new Hosts();
  /** by rule index: its name, and its name's JSON text */
  private readonly ruleNames: readonly string[];
  private readonly ruleJson: readonly Buffer[];

  constructor(rules: readonly CompiledRule[]) {
    this.ruleNames = rules.map((r) => r.name);
    this.ruleJson = this.ruleNames.map((name) => Buffer.from(JSON.stringify(name)));
  }

  push(line: number, rule: CompiledRule, host: Ip | null, ambiguous: boolean): void {
    if (this.length === this.lines.length) this.grow();
    const i = this.length++;
    this.lines[i] = line;
    this.rules[i] = rule.index;
    this.hostOf[i] = host === null ? NO_HOST : this.hosts.number(host);
    this.kinds[i] = actionCode(rule.action) | (ambiguous ? AMBIGUOUS : 0);
  }

  line(i: number): number {
    return this.lines[i]!;
  }

  host(i: number): string | null {
    const h = this.hostOf[i]!;
    return h === NO_HOST ? null : this.hosts.texts[h]!;
  }

  setHost(i: number, host: Ip | null): void {
    this.hostOf[i] = host === null ? NO_HOST : this.hosts.number(host);
  }

  action(i: number): Action | "held" {
    return ACTION_NAMES[this.kinds[i]! & ~AMBIGUOUS]!;
  }

  setAction(i: number, action: Action | "held"): void {
    this.kinds[i] = (this.kinds[i]! & AMBIGUOUS) | actionCode(action);
  }

  /** the fields a later line sets, created on first use */
  laterFields(i: number): LaterFields {
    let f = this.later.get(i);
    if (f === undefined) this.later.set(i, (f = {}));
    return f;
  }

  at(i: number): RuleTestMatch {
    const kind = this.kinds[i]!;
    const base = { line: this.lines[i]!, rule: this.ruleNames[this.rules[i]!]!, host: this.host(i), action: ACTION_NAMES[kind & ~AMBIGUOUS]! };
    return Object.assign(kind & AMBIGUOUS ? { ...base, ambiguous: true as const } : base, this.later.get(i));
  }

  /** the matches as a JSON array's elements, comma-separated, in pieces handed to `write` (valid until it returns) */
  writeJson(write: (bytes: Uint8Array) => void): void {
    const out = new JsonBytes(write);
    const actions = ACTION_NAMES.map((a) => Buffer.from(`,"action":"${a}"`));
    for (let i = 0; i < this.length; i++) {
      out.ascii(i === 0 ? '{"line":' : ',{"line":');
      out.integer(this.lines[i]!);
      out.ascii(',"rule":');
      out.bytes(this.ruleJson[this.rules[i]!]!);
      out.ascii(',"host":');
      const h = this.hostOf[i]!;
      if (h === NO_HOST) out.ascii("null");
      else out.bytes(this.hosts.json[h]!);
      const kind = this.kinds[i]!;
      out.bytes(actions[kind & ~AMBIGUOUS]!);
      if (kind & AMBIGUOUS) out.ascii(',"ambiguous":true');
      const later = this.later.get(i);
      if (later !== undefined) {
        const fields = JSON.stringify(later);
        if (fields !== "{}") out.ascii(`,${fields.slice(1, -1)}`);
      }
      out.ascii("}");
    }
    out.flush();
  }

  private grow(): void {
    const n = this.lines.length * 2;
    this.lines = copiedInto(new Float64Array(n), this.lines);
    this.rules = copiedInto(new Uint32Array(n), this.rules);
    this.hostOf = copiedInto(new Int32Array(n), this.hostOf);
    this.kinds = copiedInto(new Uint8Array(n), this.kinds);
  }
}

/** `into`, a larger column, holding `from` at its start */
function copiedInto<T extends { set(from: T): void }>(into: T, from: T): T {
  into.set(from);
  return into;
}

/** JSON text into one reused buffer, handed to `write` as it fills. */
class JsonBytes {
  private readonly buffer = Buffer.allocUnsafe(1 << 16);
  private used = 0;

  constructor(private readonly write: (bytes: Uint8Array) => void) {}

  /** `text`: ASCII only (keys, punctuation, numbers), shorter than the buffer */
  ascii(text: string): void {
    if (this.used + text.length > this.buffer.length) this.flush();
    this.used += this.buffer.write(text, this.used, "latin1");
  }

  bytes(b: Uint8Array): void {
    if (this.used + b.length > this.buffer.length) this.flush();
    if (b.length > this.buffer.length) this.write(b);
    else {
      this.buffer.set(b, this.used);
      this.used += b.length;
    }
  }

  /** a non-negative integer below 2^53 */
  integer(n: number): void {
    if (this.used + 16 > this.buffer.length) this.flush();
    let digits = 1;
    for (let p = 10; p <= n; p *= 10) digits++;
    for (let at = this.used + digits - 1; at >= this.used; at--, n = Math.floor(n / 10)) this.buffer[at] = 48 + (n % 10);
    this.used += digits;
  }

  flush(): void {
    if (this.used > 0) this.write(this.buffer.subarray(0, this.used));
    this.used = 0;
  }
}

/**
 * Where an attribution's affair shows: on its own line (the line in hand, or a held line whose
 * session ended without a verdict), or on the line in hand that brought an earlier line's
 * address or verdict: that line then counts it, and the earlier one points there. True when it
 * is the line in hand's own attribution.
 */
function countOn(matches: MatchColumns, a: Attribution, own: number): boolean {
  const from = a.tag;
  if (a.tag === own || a.at !== own) {
    matches.setHost(from, a.host);
    /* a held line whose session ended without a verdict counts on itself */
    if (a.tag !== own) matches.setAction(from, a.rule.action);
    return a.tag === own;
  }
  matches.setHost(from, null);
  matches.setAction(from, "held");
  matches.laterFields(from).countedOn = matches.line(own);
  matches.setHost(own, a.host);
  if (!counting(matches.action(own))) matches.setAction(own, "count");
  (matches.laterFields(own).counts ??= []).push(matches.line(from));
  return false;
}

/**
 * The engine over the blocks of whole lines `feed` hands to `add` (it returns whether the log was
 * a journal export); only the engine's own time is its speed, not reading and decoding.
 */
function runRules(rules: RuleSet, o: RuleTestOptions, feed: (skipped: SkipCounts, add: (block: string) => void) => boolean): RuleTestResult {
  /* by rule index */
  const hitCounts = new Float64Array(rules.rules.length);
  const matches = new MatchColumns(rules.rules);
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
      for (const tag of withdraw(false).tags) matches.laterFields(tag).withdrawn = true;
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
        hitCounts[m.rule.index]!++;
        const host = m.host;
        const own = matches.length;
        matches.push(line, m.rule, host, m.ambiguous);
        /* a counting line with its address and no attribution of its own waits for its connection's verdict */
        let attributedNow = false;
        for (const a of attributions) attributedNow = countOn(matches, a, own) || attributedNow;
        if (host !== null && !attributedNow && counting(m.rule.action)) {
          matches.setAction(own, "held");
          matches.setHost(own, null);
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
  /* the log is over: lines of counting rules still without an address never get one */
  let unattributed = 0;
  for (let i = 0; i < matches.length; i++) if (matches.host(i) === null && counting(matches.action(i))) unattributed++;
  const hits: Record<string, number> = {};
  for (const r of rules.rules) hits[r.name] = hitCounts[r.index]!;
  let objects: RuleTestMatch[] | null = null;
  const result: RuleTestResult = {
    lines,
    matched: matches.length,
    seconds,
    rules: hits,
    /* made when asked for: `rules test --json` writes them from the columns */
    get matches() {
      objects ??= Array.from({ length: matches.length }, (_, i) => matches.at(i));
      return objects;
    },
    unparsed: recogniser.stats.unparsed,
    skipped,
    unattributed,
    formats: format.seen(journalExport),
    ...(o.missed ? { missed } : {}),
    ...(o.unparsed ? { unparsedLines } : {}),
  };
  columnsOf.set(result, matches);
  return result;
}

const columnsOf = new WeakMap<RuleTestResult, MatchColumns>();

/**
 * A result's matches as the elements of a JSON array (JSON.stringify's text of `matches`
 * without its brackets), in pieces handed to `write`, each valid until it returns.
 */
export function writeMatchesJson(r: RuleTestResult, write: (bytes: Uint8Array) => void): void {
  const columns = columnsOf.get(r);
  if (columns === undefined) throw new Error("writeMatchesJson: not a result of testRules");
  columns.writeJson(write);
}
