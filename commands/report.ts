import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CommandModule } from "yargs";
import { type ModuleName, requireRoot } from "../src/core/config";
import { nowSeconds, parseDuration } from "../src/core/duration";
import { ConfigError } from "../src/core/errors";
import { renderReport } from "../src/report/render";
import { gatherReport, isQuiet, knownVhosts, type Report } from "../src/report/report";
import { type GlobalArgs, moduleOption, printJson } from "./common";
import { controlConfig } from "../src/modules/context";

interface Args extends GlobalArgs {
  module?: ModuleName;
  since: string;
  vhost?: string;
  json?: boolean;
  out?: string;
  perVhost?: boolean;
  quiet?: boolean;
  width?: number;
}

/** Report files go by vhost name; the name was checked by the rule's <VHOST> token ([A-Za-z0-9_.-]). */
function fileName(vhost: string | null): string {
  return vhost === null ? "report" : `report-${vhost.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
}

function writeReport(dir: string, report: Report, width: number): string[] {
  const base = join(dir, fileName(report.vhost));
  writeFileSync(`${base}.txt`, renderReport(report, width));
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  return [`${base}.txt`, `${base}.json`];
}

export const reportCommand: CommandModule<GlobalArgs, Args> = {
  command: "report",
  describe: "what watcher did: firewall sets, and per module tracked and banned addresses, affairs by class and rule, top attackers, latest bans",
  builder: (y) =>
    y
      .option("module", moduleOption("this module only"))
      .option("since", { type: "string", default: "24h", describe: 'period of the per-class, per-rule, attacker and ban tables: "24h", "7d", ...' })
      .option("vhost", { type: "string", describe: "one web customer: only the WB events of this vhost, nothing of the others" })
      .option("json", { type: "boolean", describe: "one JSON document, stable for scripts" })
      .option("out", { type: "string", describe: "write report.txt and report.json into this folder instead of printing" })
      .option("per-vhost", { type: "boolean", describe: "with --out: one report-<vhost>.txt/.json per web vhost, for mailing to customers" })
      .option("quiet", { type: "boolean", describe: "print nothing when the period had no affair and no ban (or when --out wrote its files): cron mails only news" })
      .example("$0 report --since 7d", "the last week")
      .example("$0 report --out /var/lib/watcher/reports --per-vhost --quiet", "from cron: one report per web customer"),
  handler: async (argv) => {
    const seconds = parseDuration(argv.since);
    if (seconds === null) throw new ConfigError(`--since: expected a duration such as "24h", "7d", got ${JSON.stringify(argv.since)}`);
    if (argv.perVhost && !argv.out) throw new ConfigError("--per-vhost writes files: give the folder with --out DIR");
    if (argv.perVhost && argv.vhost) throw new ConfigError("--per-vhost writes every vhost's report; leave out --vhost");
    const { loaded } = controlConfig(argv.root);
    requireRoot(loaded.paths.root);
    const now = nowSeconds();
    /* the global --width; a report is laid out in 100 columns where there is no terminal */
    const width = argv.width ?? (process.stdout.columns || 100);
    const options = { now, since: now - seconds, modules: argv.module ? [argv.module] : undefined, vhost: argv.vhost ?? null };

    if (argv.out) {
      mkdirSync(argv.out, { recursive: true });
      const vhosts = argv.perVhost ? knownVhosts(loaded) : [argv.vhost ?? null];
      const written: string[] = [];
      for (const vhost of vhosts) written.push(...writeReport(argv.out, await gatherReport(loaded, { ...options, vhost }), width));
      if (!argv.quiet) console.log(written.length ? `wrote ${written.join(", ")}` : "no vhost has been seen by the web module (WB): no report written");
      return;
    }
    const report = await gatherReport(loaded, options);
    if (argv.quiet && isQuiet(report)) return;
    if (argv.json) printJson(report);
    else process.stdout.write(renderReport(report, width));
  },
};
