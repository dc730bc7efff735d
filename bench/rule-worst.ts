/**
 * Each shipped rule's worst case: the time one rule takes (prefilter, then its templates until
 * an address parses) on the hostile message that costs it most, at 64 KiB and at 8 KiB.
 *
 *   node_modules/.bin/bun bench/rule-worst.ts                 # every rule of LG, MX, MB, WB
 *   node_modules/.bin/bun bench/rule-worst.ts --module MB     # one module
 *   node_modules/.bin/bun bench/rule-worst.ts --top 10        # only the 10 costliest rules
 *
 * The messages come from test/rules/hostile-lines.ts, as in test/safety/rule-cost.test.ts (which
 * checks the growth, not the time): every family is screened at 8 KiB, the costliest and the
 * fastest-growing are timed at both lengths (each message alone, the least of 15 runs). Prints a
 * markdown table on stdout, costliest first; exits 1 if a rule takes over 1 ms on a 64 KiB
 * message (the bound issue 15 sets), 2 on bad arguments.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RuleSet } from "../src/core/rules";
import { type Cost, describeFamily, measure, worstFamilies } from "../test/rules/hostile-lines";

const MODULES = ["LG", "MX", "MB", "WB"];
const SHORT = 8 * 1024;
const LONG = 64 * 1024;
const BOUND_MS = 1;

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: bun bench/rule-worst.ts [--module LG|MX|MB|WB] [--top N]\n`);
  process.exit(2);
}

let args: { module?: string; top?: string };
try {
  args = parseArgs({ options: { module: { type: "string" }, top: { type: "string" } } }).values;
} catch (e) {
  usage((e as Error).message);
}
const modules = args.module === undefined ? MODULES : [args.module];
if (modules.some((m) => !MODULES.includes(m))) usage(`unknown module ${args.module}`);
const top = args.top === undefined ? Infinity : Number(args.top);
if (top !== Infinity && (!Number.isInteger(top) || top < 1)) usage(`--top wants a positive whole number, not ${args.top}`);

const rulesDir = join(import.meta.dir, "..", "rules");
const rows: { module: string; file: string; rule: string; worst: Cost }[] = [];
for (const module of modules) {
  const dir = join(rulesDir, module);
  const sources = readdirSync(dir)
    .filter((f) => f.endsWith(".rule"))
    .sort()
    .map((f) => ({ file: f, text: readFileSync(join(dir, f), "utf8") }));
  for (const rule of new RuleSet(sources, "aggressive").rules) {
    process.stderr.write(`${module} ${rule.name}\n`);
    let worst: Cost | null = null;
    /* a blow-up is measured three times at 64 KiB, not fifteen: it can take seconds a message */
    for (const family of worstFamilies(rule, SHORT)) {
      const cost = measure(rule, family, SHORT, LONG, 15, 64);
      if (!worst || cost.long > worst.long) worst = cost;
    }
    rows.push({ module, file: rule.file, rule: rule.name, worst: worst! });
  }
}

rows.sort((a, b) => b.worst.long - a.worst.long);
const ms = (ns: number) => (ns / 1e6).toFixed(3);
const out = [
  `# Worst case of each rule on a hostile message (${new Date().toISOString().slice(0, 10)}, bun ${Bun.version})`,
  "",
  "| module | rule | ms at 8 KiB | ms at 64 KiB | growth | message (head + unit repeated + tail) |",
  "|---|---|---:|---:|---:|---|",
  ...rows
    .slice(0, top)
    .map((r) => `| ${r.module} | ${r.file}: ${r.rule} | ${ms(r.worst.short)} | ${ms(r.worst.long)} | ${(r.worst.long / r.worst.short).toFixed(1)}x | \`${describeFamily(r.worst.family).replaceAll("|", "\\|")}\` |`),
  "",
];
const over = rows.filter((r) => r.worst.long / 1e6 > BOUND_MS);
out.push(
  over.length === 0
    ? `All ${rows.length} rules take under ${BOUND_MS} ms on a 64 KiB message; the costliest ${ms(rows[0]?.worst.long ?? 0)} ms.`
    : `${over.length} of ${rows.length} rules take over ${BOUND_MS} ms on a 64 KiB message: ${over.map((r) => r.rule).join(", ")}.`,
);
process.stdout.write(`${out.join("\n")}\n`);
process.exit(over.length === 0 ? 0 : 1);
