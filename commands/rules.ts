import { readFileSync } from "node:fs";
import type { CommandModule } from "yargs";
import { loadConfig, type ModuleName } from "../src/core/config";
import { WatcherError } from "../src/core/errors";
import type { Mode } from "../src/core/rules";
import { loadRules } from "../src/modules/registry";
import { testRules } from "../src/modules/ruletest";
import { type GlobalArgs, moduleArg, table } from "./common";

interface TestArgs extends GlobalArgs {
  module: ModuleName;
  file: string;
  json?: boolean;
  mode?: Mode;
  program?: string;
}

const testCommand: CommandModule<GlobalArgs, TestArgs> = {
  command: "test <module> <file>",
  describe: "run a log file (or - for stdin) through a module's rules: hits per rule, hosts, lines/s",
  builder: (y) =>
    moduleArg(y)
      .positional("file", { type: "string", demandOption: true, describe: "log file, - for stdin" })
      .option("json", { type: "boolean", describe: "print one JSON document" })
      .option("mode", { choices: ["normal", "aggressive"] as const, describe: "rule mode (default: the module's configured mode)" })
      .option("program", { type: "string", describe: "the lines have no syslog header and are this program's (nginx-access, apache-error, ...)" })
      .example("$0 rules test WB /var/log/nginx/access.log --program nginx-access", "a web server's own log file"),
  handler: async (argv) => {
    const { config, paths } = loadConfig(argv.root);
    const rules = loadRules(argv.module, paths.rulesDir, argv.mode ?? config.modules[argv.module].mode);
    let text: string;
    try {
      /* yargs hands a lone "-" over as "" */
      text = argv.file === "-" || argv.file === "" ? await Bun.stdin.text() : readFileSync(argv.file, "utf8");
    } catch (e) {
      throw new WatcherError(`cannot read ${argv.file}: ${(e as Error).message}`);
    }
    const r = testRules(rules, text, argv.program ?? null);
    if (argv.json) {
      /* compact: a day of a busy server's log is hundreds of thousands of matches */
      process.stdout.write(`${JSON.stringify({ lines: r.lines, matched: r.matched, seconds: r.seconds, rules: r.rules, matches: r.matches, unparsed: r.unparsed, skipped: r.skipped })}\n`);
      return;
    }
    const byRule = table(["rule", "action", "mode", "hits"]);
    for (const rule of rules.rules) byRule.push([rule.name, rule.action, rule.mode, r.rules[rule.name] ?? 0]);
    console.log(byRule.toString());
    const hosts = new Map<string, number>();
    for (const m of r.matches) if (m.host && (m.action === "count" || m.action === "ban")) hosts.set(m.host, (hosts.get(m.host) ?? 0) + 1);
    const top = [...hosts].sort((a, b) => b[1] - a[1]).slice(0, 20);
    if (top.length > 0) {
      const byHost = table(["host", "counted lines"]);
      for (const [host, n] of top) byHost.push([host, n]);
      console.log(byHost.toString());
    }
    const rate = r.seconds > 0 ? Math.round(r.lines / r.seconds) : r.lines;
    console.log(
      `${r.lines} lines, ${r.matched} matched, ${hosts.size} hosts, ${r.unparsed} without a syslog header, ` +
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
