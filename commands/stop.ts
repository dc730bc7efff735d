import type { CommandModule } from "yargs";
import { stopMaster } from "../src/master/control";
import type { GlobalArgs } from "./common";

export const stopCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "stop",
  describe: "stop the master and its modules (the firewall stays unless keepFirewallOnStop = false)",
  handler: async (argv) => {
    console.log((await stopMaster(argv.root)) ? "watcher stopped" : "watcher is not running");
  },
};
