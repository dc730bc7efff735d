import type { CommandModule } from "yargs";
import { gatherStatus } from "../src/master/control";
import { renderMetrics } from "../src/ops/metrics";
import type { GlobalArgs } from "./common";

export const metricsCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "metrics",
  describe: "print the Prometheus metrics (the text the master serves on [metrics] listen), e.g. for node_exporter's textfile collector; watcher_up 0 when stopped",
  handler: async (argv) => {
    process.stdout.write(renderMetrics(await gatherStatus(argv.root)));
  },
};
