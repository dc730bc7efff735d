/**
 * `watcher rules test`: run a log through a module's rules, like fail2ban-regex. Needs no
 * root and touches no database: hits per rule, extracted hosts, and the engine's speed.
 */
import type { Action, RuleSet } from "../core/rules";
import { splitSyslog } from "../core/syslog";
import { cleanLine, mayHaveJunk, type SkipCounts } from "./lines";
import { SessionTable } from "./sessions";

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

export function testRules(rules: RuleSet, text: string): RuleTestResult {
  const started = performance.now();
  const hits: Record<string, number> = {};
  for (const r of rules.rules) hits[r.name] = 0;
  const matches: RuleTestMatch[] = [];
  const sessions = new SessionTable();
  /* line numbers must follow the input, so split here and let the splitter judge each line */
  const raw = text.split("\n");
  if (raw[raw.length - 1] === "") raw.pop();
  const skipped: SkipCounts = { tooLong: 0, invalid: 0 };
  const junk = mayHaveJunk(text);
  let unparsed = 0;
  for (let i = 0; i < raw.length; i++) {
    const line = cleanLine(raw[i]!, junk, skipped);
    if (line === null) continue;
    const sys = splitSyslog(line);
    if (!sys) {
      unparsed++;
      continue;
    }
    const m = rules.match(sys);
    if (!m) continue;
    hits[m.rule.name] = (hits[m.rule.name] ?? 0) + 1;
    const session = sys.pid ? `${sys.program}[${sys.pid}]` : "";
    let host = m.host;
    if (session) {
      sessions.attribute(session, m.host, m.rule, m.count, 0);
      host ??= sessions.hostOf(session);
    }
    matches.push({ line: i + 1, rule: m.rule.name, host: host?.text ?? null, action: m.rule.action });
  }
  return {
    lines: raw.length,
    matched: matches.length,
    seconds: (performance.now() - started) / 1000,
    rules: hits,
    matches,
    unparsed,
    skipped,
  };
}
