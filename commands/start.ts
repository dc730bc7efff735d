import type { CommandModule } from "yargs";
import { startDetached } from "../src/master/control";
import { runMaster } from "../src/master/master";
import { type GlobalArgs, restoreProgress, stderrLog } from "./common";

interface Args extends GlobalArgs {
  foreground?: boolean;
}

export const startCommand: CommandModule<GlobalArgs, Args> = {
  command: "start",
  describe: "restore the firewall, create the FIFOs, run every enabled module and the scheduled jobs",
  builder: (y) =>
    y
      .option("foreground", { type: "boolean", describe: "stay in the foreground and log to stderr (systemd)" })
      .example("sudo $0 start", "in the background; the log goes to <root>/var/log/watcher.log"),
  handler: async (argv) => {
    if (argv.foreground) {
      await runMaster(argv.root, stderrLog("watcher"));
      return;
    }
    const shown = restoreProgress();
    const s = await startDetached(argv.root, shown.onRestore).finally(shown.end);
    const entries = s.restore.sets.reduce((n, set) => n + set.entries, 0);
    console.log(
      `watcher started (pid ${s.pid}): ${Object.keys(s.modules).join(", ") || "no modules"}; ` +
        `${entries} firewall entries restored (${s.backend}) in ${Math.round(s.restore.seconds * 1000)} ms`,
    );
  },
};
