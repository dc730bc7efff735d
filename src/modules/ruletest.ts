/**
 * `watcher rules test`: run a log through a module's rules, like fail2ban-regex. Needs no
 * root and touches no database: hits per rule, extracted hosts, and the engine's speed.
 */
import { BoundedMap } from "../core/bounded-map";
import type { Action, RuleSet } from "../core/rules";
import { HeaderScan, scanSyslog } from "../core/syslog";
import { forEachLine, type SkipCounts } from "./lines";
import { sessionOf } from "./sessions";

export interface RuleTestMatch {
  /** 1-based line number in the input */
  readonly line: number;
  readonly rule: string;
  /** the line's own address, else its session's; null when neither is known */
  readonly host: string | null;
  readonly action: Action;
}

export interface RuleTestResult {
  readonly lines: number;
  readonly matched: number;
  readonly seconds: number;
  readonly rules: Record<string, number>;
  readonly matches: RuleTestMatch[];
  readonly unparsed: number;
  readonly skipped: SkipCounts;
}

const MAX_SESSIONS = 8192;

/** `rawProgram`: the lines carry no syslog header (a web server's own log file) and are this program's. */
export function testRules(rules: RuleSet, text: string, rawProgram: string | null = null): RuleTestResult {
  const started = performance.now();
  const hits: Record<string, number> = {};
  for (const r of rules.rules) hits[r.name] = 0;
  const matches: RuleTestMatch[] = [];
  /* program[pid] → address, so that lines without one can show their session's */
  const sessionHosts = new BoundedMap<string, string>(MAX_SESSIONS);
  const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
  const h = new HeaderScan();
  let unparsed = 0;
  const block = text.endsWith("\n") || text === "" ? text : `${text}\n`;
  const lines = forEachLine(block, skipped, (start, end, index) => {
    if (rawProgram) {
      const m = rules.matchRaw(rawProgram, block, start, end);
      if (!m) return;
      hits[m.rule.name] = (hits[m.rule.name] ?? 0) + 1;
      matches.push({ line: index + 1, rule: m.rule.name, host: m.host?.text ?? null, action: m.rule.action });
      return;
    }
    if (!scanSyslog(block, start, end, h)) {
      unparsed++;
      return;
    }
    const m = rules.match(block, h, end);
    if (!m) return;
    hits[m.rule.name] = (hits[m.rule.name] ?? 0) + 1;
    let host = m.host?.text ?? null;
    const session = sessionOf(block, h, m.session);
    if (session) {
      if (host) sessionHosts.set(session, host);
      else host = sessionHosts.get(session) ?? null;
    }
    matches.push({ line: index + 1, rule: m.rule.name, host, action: m.rule.action });
  });
  return {
    lines,
    matched: matches.length,
    seconds: (performance.now() - started) / 1000,
    rules: hits,
    matches,
    unparsed,
    skipped,
  };
}
