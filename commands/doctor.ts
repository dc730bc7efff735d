import type { CommandModule } from "yargs";
import { parseDuration } from "../src/core/duration";
import { ConfigError, EXIT_RUNTIME } from "../src/core/errors";
import { runDoctor } from "../src/ops/doctor";
import { type GlobalArgs, printJson } from "./common";
import { controlConfig } from "../src/modules/context";

interface Args extends GlobalArgs {
  fix?: boolean;
  idle: string;
  json?: boolean;
}

export const doctorCommand: CommandModule<GlobalArgs, Args> = {
  command: "doctor",
  describe: "check the running watcher: modules alive and reading, the logger feeding each FIFO, kernel sets against the databases (drift), set sizes, disk, DNS, Redis; exit 1 with findings",
  builder: (y) =>
    y
      .option("fix", { type: "boolean", describe: "repair drift: put recorded bans missing from the kernel back, remove what no database knows" })
      .option("idle", { type: "string", default: "1h", describe: "a module that read no line for this long is a finding (is the logger feeding it?)" })
      .option("json", { type: "boolean", describe: "print {root, healthy, checks, fixed} as JSON" })
      .example("$0 doctor", "after an upgrade, or when bans seem not to work")
      .example("$0 doctor --fix", "and put the kernel sets right"),
  handler: async (argv) => {
    const idle = parseDuration(argv.idle);
    if (idle === null) throw new ConfigError(`--idle: expected a duration such as "30m" or "2h", got ${JSON.stringify(argv.idle)}`);
    const { loaded, files } = controlConfig(argv.root);
    const report = await runDoctor(loaded, { fix: !!argv.fix, idle, files });
    if (!report.healthy) process.exitCode = EXIT_RUNTIME;
    if (argv.json) {
      printJson(report);
      return;
    }
    for (const c of report.checks) console.log(`${c.ok ? "ok     " : "FINDING"}  ${c.check}: ${c.message}`);
    for (const f of report.fixed) console.log(`fixed    ${f}`);
    const findings = report.checks.filter((c) => !c.ok).length;
    console.log(findings ? `watcher doctor: ${findings} finding${findings === 1 ? "" : "s"} in ${report.root}` : `watcher doctor: ${report.root} is healthy`);
  },
};
