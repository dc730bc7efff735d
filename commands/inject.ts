import type { CommandModule } from "yargs";
import { formatDuration } from "../src/core/duration";
import { ConfigError, WatcherError } from "../src/core/errors";
import { openModule } from "../src/modules/context";
import { blocksOf, injectDirect, injectToFifo } from "../src/modules/inject";
import { stdinSource } from "../src/pipeline/read";
import { loadConfig, moduleConfig, type ModuleName } from "../src/core/config";
import { type GlobalArgs, isoTime, moduleArg, printJson, type Progress, progress } from "./common";
import { fstatSync } from "node:fs";
import { checkFirewallFree } from "../src/master/claim";
import { fifoPath } from "../src/core/layout";

interface Args extends GlobalArgs {
  module: ModuleName;
  line?: string[];
  direct?: boolean;
  json?: boolean;
  quiet?: boolean;
  program?: string;
}

/** The chunks as they are read, the bytes read so far shown as progress. */
async function* counted(chunks: AsyncIterable<Uint8Array>, shown: Progress): AsyncGenerator<Uint8Array> {
  let done = 0;
  for await (const chunk of chunks) {
    done += chunk.length;
    shown.update(done);
    yield chunk;
  }
  shown.end();
}

/** stdin's size when it is a file (`< big.log`), else null (a pipe: the end is not known). */
function stdinSize(): number | null {
  try {
    const st = fstatSync(0);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}


export const injectCommand: CommandModule<GlobalArgs, Args> = {
  command: "inject <module> [line..]",
  describe: "feed log lines (arguments, else stdin) to a module: into its FIFO, or --direct into its database",
  builder: (y) =>
    moduleArg(y)
      .positional("line", { type: "string", array: true, describe: "log lines; without them stdin is read" })
      .option("direct", { type: "boolean", describe: "process here against the module's database, with each line's own time (replay old logs)" })
      .option("json", { type: "boolean", describe: "with --direct: print the result as JSON" })
      .option("quiet", { type: "boolean", describe: "with --direct: print nothing (no summary, no line per ban, no progress) unless something fails" })
      .option("program", { type: "string", describe: "with --direct: take every line, whole, as this program's (nginx-access, sshd, ...) instead of finding the format; their time is now" })
      .check((a) => {
        if (a.program !== undefined && a.direct !== true) throw new ConfigError("--program goes with --direct (a running module finds the format of the lines it reads)");
        return true;
      })
      .example("$0 inject LG --direct < /var/log/auth.log", "replay an old log")
      .example("$0 inject WB --direct < /var/log/nginx/error.log", "a web server's own log: its format is found from its lines")
      .example("journalctl -u ssh -o short-iso -f | $0 inject LG", "live: lines go to the running module"),
  handler: async (argv) => {
    const argumentLines = argv.line?.length ? [`${argv.line.join("\n")}\n`] : null;
    if (!argv.direct) {
      const { config, paths } = loadConfig(argv.root);
      const { sources } = moduleConfig(config, argv.module);
      if (!sources.some((s) => s.type === "fifo")) {
        throw new WatcherError(`${argv.module} reads ${sources.map((s) => s.type).join(", ")} (its sources in watcher.toml), not its FIFO: nothing would read these lines; use --direct, or add { type = "fifo" } to its sources`);
      }
      await injectToFifo(fifoPath(paths.fifoBase, argv.module), argumentLines ?? blocksOf(stdinSource().chunks()));
      return;
    }
    const ctx = openModule(argv.root, argv.module);
    try {
      checkFirewallFree(ctx.firewall.backend, ctx.paths.root, "inject --direct");
      /* on a terminal, how far a big file is read (stderr; nothing on a pipe or with --quiet) */
      const input = argumentLines ?? counted(stdinSource().chunks(), progress(`inject ${ctx.module}`, stdinSize(), { unit: "bytes", quiet: argv.quiet }));
      const { stats, bans, seconds, formats } = await injectDirect(ctx, input, argv.program ?? null);
      if (argv.json) {
        printJson({ ...stats, seconds, formats, bans: bans.map((b) => ({ ...b, time: isoTime(b.time), until: isoTime(b.until) })) });
        return;
      }
      if (argv.quiet) return;
      console.log(
        `${ctx.module}: ${stats.lines} lines, ${stats.matched} matched, ${stats.affairs} affairs, ${stats.bans} bans in ${seconds.toFixed(2)} s` +
          ` (${stats.merged} merged into attempts already counted, ${stats.protected} from protected addresses, ${stats.unattributed} unattributed, ${stats.unparsed} in no format watcher knows)`,
      );
      console.log(`formats: ${Object.entries(formats).map(([name, n]) => `${name} ${n}`).join(", ") || "none"}`);
      for (const b of bans) {
        console.log(`banned ${b.address} at ${isoTime(b.time)} for ${formatDuration(b.seconds)}: ${b.reason}`);
      }
    } finally {
      await ctx.close();
    }
  },
};
