import type { CommandModule } from "yargs";
import { checkInstall } from "../src/ops/check";
import { type GlobalArgs, printJson } from "./common";
import { EXIT_USAGE } from "../src/core/errors";

interface Args extends GlobalArgs {
  json?: boolean;
}

export const checkCommand: CommandModule<GlobalArgs, Args> = {
  command: "check",
  describe: "check the configuration, rule files, lists, blocklist settings, fleet key and firewall backend, touching nothing (like nginx -t); exit 2 listing every problem",
  builder: (y) =>
    y
      .option("json", { type: "boolean", describe: "print {root, ok, problems, checked} as JSON" })
      .example("$0 check", "before a restart, after editing etc/watcher.toml or a rule file")
      .example("$0 check && $0 restart", "restart only what checks"),
  handler: (argv) => {
    const { root, problems, checked } = checkInstall(argv.root);
    if (problems.length) process.exitCode = EXIT_USAGE;
    if (argv.json) {
      printJson({ root, ok: problems.length === 0, problems, checked });
      return;
    }
    for (const line of checked) console.log(`ok  ${line}`);
    if (problems.length === 0) {
      console.log(`watcher check: ${root} is good; nothing was changed`);
      return;
    }
    for (const p of problems) process.stderr.write(`${p}\n`);
    process.stderr.write(`watcher check: ${problems.length} problem${problems.length === 1 ? "" : "s"} in ${root}; nothing was changed\n`);
  },
};
