/** What every command shares: the global options and small printing helpers. */
import type { Argv } from "yargs";
import { BUILTIN_MODULES, type ModuleName } from "../src/core/config";
import { writeLogLine } from "../src/core/log-file";
import { iso } from "../src/core/duration";
import type { RestoreProgress } from "../src/master/restore";

export interface GlobalArgs {
  root?: string;
  /** the width tables are laid out in (outputWidth) */
  width?: number;
}

export const MODULES_HELP = `${BUILTIN_MODULES.join(", ")}, or a module of your own`;

/** The module positional; whether the module exists is checked when the configuration is loaded (moduleConfig). */
export function moduleArg<T>(y: Argv<T>) {
  return y.positional("module", { type: "string", describe: `module: ${MODULES_HELP}`, demandOption: true, coerce: (m: string): ModuleName => m.toUpperCase() });
}

/** `--module`, as moduleArg. */
export function moduleOption(describe: string) {
  return { type: "string", describe: `${describe}: ${MODULES_HELP}`, coerce: (m: string): ModuleName => m.toUpperCase() } as const;
}

/** The width tables are laid out in: --width, else the terminal's; none on a pipe (a script reads whole lines). */
export function outputWidth(argv: GlobalArgs): number {
  return argv.width ?? (process.stdout.isTTY ? process.stdout.columns || 80 : Infinity);
}

/**
 * A plain table (no colours: it reads the same in a terminal, a pipe and a mail) that fits in
 * `width` columns: when its natural width is more, columns are narrowed (fittedWidths) and
 * their cells wrapped, never cut: an address or a reason is read whole.
 */
export class FittedTable {
  private readonly rows: (string | number)[][] = [];

  constructor(
    private readonly head: string[],
    private readonly width: number,
  ) {}

  push(...rows: (string | number)[][]): void {
    this.rows.push(...rows);
  }

  toString(): string {
    /* loaded here, not at start: most runs print no table, and loading cli-table3 (and node:util's
       inspect with it) cost a tenth of the start-up of every command */
    const Table: typeof import("cli-table3") = require("cli-table3");
    const { fittedWidths }: typeof import("../src/report/render") = require("../src/report/render");
    const colWidths = fittedWidths(this.head, this.rows, this.width);
    const t = new Table({ head: this.head, style: { head: [], border: [] }, colWidths, wordWrap: colWidths.length > 0, wrapOnWordBoundary: false });
    t.push(...this.rows);
    return t.toString();
  }
}

export function table(head: string[], width: number): FittedTable {
  return new FittedTable(head, width);
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

/** A long job's progress: one line on stderr, rewritten in place. */
export interface Progress {
  /** `done` of the job's total (bytes, lists ...), and what is going on */
  update(done: number, note?: string): void;
  /** the line cleared: what the job prints next starts on a clean line */
  end(): void;
}

const PROGRESS_EVERY_MS = 200;

/**
 * Progress for a terminal only: silent when stderr is not one (a pipe, a file, cron, systemd)
 * or when `quiet`. `total` (null: unknown) and `unit` say how `done` reads: bytes as MB.
 */
export function progress(label: string, total: number | null, o: { unit: "bytes" | string; quiet?: boolean }): Progress {
  if (o.quiet || !process.stderr.isTTY) return { update() {}, end() {} };
  let shown = 0;
  let drawn = false;
  const amount = (n: number) => (o.unit === "bytes" ? `${(n / 1e6).toFixed(1)} MB` : `${n} ${o.unit}`);
  return {
    update(done, note) {
      const now = Date.now();
      if (now - shown < PROGRESS_EVERY_MS && !(total !== null && done >= total)) return;
      shown = now;
      drawn = true;
      const share = total ? ` (${Math.floor((done / total) * 100)} %)` : "";
      const line = `${label}: ${amount(done)}${total !== null ? ` of ${amount(total)}` : ""}${share}${note ? `, ${note}` : ""}`;
      /* one row of the terminal: a longer line would wrap, and \r goes back to its last row only */
      process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns || 80) - 1)}`);
    },
    end() {
      if (drawn) process.stderr.write("\r\x1b[K");
    },
  };
}

/** `start` and `restart` on a terminal: how far the master's firewall restore is (progress). */
export function restoreProgress(): { onRestore: (p: RestoreProgress) => void; end: () => void } {
  let shown: Progress | null = null;
  return {
    onRestore(p) {
      shown ??= progress("restoring the firewall", p.ofEntries, { unit: "entries" });
      shown.update(p.entries, `set ${p.sets + 1} of ${p.of}: ${p.set}`);
    },
    end: () => shown?.end(),
  };
}
