import type { CommandModule } from "yargs";
import { loadConfig } from "../src/core/config";
import { createFirewall } from "../src/core/firewall";
import { stopMaster } from "../src/master/control";
import type { GlobalArgs } from "./common";

interface Args extends GlobalArgs {
  removeFirewall?: boolean;
}

export const stopCommand: CommandModule<GlobalArgs, Args> = {
  command: "stop",
  describe: "stop the master and its modules (the firewall stays unless keepFirewallOnStop = false)",
  builder: (y) => y.option("remove-firewall", { type: "boolean", describe: "also remove everything watcher put in the firewall (uninstall)" }),
  handler: async (argv) => {
    console.log((await stopMaster(argv.root)) ? "watcher stopped" : "watcher is not running");
    if (argv.removeFirewall) {
      const { config, paths } = loadConfig(argv.root);
      const firewall = createFirewall(config, paths);
      await firewall.teardown();
      await firewall.close();
      console.log(`removed watcher's ${firewall.backend} rules and sets`);
    }
  },
};
