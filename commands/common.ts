/** What every command shares: the global options and small printing helpers. */
import Table from "cli-table3";
import type { Argv } from "yargs";
import type { ModuleName } from "../src/core/config";
import { writeLogLine } from "../src/core/log-file";
import { iso } from "../src/report/report";

export interface GlobalArgs {
  root?: string;
}

const MODULES_HELP = "LG (logins), MX (mail transport), MB (mailboxes), WB (web), or a module of your own";

/** The module positional; whether the module exists is checked when the configuration is loaded (moduleConfig). */
export function moduleArg<T>(y: Argv<T>) {
  return y.positional("module", { type: "string", describe: `module: ${MODULES_HELP}`, demandOption: true, coerce: (m: string): ModuleName => m.toUpperCase() });
}

/** `--module`, as moduleArg. */
export function moduleOption(describe: string) {
  return { type: "string", describe: `${describe}: ${MODULES_HELP}`, coerce: (m: string): ModuleName => m.toUpperCase() } as const;
}

/** A plain table: no colours, so it reads the same in a terminal, a pipe and a mail. */
export function table(head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [] } });
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A time as every command prints it, in text and in JSON: ISO 8601 in UTC to the second, "2026-12-06T08:00:00Z". */
export function isoTime(epochSeconds: number): string {
  return iso(Math.floor(epochSeconds));
}

/** A time field of JSON output (isoTime); null for none (0: never happened). */
export function jsonTime(epochSeconds: number | null | undefined): string | null {
  return epochSeconds ? isoTime(epochSeconds) : null;
}

/** A logger for long-running processes: one timestamped line on stderr (or watcher.log: core/log-file.ts) per message. */
export function stderrLog(prefix: string): (message: string) => void {
  return (message) => writeLogLine(`${new Date().toISOString()} ${prefix}: ${message}\n`);
}
