import type { CommandModule } from "yargs";
import { loadConfig } from "../src/core/config";
import { createFirewall } from "../src/core/firewall";
import { Lists } from "../src/core/lists";
import { type Outcome, refreshLists } from "../src/dynload/load";
import { type GlobalArgs, isoTime, printJson, progress } from "./common";
import { dynLists } from "../src/dynload/lists";
import { checkFirewallFree } from "../src/master/claim";
import { nowSeconds } from "../src/core/duration";
import { count } from "../src/ops/check";

interface Args extends GlobalArgs {
  list?: string;
  force?: boolean;
  json?: boolean;
  quiet?: boolean;
}

function describe(o: Outcome): string {
  switch (o.result) {
    case "loaded":
      return `${o.list}: loaded ${count(o.entries, "network")} in ${o.seconds.toFixed(2)} s${o.leftOut.length ? `; left out ${o.leftOut.length} that cover protected addresses: ${o.leftOut.slice(0, 5).join(", ")}${o.leftOut.length > 5 ? ", ..." : ""}` : ""}`;
    case "not-modified":
      return `${o.list}: not modified (${count(o.entries, "network")} in force)`;
    case "not-due":
      return `${o.list}: not due before ${isoTime(o.next)} (${o.why})`;
    case "failed":
      return `${o.list}: kept the list in force (${count(o.entries, "network")}): ${o.error}`;
  }
}

export const dynloadCommand: CommandModule<GlobalArgs, Args> = {
  command: "dynload [list]",
  describe: "download and load the blocklists that are due (Spamhaus DROP, NixSpam, your own), each into watcher_dl_<name>",
  builder: (y) =>
    y
      .positional("list", { type: "string", describe: "only this list (also when it is not enabled)" })
      .option("force", { type: "boolean", describe: "download even if not due, and accept a list that shrank a lot (never more often than its publisher allows)" })
      .option("json", { type: "boolean", describe: "print the outcomes as JSON" })
      .option("quiet", { type: "boolean", describe: "print only failures, on stderr (for cron)" })
      .example("$0 dynload", "every enabled list that is due")
      .example("$0 dynload spamhaus --force", "one list now"),
  handler: async (argv) => {
    const loaded = loadConfig(argv.root);
    const lists = Lists.of(loaded.paths);
    const firewall = createFirewall(loaded.config, loaded.paths);
    const show = !argv.json && !argv.quiet;
    /* on a terminal, how many of the lists are done (downloads can take a while) */
    const due = dynLists(loaded.config).filter((l) => (argv.list ? l.name === argv.list : l.enabled)).length;
    const shown = progress("dynload", due, { unit: "lists", quiet: argv.quiet });
    let done = 0;
    shown.update(0);
    try {
      checkFirewallFree(firewall.backend, loaded.paths.root, "dynload");
      const outcomes = await refreshLists(loaded, firewall, lists, {
        only: argv.list,
        force: !!argv.force,
        now: nowSeconds(),
        /* each list as it is done (downloads can take a while); a failure on stderr, whatever the options */
        progress: (o) => {
          shown.end();
          if (o.result === "failed") process.stderr.write(`watcher dynload: ${describe(o)}\n`);
          else if (show) console.log(describe(o));
          shown.update(++done, `${o.list} ${o.result}`);
        },
      });
      shown.end();
      if (argv.json) printJson(outcomes.map((o) => (o.result === "not-due" ? { ...o, next: isoTime(o.next) } : o)));
      else if (show && outcomes.length === 0) console.log('no blocklist is enabled (see README, "Blocklists")');
      if (outcomes.some((o) => o.result === "failed")) process.exitCode = 1;
    } finally {
      await firewall.close();
    }
  },
};
