#!/usr/bin/env bun
/**
 * watcher: one executable, many subcommands. Command modules are registered explicitly: a
 * compiled binary has no folder of command files to scan. Only the command named is loaded (each
 * pulls in its own libraries: `rules test` and `inject` need no report tables, no firewall code):
 * loading all of them cost a few tenths of a second of every run. Exit codes: 0 ok, 1 runtime
 * failure, 2 bad usage, configuration or rule file.
 */
import "./core/zod-jitless";
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import type { CommandModule } from "yargs";
import pkg from "../package.json";
import { BUILTIN_MODULES, loadConfig, moduleNames } from "./core/config";
import { ConfigError, EXIT_RUNTIME, EXIT_USAGE, WatcherError } from "./core/errors";
import { writeLogLine } from "./core/log-file";

function fail(message: string, code: number): never {
  /* a module's or the master's last words go to watcher.log as it is now, not to the file logrotate moved away */
  writeLogLine(`watcher: ${message}\n`);
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

/** each command module has its own argument types */
type AnyCommand = CommandModule<any, any>;

/** Every command by its first word, in the order `--help` lists them; each loaded only when used. */
const COMMANDS: readonly (readonly [string, () => Promise<AnyCommand>])[] = [
  ["start", async () => (await import("../commands/start")).startCommand],
  ["stop", async () => (await import("../commands/stop")).stopCommand],
  ["status", async () => (await import("../commands/status")).statusCommand],
  ["restart", async () => (await import("../commands/restart")).restartCommand],
  ["module", async () => (await import("../commands/module")).moduleCommand],
  ["inject", async () => (await import("../commands/inject")).injectCommand],
  ["rules", async () => (await import("../commands/rules")).rulesCommand],
  ["ban", async () => (await import("../commands/ban")).banCommand],
  ["unban", async () => (await import("../commands/ban")).unbanCommand],
  ["bans", async () => (await import("../commands/bans")).bansCommand],
  ["why", async () => (await import("../commands/why")).whyCommand],
  ["dynload", async () => (await import("../commands/dynload")).dynloadCommand],
  ["report", async () => (await import("../commands/report")).reportCommand],
  ["stat", async () => (await import("../commands/stat")).statCommand],
  ["metrics", async () => (await import("../commands/metrics")).metricsCommand],
  ["expire", async () => (await import("../commands/expire")).expireCommand],
  ["syslog-config", async () => (await import("../commands/syslog-config")).syslogConfigCommand],
  ["fleet", async () => (await import("../commands/fleet")).fleetCommand],
  ["check", async () => (await import("../commands/check")).checkCommand],
  ["doctor", async () => (await import("../commands/doctor")).doctorCommand],
  ["completion", async () => (await import("../commands/completion")).completionCommand],
];

/** The words typed that are no options nor options' values: the command and its subcommand or arguments. */
function commandWords(args: readonly string[]): string[] {
  return args.filter((a, i) => !a.startsWith("-") && args[i - 1] !== "--root" && args[i - 1] !== "--width");
}

/** The first of them: the command, if one was named. */
function commandWord(args: readonly string[]): string | undefined {
  return commandWords(args)[0];
}

/**
 * The commands this run needs: the one named, or all of them where yargs needs every one (no
 * command or an unknown word: help, "did you mean"; shell completion).
 */
async function commandsToLoad(args: readonly string[]): Promise<AnyCommand[]> {
  const word = commandWord(args);
  const named = COMMANDS.find(([name]) => name === word);
  if (named && !args.includes("--get-yargs-completions")) return [await named[1]()];
  return Promise.all(COMMANDS.map(([, load]) => load()));
}

/** yargs's "Did you mean status?" with the word that was typed: `unknown command "stauts"; did you mean status?` */
function mistyped(message: string): string {
  const suggestion = /^Did you mean (\S+)\?$/.exec(message)?.[1];
  /* the first word that names no command: `rules tset` mistyped its subcommand */
  const typed = commandWords(hideBin(process.argv)).find((w) => !COMMANDS.some(([name]) => name === w));
  if (suggestion && typed) return `unknown command ${JSON.stringify(typed)}; did you mean ${suggestion}?`;
  /* a first word no command resembles: yargs calls it an unknown argument */
  const first = commandWord(hideBin(process.argv));
  if (first && message === `Unknown argument: ${first}`) return `unknown command ${JSON.stringify(first)}`;
  return message;
}

const commands = await commandsToLoad(hideBin(process.argv));
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
  .command(commands)
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
    /* our errors are handled below, with their own exit code; yargs's own (YError: no value after --time) are bad usage */
    if (error && error.name !== "YError") throw error;
    process.stderr.write(`watcher: ${mistyped(message)}\nRun "watcher --help" for usage.\n`);
    process.exit(EXIT_USAGE);
  });

/*
 * yargs lays out the whole help text after a command starts, to show it should the command fail;
 * ours never does (the fail handler above prints one line): ~40 ms of CPU in every run. Its
 * internal methods are not in its types, so it is looked for and left alone when missing.
 */
const usage = (cli as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } }).getInternalMethods?.().getUsageInstance?.();
if (usage?.cacheHelpMessage) usage.cacheHelpMessage = () => {};

/* a reader that stops early (`watcher bans --json | head`) closes the pipe: the rest of the output has nowhere to go, and that is no error */
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

try {
  await cli.parseAsync();
} catch (e) {
  if (e instanceof WatcherError) fail(e.message, e.exitCode);
  /* an error no code of ours described: its message, never a stack trace unless asked for */
  const debug = process.env.WATCHER_DEBUG === "1" && e instanceof Error && e.stack;
  fail(debug || (e instanceof Error ? e.message : String(e)) + "\n(WATCHER_DEBUG=1 shows where it happened)", EXIT_RUNTIME);
}
