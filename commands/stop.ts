import type { CommandModule } from "yargs";
import { type StopReport, stopAndRemoveFirewall, stopMaster } from "../src/master/control";
import { describeProcesses } from "../src/master/leftovers";
import type { GlobalArgs } from "./common";

interface Args extends GlobalArgs {
  removeFirewall?: boolean;
}

function print(s: StopReport): void {
  if (s.configError) console.error(`watcher: warning: the configuration does not load; stopping by the run files:\n${s.configError}`);
  console.log(s.master ? "watcher stopped" : "watcher is not running");
  if (s.leftovers.length) console.log(`ended module processes no master ran: ${describeProcesses(s.leftovers)}`);
}

export const stopCommand: CommandModule<GlobalArgs, Args> = {
  command: "stop",
  describe: "stop the master and its modules (the firewall stays unless keepFirewallOnStop = false); works with a broken configuration",
  builder: (y) => y.option("remove-firewall", { type: "boolean", describe: "also remove everything watcher put in the firewall (uninstall)" }),
  handler: async (argv) => {
    if (!argv.removeFirewall) {
      print(await stopMaster(argv.root));
      return;
    }
    const s = await stopAndRemoveFirewall(argv.root);
    print(s);
    console.log(`removed watcher's ${s.backend} rules and sets`);
  },
};
