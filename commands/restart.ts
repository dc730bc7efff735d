import type { CommandModule } from "yargs";
import { startDetached, stopMaster } from "../src/master/control";
import type { GlobalArgs } from "./common";

export const restartCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "restart",
  describe: "stop and start again: the kernel sets are rebuilt compact from the databases (a daily cron line)",
  handler: async (argv) => {
    await stopMaster(argv.root);
    const s = await startDetached(argv.root);
    console.log(`watcher restarted (pid ${s.pid})`);
  },
};
