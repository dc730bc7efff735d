#!/usr/bin/env bun
/**
 * watcher: one executable, many subcommands. Command modules are registered explicitly: a
 * compiled binary has no folder of command files to scan. Exit codes: 0 ok, 1 runtime
 * failure, 2 bad usage, configuration or rule file.
 */
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { banCommand, unbanCommand } from "../commands/ban";
import { bansCommand } from "../commands/bans";
import { checkCommand } from "../commands/check";
import { completionCommand } from "../commands/completion";
import { doctorCommand } from "../commands/doctor";
import { dynloadCommand } from "../commands/dynload";
import { expireCommand } from "../commands/expire";
import { fleetCommand } from "../commands/fleet";
import { injectCommand } from "../commands/inject";
import { metricsCommand } from "../commands/metrics";
import { moduleCommand } from "../commands/module";
import { reportCommand } from "../commands/report";
import { restartCommand } from "../commands/restart";
import { rulesCommand } from "../commands/rules";
import { startCommand } from "../commands/start";
import { statCommand } from "../commands/stat";
import { statusCommand } from "../commands/status";
import { stopCommand } from "../commands/stop";
import { syslogConfigCommand } from "../commands/syslog-config";
import { whyCommand } from "../commands/why";
import pkg from "../package.json";
import { BUILTIN_MODULES, loadConfig, moduleNames } from "./core/config";
import { ConfigError, EXIT_RUNTIME, EXIT_USAGE, WatcherError } from "./core/errors";

function fail(message: string, code: number): never {
  process.stderr.write(`watcher: ${message}\n`);
  process.exit(code);
}

/** Commands whose first word after them is a module (`rules test` has it second). */
const MODULE_FIRST = new Set(["module", "inject", "ban", "unban"]);

/** Module names to complete: the root's own modules with the built-in ones, where a module comes next. */
function moduleCompletions(current: string, argv: { _: (string | number)[]; root?: string }): string[] {
  /* the words typed, the script's name first and the word being completed last */
  const words = argv._.map(String).slice(1);
  const wanted = process.argv.at(-2) === "--module" || (MODULE_FIRST.has(words[0] ?? "") && words.length === 2) || (words[0] === "rules" && words[1] === "test" && words.length === 3);
  if (!wanted) return [];
  let names: string[] = [...BUILTIN_MODULES];
  try {
    names = moduleNames(loadConfig(argv.root).config);
  } catch {
    /* a root that does not load still completes the built-in modules */
  }
  return names.filter((m) => m.startsWith(current.toUpperCase()));
}

/** yargs's "Did you mean status?" with the word that was typed: `unknown command "stauts"; did you mean status?` */
function mistyped(message: string): string {
  const suggestion = /^Did you mean (\S+)\?$/.exec(message)?.[1];
  const args = hideBin(process.argv);
  const typed = args.find((a, i) => !a.startsWith("-") && args[i - 1] !== "--root" && args[i - 1] !== "--width");
  if (suggestion && typed) return `unknown command ${JSON.stringify(typed)}; did you mean ${suggestion}?`;
  /* a word no command resembles: yargs calls it an unknown argument */
  if (typed && message === `Unknown argument: ${typed}`) return `unknown command ${JSON.stringify(typed)}`;
  return message;
}

const cli = yargs(hideBin(process.argv))
  .scriptName("watcher")
  .usage("$0 <command> [options]\n\nReal-time intrusion detection and prevention: log lines in, firewall bans out.")
  .option("root", { type: "string", global: true, describe: "install root (default: WATCHER_ROOT, else the folder above the executable's)" })
  .option("width", {
    type: "number",
    global: true,
    describe: "the width tables are laid out in (default: the terminal's; on a pipe, as wide as they are)",
  })
  .middleware((argv) => {
    if (argv.width !== undefined && !(Number.isInteger(argv.width) && argv.width >= 20)) throw new ConfigError(`--width: expected a number of columns, 20 or more, got ${argv.width}`);
  })
  .command(startCommand)
  .command(stopCommand)
  .command(statusCommand)
  .command(restartCommand)
  .command(moduleCommand)
  .command(injectCommand)
  .command(rulesCommand)
  .command(banCommand)
  .command(unbanCommand)
  .command(bansCommand)
  .command(whyCommand)
  .command(dynloadCommand)
  .command(reportCommand)
  .command(statCommand)
  .command(metricsCommand)
  .command(expireCommand)
  .command(syslogConfigCommand)
  .command(fleetCommand)
  .command(checkCommand)
  .command(doctorCommand)
  .command(completionCommand)
  .demandCommand(1, "name a command")
  .strict()
  .recommendCommands()
  /* yargs answers --get-yargs-completions, which the scripts of commands/completion.ts ask; its own script command stays hidden */
  .completion("completion-script", false, (current: string, argv: { _: (string | number)[]; root?: string }, completionFilter: (then: (error: Error | null, completions: string[] | undefined) => void) => void, done: (completions: string[]) => void) => {
    completionFilter((_error, defaults) => done([...(defaults ?? []), ...moduleCompletions(current, argv)]));
  })
  .version(pkg.version)
  .help()
  .alias("h", "help")
  .wrap(Math.min(110, process.stdout.columns || 100))
  .fail((message, error) => {
    if (error) throw error; /* handled below, with its own exit code */
    process.stderr.write(`watcher: ${mistyped(message)}\nRun "watcher --help" for usage.\n`);
    process.exit(EXIT_USAGE);
  });

try {
  await cli.parseAsync();
} catch (e) {
  if (e instanceof WatcherError) fail(e.message, e.exitCode);
  /* an error no code of ours described: its message, never a stack trace unless asked for */
  const debug = process.env.WATCHER_DEBUG === "1" && e instanceof Error && e.stack;
  fail(debug || (e instanceof Error ? e.message : String(e)) + "\n(WATCHER_DEBUG=1 shows where it happened)", EXIT_RUNTIME);
}
