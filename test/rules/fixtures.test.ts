/**
 * Runs every annotated fixture under test/fixtures/<MODULE>/ through `rules test` in both
 * modes and checks each line against the expectation written above it (format: see the
 * head of test/fixtures/LG/sshd.log; `#! program NAME` marks a file of header-less lines, a
 * web server's own log). Every rule a module ships must have a sample.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BUILTIN_MODULES, type ModuleName } from "../../src/core/config";
import type { Mode } from "../../src/core/rules";
import { loadRules } from "../../src/modules/registry";
import { testRules } from "../../src/modules/ruletest";
import { affairHost, rawProgramOf, readExpectations } from "../helpers/annotated";

const FIXTURES = join(import.meta.dir, "..", "fixtures");
const RULES = join(import.meta.dir, "..", "..", "rules");

for (const module of readdirSync(FIXTURES).filter((d) => (BUILTIN_MODULES as readonly string[]).includes(d))) {
  const dir = join(FIXTURES, module);
  const files = readdirSync(dir).filter((f) => f.endsWith(".log"));
  describe(`rules of ${module}`, () => {
    const covered = new Set<string>();
    for (const file of files) {
      const path = join(dir, file);
      const content = readFileSync(path, "utf8");
      const expectations = readExpectations(path, content);
      for (const mode of ["normal", "aggressive"] as Mode[]) {
        test(`${file} in ${mode} mode: every line as annotated`, () => {
          const rules = loadRules(module as ModuleName, RULES, mode);
          const result = testRules(rules, content, { program: rawProgramOf(content) });
          const byLine = new Map(result.matches.map((m) => [m.line, m]));
          const wrong: string[] = [];
          for (const e of expectations) {
            const active = e.rule !== null && (mode === "aggressive" || !e.aggressiveOnly);
            const got = byLine.get(e.line);
            const want = active ? `${e.rule} ${e.host ?? "-"}` : "no match";
            const have = got ? `${got.rule} ${affairHost(got, byLine) ?? "-"}` : "no match";
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
