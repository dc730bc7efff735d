/**
 * Runs every annotated fixture under test/fixtures/<MODULE>/ through `rules test` in both
 * modes and checks each line against the expectation written above it (format: see the
 * head of test/fixtures/LG/sshd.log; `#! program NAME` marks a file of header-less lines, a
 * web server's own log). Every rule a module ships must have a sample.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MODULE_NAMES, type ModuleName } from "../../src/core/config";
import type { Mode } from "../../src/core/rules";
import { loadRules } from "../../src/modules/registry";
import { testRules } from "../../src/modules/ruletest";

const FIXTURES = join(import.meta.dir, "..", "fixtures");
const RULES = join(import.meta.dir, "..", "..", "rules");

interface Expectation {
  line: number;
  text: string;
  rule: string | null;
  host: string | null;
  aggressiveOnly: boolean;
}

/** `#! program NAME` at the head: the lines have no syslog header and are NAME's */
function rawProgramOf(file: string): string | null {
  return /^#! program (\S+)/m.exec(readFileSync(file, "utf8"))?.[1] ?? null;
}

function readExpectations(file: string): Expectation[] {
  const lines = readFileSync(file, "utf8").split("\n");
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
    const aggressiveOnly = what!.startsWith("aggressive:");
    if (host === undefined) throw new Error(`${file}:${i}: expectation needs RULE HOST`);
    out.push({ line: i + 1, text, rule: aggressiveOnly ? what!.slice(11) : what!, host: host === "-" ? null : host, aggressiveOnly });
  });
  return out;
}

for (const module of readdirSync(FIXTURES).filter((d) => (MODULE_NAMES as readonly string[]).includes(d))) {
  const dir = join(FIXTURES, module);
  const files = readdirSync(dir).filter((f) => f.endsWith(".log"));
  describe(`rules of ${module}`, () => {
    const covered = new Set<string>();
    for (const file of files) {
      const path = join(dir, file);
      const expectations = readExpectations(path);
      for (const mode of ["normal", "aggressive"] as Mode[]) {
        test(`${file} in ${mode} mode: every line as annotated`, () => {
          const rules = loadRules(module as ModuleName, RULES, mode);
          const result = testRules(rules, readFileSync(path, "utf8"), rawProgramOf(path));
          const byLine = new Map(result.matches.map((m) => [m.line, m]));
          const wrong: string[] = [];
          for (const e of expectations) {
            const active = e.rule !== null && (mode === "aggressive" || !e.aggressiveOnly);
            const got = byLine.get(e.line);
            const want = active ? `${e.rule} ${e.host ?? "-"}` : "no match";
            const have = got ? `${got.rule} ${got.host ?? "-"}` : "no match";
            if (want !== have) wrong.push(`${file}:${e.line}: want ${want}, got ${have}\n    ${e.text}`);
            if (active) covered.add(e.rule!);
          }
          expect(wrong).toEqual([]);
        });
      }
    }
    test("every shipped rule has at least one sample", () => {
      const rules = loadRules(module as ModuleName, RULES, "aggressive");
      expect(rules.rules.map((r) => r.name).filter((name) => !covered.has(name))).toEqual([]);
    });
  });
}
