/**
 * No line may make a rule slow (issue 15, item 10). For every rule of every shipped module
 * (rules/LG, MX, MB, WB, FT, VP, NS, DB, AD, aggressive mode so that every rule is there), the hostile messages
 * most likely to hurt it (test/rules/hostile-lines.ts: its own text repeated, partial matches,
 * delimiters) are run at 8 KiB and at 64 KiB: the cost may grow with the message by the ratio
 * of the lengths (8) and at most twice that. Ratios, never absolute times, so that a busy
 * machine cannot fail it: both lengths are timed in alternation, the least of several rounds
 * counts (each message timed alone, well under a time slice), and a ratio over the limit is
 * measured again, twice, before it fails. A regex that
 * backtracks over a long message grows 64 times (quadratically) or more.
 * bench/rule-worst.ts reports the same worst cases in milliseconds.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BUILTIN_MODULES } from "../../src/core/config";
import { RuleSet } from "../../src/core/rules";
import { timeoutForHangsOnly } from "../helpers/wait";
import { type Cost, describeFamily, measure, worstFamilies } from "../rules/hostile-lines";

timeoutForHangsOnly();

const RULES = join(import.meta.dir, "..", "..", "rules");
const SHORT = 8 * 1024;
const LONG = 64 * 1024;
/** linear growth is LONG / SHORT = 8; twice that leaves room for caches and noise, a quadratic blow-up is 64 */
const LIMIT = (2 * LONG) / SHORT;

function ratio(c: Cost): number {
  return c.long / c.short;
}

for (const module of BUILTIN_MODULES) {
  const dir = join(RULES, module);
  const sources = readdirSync(dir)
    .filter((f) => f.endsWith(".rule"))
    .sort()
    .map((f) => ({ file: `rules/${module}/${f}`, text: readFileSync(join(dir, f), "utf8") }));
  const rules = new RuleSet(sources, "aggressive");
  describe(`${module}: every rule's cost grows linearly with the message`, () => {
    test("the module ships rules", () => {
      expect(rules.rules.length).toBeGreaterThan(0);
    });
    for (const rule of rules.rules) {
      test(`${rule.file} ${rule.name}`, () => {
        const superlinear: string[] = [];
        for (const family of worstFamilies(rule, SHORT)) {
          let cost = measure(rule, family, SHORT, LONG, 15, 4 * LIMIT);
          /* a ratio over the limit is measured again, longer: a busy machine can fake one, even a blow-up's (a real one repeats) */
          for (let again = 0; again < 2 && ratio(cost) > LIMIT; again++) cost = measure(rule, family, SHORT, LONG, 41, 4 * LIMIT);
          if (ratio(cost) > LIMIT) {
            superlinear.push(
              `${describeFamily(family)}: ${(cost.short / 1e3).toFixed(1)} µs at 8 KiB, ${(cost.long / 1e3).toFixed(1)} µs at 64 KiB (${ratio(cost).toFixed(1)}x)`,
            );
          }
        }
        expect(superlinear).toEqual([]);
      });
    }
  });
}
