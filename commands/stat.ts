import type { CommandModule } from "yargs";
import { loadConfig, type ModuleName, requireRoot } from "../src/core/config";
import { ConfigError } from "../src/core/errors";
import { csvChunks, parseDate, type Period, statRows } from "../src/report/stat";
import { type GlobalArgs, moduleOption } from "./common";

interface Args extends GlobalArgs {
  by: Period;
  from?: string;
  to?: string;
  module?: ModuleName;
  out?: string;
}

export const statCommand: CommandModule<GlobalArgs, Args> = {
  command: "stat",
  describe: "CSV statistics per day (or hour), module, rule, host class and vhost: events, affairs, addresses, bans",
  builder: (y) =>
    y
      .option("by", { choices: ["day", "hour"] as const, default: "day" as Period, describe: "period of a row (UTC)" })
      .option("from", { type: "string", describe: "first day or time, e.g. 2026-11-01 or 2026-11-01T06:00Z (UTC unless an offset is given)" })
      .option("to", { type: "string", describe: "last day (included) or end time (excluded)" })
      .option("module", moduleOption("this module only"))
      .option("out", { type: "string", describe: "write the CSV into this file instead of stdout" })
      .example("$0 stat --from 2026-11-01 --to 2026-11-30 --out november.csv", "one month, one row per day, module, rule, class and vhost"),
  handler: async (argv) => {
    const from = argv.from === undefined ? null : parseDate(argv.from, "--from");
    const to = argv.to === undefined ? null : parseDate(argv.to, "--to", true);
    if (from !== null && to !== null && to <= from) throw new ConfigError(`--to (${argv.to}) must come after --from (${argv.from})`);
    const loaded = loadConfig(argv.root);
    requireRoot(loaded.paths.root);
    const rows = statRows(loaded, { by: argv.by, from, to, modules: argv.module ? [argv.module] : undefined });
    /* written as it is read, flushed chunk by chunk: a long period by hour is large */
    const sink = argv.out ? Bun.file(argv.out).writer() : Bun.stdout.writer();
    for (const chunk of csvChunks(rows)) {
      sink.write(chunk);
      await sink.flush();
    }
    if (argv.out) await sink.end();
  },
};
