import type { CommandModule } from "yargs";
import { loadConfig } from "../src/core/config";
import { LOGGERS, type Logger, syslogConfig } from "../src/install/syslog-config";
import type { GlobalArgs } from "./common";

interface Args extends GlobalArgs {
  logger: Logger;
}

export const syslogConfigCommand: CommandModule<GlobalArgs, Args> = {
  command: "syslog-config <logger>",
  describe: "print the rsyslog or syslog-ng snippet that feeds each enabled module's FIFO",
  builder: (y) =>
    y
      .positional("logger", { choices: LOGGERS, demandOption: true, describe: "the system logger" })
      .example("$0 syslog-config rsyslog > /etc/rsyslog.d/30-watcher.conf", "then: systemctl restart rsyslog"),
  handler: (argv) => {
    process.stdout.write(syslogConfig(argv.logger, loadConfig(argv.root)));
  },
};
