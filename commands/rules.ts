import { closeSync, openSync, readSync } from "node:fs";
import type { CommandModule } from "yargs";
import { loadConfig, type ModuleName, moduleConfig } from "../src/core/config";
import { WatcherError } from "../src/core/errors";
import { writeWhole } from "../src/core/write-whole";
import type { Mode } from "../src/core/rules";
import { loadRules } from "../src/modules/registry";
import { type RuleTestLine, type RuleTestResult, testRules, testRulesInPieces, writeMatchesJson } from "../src/modules/ruletest";
import { type GlobalArgs, moduleArg, table, outputWidth } from "./common";

interface TestArgs extends GlobalArgs {
  module: ModuleName;
  file: string;
  json?: boolean;
  mode?: Mode;
  program?: string;
  missed?: boolean;
  unparsed?: boolean;
}

/** `  12: text`, with the rule that matched without counting when there is one */
function printLines(title: string, lines: readonly RuleTestLine[]): void {
  console.log(`${title}: ${lines.length}`);
  for (const l of lines) console.log(`${String(l.line).padStart(7)}: ${l.rule ? `[${l.rule}] ` : ""}${l.text}`);
}

/** Bytes to stdout, whole (a pipe another process made non-blocking takes them as it drains). */
const writeStdout = (bytes: Uint8Array): void => writeWhole(1, bytes);

/**
 * One compact JSON document, the same text as JSON.stringify of the whole, keys in the same
 * order. A day of a busy server's log is hundreds of thousands of matches: they are written
 * from the result's columns, a buffer at a time, never made objects or one string.
 */
function printJson(r: RuleTestResult): void {
  const { lines, matched, seconds, rules: hits, unparsed, skipped, formats, missed, unparsedLines } = r;
  const head = JSON.stringify({ lines, matched, seconds, formats, rules: hits });
  const tail = JSON.stringify({ unparsed, skipped, missed, unparsedLines });
  writeStdout(Buffer.from(`${head.slice(0, -1)},"matches":[`));
  writeMatchesJson(r, writeStdout);
  writeStdout(Buffer.from(`],${tail.slice(1)}\n`));
}

const testCommand: CommandModule<GlobalArgs, TestArgs> = {
  command: "test <module> <file>",
  describe: "run a log file (or - for stdin) through a module's rules: its formats, hits per rule, hosts, lines/s",
  builder: (y) =>
    moduleArg(y)
      .positional("file", { type: "string", demandOption: true, describe: "log file, - for stdin" })
      .option("json", { type: "boolean", describe: "print one JSON document" })
      .option("mode", { choices: ["normal", "aggressive"] as const, describe: "rule mode (default: the module's configured mode)" })
      .option("program", { type: "string", describe: "take every line, whole, as this program's (nginx-access, apache-error, sshd, ...) instead of finding the format" })
      .option("missed", { type: "boolean", describe: "print the lines of the module's programs that no rule counted" })
      .option("unparsed", { type: "boolean", describe: "print the lines in no format watcher knows" })
      .example("$0 rules test WB /var/log/nginx/error.log", "a web server's own log: its format is found from its lines")
      .example("$0 rules test LG /var/log/auth.log --missed", "what the rules did not count"),
  handler: async (argv) => {
    const { config, paths } = loadConfig(argv.root);
    const rules = loadRules(argv.module, paths.rulesDir, argv.mode ?? moduleConfig(config, argv.module).mode);
    /* yargs hands a lone "-" over as "" */
    const stdin = argv.file === "-" || argv.file === "";
    const read = <T>(how: () => T): T => {
      try {
        return how();
      } catch (e) {
        throw new WatcherError(`cannot read ${argv.file}: ${(e as Error).message}`);
      }
    };
    const options = { program: argv.program ?? null, missed: argv.missed, unparsed: argv.unparsed };
    let r: RuleTestResult;
    if (stdin) r = testRules(rules, new Uint8Array(await Bun.stdin.arrayBuffer()), options);
    else {
      /* a file in pieces of whole lines (the fast way, see testRulesInPieces) */
      const fd = read(() => openSync(argv.file, "r"));
      try {
        r = testRulesInPieces(rules, (buffer, at, length) => read(() => readSync(fd, buffer, at, length, null)), options);
      } finally {
        closeSync(fd);
      }
    }
    if (argv.json) {
      printJson(r);
      return;
    }
    const byFormat = table(["format", "lines"], outputWidth(argv));
    for (const [name, n] of Object.entries(r.formats)) byFormat.push([name, n]);
    console.log(byFormat.toString());
    const byRule = table(["rule", "action", "mode", "hits"], outputWidth(argv));
    for (const rule of rules.rules) byRule.push([rule.name, rule.action, rule.mode, r.rules[rule.name] ?? 0]);
    console.log(byRule.toString());
    const hosts = new Map<string, number>();
    for (const m of r.matches) if (m.host && (m.action === "count" || m.action === "ban")) hosts.set(m.host, (hosts.get(m.host) ?? 0) + 1);
    const top = [...hosts].sort((a, b) => b[1] - a[1]).slice(0, 20);
    if (top.length > 0) {
      const byHost = table(["host", "counted lines"], outputWidth(argv));
      for (const [host, n] of top) byHost.push([host, n]);
      console.log(byHost.toString());
    }
    if (r.missed) printLines(`lines of ${rules.programs.join(", ")} no rule counted`, r.missed);
    if (r.unparsedLines) printLines("lines in no format watcher knows", r.unparsedLines);
    const rate = r.seconds > 0 ? Math.round(r.lines / r.seconds) : r.lines;
    console.log(
      `${r.lines} lines, ${r.matched} matched, ${hosts.size} hosts, ${r.unparsed} in no format watcher knows, ` +
        `${r.skipped.tooLong + r.skipped.invalid} skipped; ${r.seconds.toFixed(3)} s, ${rate} lines/s`,
    );
  },
};

export const rulesCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "rules",
  describe: "work with rule files",
  builder: (y) => y.command(testCommand).demandCommand(1, "name a rules subcommand: test"),
  handler: () => {},
};
