import type { CommandModule } from "yargs";
import type { ModuleName, SourceConfig } from "../src/core/config";
import { ConfigError } from "../src/core/errors";
import { masterLogFile } from "../src/core/layout";
import { reopenOnSignal } from "../src/core/log-file";
import { followMaster, RESTART_EXIT, SUPERVISED_OPTION } from "../src/master/lifeline";
import { openModule, openModuleInForce } from "../src/modules/context";
import { runModuleLoop } from "../src/modules/loop";
import { fifoAccess, openSource } from "../src/pipeline/read";
import { type GlobalArgs, moduleArg, stderrLog } from "./common";

interface Args extends GlobalArgs {
  module: ModuleName;
  stdin?: boolean;
  file?: string[];
  program?: string;
  supervised?: boolean;
}

export const moduleCommand: CommandModule<GlobalArgs, Args> = {
  command: "module <module>",
  describe: "run one resident module loop: read its sources (FIFO by default), count affairs, ban",
  builder: (y) =>
    moduleArg(y)
      .option("stdin", { type: "boolean", describe: "read lines from stdin instead of the configured sources" })
      .option("file", { type: "string", array: true, describe: "follow a log file (survives rotation) instead of the configured sources" })
      .option("program", { type: "string", describe: "with --stdin/--file: take every line, whole, as this program's (nginx-access, sshd, ...) instead of finding the format" })
      /* set by the master: fd 3 is its lifeline, and the module stops when it is gone */
      .option(SUPERVISED_OPTION, { type: "boolean", hidden: true })
      .check((a) => {
        if (a.program !== undefined && a.stdin !== true && !a.file?.length) throw new ConfigError('--program goes with --stdin or --file (a configured source takes program = "...")');
        return true;
      })
      .example("$0 module LG", "read <root>/var/fifo/WatchLG")
      .example("journalctl -u ssh -o short-iso -f | $0 module LG --stdin", "read journald through a pipe")
      .example("$0 module LG --file /var/log/sshd.log", "follow sshd's own log (sshd -E): its format is found from its lines"),
  handler: async (argv) => {
    /* a SIGHUP before the loop listens for it (the master's reload during our start-up) must not end
       us, nor be lost: the files may have changed after we read them, so the loop reloads once it listens */
    let earlySighup = false;
    process.on("SIGHUP", () => (earlySighup = true));
    process.on("SIGUSR1", () => {}); /* the master's after logrotate: watcher.log is opened again below, if we write it */
    if (argv.supervised) followMaster(stderrLog(`watcher module ${argv.module}`));
    /* the master's module keeps protecting on its configuration in force when a file on disk is broken */
    const { ctx, configError } = argv.supervised ? openModuleInForce(argv.root, argv.module) : { ctx: openModule(argv.root, argv.module), configError: null };
    const program = argv.program;
    const configured: SourceConfig[] = argv.stdin
      ? [{ type: "stdin", program }]
      : argv.file?.length
        ? argv.file.map((path) => ({ type: "file", path, program }))
        : ctx.moduleConfig.sources;
    const log = stderrLog(`watcher module ${ctx.module}`);
    const sources = configured.map((s) => openSource(s, ctx.paths, ctx.module, ctx.rules.programs, { access: fifoAccess(ctx.config), log }));
    if (argv.supervised) reopenOnSignal(masterLogFile(ctx.paths), log);
    const { stats, restart } = await runModuleLoop(ctx, sources, { log, configError, ownSources: configured === ctx.moduleConfig.sources, supervised: argv.supervised === true, sighupBeforeLoop: () => earlySighup });
    log(`stopped: ${stats.lines} lines, ${stats.matched} matched, ${stats.affairs} affairs, ${stats.bans} bans`);
    await ctx.close();
    /* a FIFO read may still be pending: leave now; the master starts us again at once on RESTART_EXIT */
    process.exit(restart === null ? 0 : RESTART_EXIT);
  },
};
