import type { CommandModule } from "yargs";
import { loadConfig, type ModuleName } from "../src/core/config";
import { formatDuration, nowSeconds } from "../src/core/duration";
import { resolveBackend } from "../src/core/firewall";
import { checkFirewallFree } from "../src/master/claim";
import { expire } from "../src/ops/expire";
import { count } from "../src/ops/check";
import { type GlobalArgs, isoTime, moduleOption, printJson, table, outputWidth } from "./common";

interface Args extends GlobalArgs {
  module?: ModuleName;
  dryRun?: boolean;
  json?: boolean;
  quiet?: boolean;
}

function formatBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.ceil(n / 1e3)} kB`;
}

export const expireCommand: CommandModule<GlobalArgs, Args> = {
  command: "expire",
  describe: "forget hosts whose last affair is older than the module's expireAfter and whose ban has ended; delete events older than its eventRetention",
  builder: (y) =>
    y
      .option("module", moduleOption("this module only (default: the enabled modules)"))
      .option("dry-run", { type: "boolean", describe: "list what would be forgotten, count the events that would be deleted; change nothing" })
      .option("json", { type: "boolean", describe: "one JSON document, stable for scripts" })
      .option("quiet", { type: "boolean", describe: "print nothing unless something fails (cron)" })
      .example("$0 expire --dry-run", "what the next run would remove"),
  handler: async (argv) => {
    const loaded = loadConfig(argv.root);
    if (!argv.dryRun) checkFirewallFree(resolveBackend(loaded.config.firewall), loaded.paths.root, "expire");
    const expired = await expire(loaded, { module: argv.module, now: nowSeconds(), dryRun: !!argv.dryRun });
    const results = expired.map((r) => ({ ...r, expired: r.expired.map((h) => ({ ...h, lastSeen: isoTime(h.lastSeen) })) }));
    if (argv.quiet) return;
    if (argv.json) return printJson(results);
    for (const r of results) {
      const forget = r.dryRun ? "would forget" : "forgot";
      const events = r.eventRetention === 0 ? "kept all events" : `${r.dryRun ? "would delete" : "deleted"} ${count(r.eventsExpired, "event")} older than ${formatDuration(r.eventRetention)}`;
      const freed = r.bytesFreed > 0 ? `, ${formatBytes(r.bytesFreed)} given back` : "";
      console.log(`${r.module}: ${forget} ${count(r.expired.length, "host")} not seen for ${formatDuration(r.expireAfter)}; ${events}${freed}`);
      if (r.expired.length === 0) continue;
      const t = table(["address", "last seen", "last rule"], outputWidth(argv));
      for (const h of r.expired) t.push([h.address, h.lastSeen, h.lastRule]);
      console.log(t.toString());
    }
  },
};
