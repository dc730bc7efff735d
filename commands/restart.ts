import type { CommandModule } from "yargs";
import { restartMaster } from "../src/master/control";
import { type GlobalArgs, restoreProgress } from "./common";

export const restartCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "restart",
  describe: "check everything, then stop and start again: the kernel sets are rebuilt compact from the databases (a daily cron line); a failed check leaves the running watcher alone",
  handler: async (argv) => {
    const shown = restoreProgress();
    const s = await restartMaster(argv.root, shown.onRestore).finally(shown.end);
    console.log(`watcher restarted (pid ${s.pid})`);
  },
};
