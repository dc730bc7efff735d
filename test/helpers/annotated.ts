import type { RuleTestMatch } from "../../src/modules/ruletest";

/**
 * Annotated log fixtures (test/fixtures/<module>/, test/fixtures/hostile/): every log line has
 * a note above it, `#> RULE HOST` (the rule that must match and the address it must take;
 * `aggressive:RULE` only in aggressive mode; HOST `-` for none) or `#> -` (no rule may match).
 * `#! program NAME` at the head: the lines have no syslog header and are NAME's.
 */
export interface Expectation {
  line: number;
  text: string;
  rule: string | null;
  host: string | null;
  aggressiveOnly: boolean;
}

/** `file` names the fixture in errors. */
export function readExpectations(file: string, content: string): Expectation[] {
  const lines = content.split("\n");
  const out: Expectation[] = [];
  lines.forEach((text, i) => {
    if (text === "" || text.startsWith("#")) return;
    const note = lines[i - 1] ?? "";
    if (!note.startsWith("#> ")) throw new Error(`${file}:${i + 1}: log line without an expectation above it`);
    const [what, host] = note.slice(3).trim().split(/\s+/);
    if (what === "-") {
      out.push({ line: i + 1, text, rule: null, host: null, aggressiveOnly: false });
      return;
    }
    if (host === undefined) throw new Error(`${file}:${i}: expectation needs RULE HOST`);
    const aggressiveOnly = what!.startsWith("aggressive:");
    out.push({ line: i + 1, text, rule: aggressiveOnly ? what!.slice(11) : what!, host: host === "-" ? null : host, aggressiveOnly });
  });
  return out;
}

/** The `#! program NAME` of a fixture, or null when its lines carry syslog headers. */
export function rawProgramOf(content: string): string | null {
  return /^#! program (\S+)/m.exec(content)?.[1] ?? null;
}

/**
 * The address a `rules test` match's affair goes to: the line's own host, or, for a line whose
 * affair waited for a later line (`countedOn`), that line's. Fixtures say whom a line's affair
 * goes to, wherever it is counted.
 */
export function affairHost(m: RuleTestMatch, byLine: ReadonlyMap<number, RuleTestMatch>): string | null {
  return m.host ?? (m.countedOn === undefined ? null : (byLine.get(m.countedOn)?.host ?? null));
}
