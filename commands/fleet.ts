import type { Argv, CommandModule } from "yargs";
import { loadConfig, enabledModules } from "../src/core/config";
import { formatDuration, nowSeconds } from "../src/core/duration";
import { createFirewall } from "../src/core/firewall";
import { Lists } from "../src/core/lists";
import { FleetNode } from "../src/fleet/node";
import { fleetConfigOf, fleetStatus, forgetNode } from "../src/fleet/nodes";
import { type GlobalArgs, isoTime, jsonTime, printJson, stderrLog, table, outputWidth } from "./common";

interface Args extends GlobalArgs {
  json?: boolean;
}

const statusCommand: CommandModule<GlobalArgs, Args> = {
  command: "status",
  describe: "this node's fleet counters (decisions in and out, outbox, refusals) and every node's heartbeat",
  builder: (y) => y.option("json", { type: "boolean", describe: "one JSON document, stable for scripts" }),
  handler: async (argv) => {
    const s = await fleetStatus(loadConfig(argv.root));
    if (argv.json) {
      return printJson({
        ...s,
        master: s.master && { ...s.master, updatedAt: jsonTime(s.master.updatedAt) },
        nodes: s.nodes && s.nodes.map((n) => ({ ...n, startedAt: jsonTime(n.startedAt), updatedAt: jsonTime(n.updatedAt) })),
      });
    }
    const now = nowSeconds();
    const m = s.master;
    console.log(`fleet node ${s.node} on ${s.url}: ${m ? (m.connected ? "connected" : `not connected (${m.lastError ?? "connecting"})`) : "watcher is not running"}`);
    if (m) {
      console.log(`in: ${m.received} decisions from other nodes, ${m.applied} applied, ${m.protected} refused by local policy, ${m.notAccepted} not accepted, ${m.expired} expired, ${m.duplicates} duplicates; ${m.badSignature} with a bad signature ignored; ${m.syncs} full syncs; lag ${m.lagMs ?? "-"} ms`);
      for (const r of m.refusals) console.log(`refused: ${r}`);
    }
    if (s.modules.length) {
      const t = table(["module", "published", "outbox", "dropped", "affairs shared", "local only", "fleet bans"], outputWidth(argv));
      for (const x of s.modules) t.push([x.module, x.published, x.outbox, x.dropped, x.shared, x.unshared, x.fleetBans]);
      console.log(t.toString());
    }
    if (s.nodes) {
      const t = table(["node", "state", "version", "up", "lines", "bans", "last beat"], outputWidth(argv));
      for (const n of s.nodes) t.push([n.node, n.live ? "live" : "silent", n.version || "-", n.live ? formatDuration(now - n.startedAt) : "-", n.lines, n.bans, n.updatedAt ? isoTime(n.updatedAt) : "-"]);
      console.log(t.toString());
    } else console.log(`Redis not reachable: ${s.redisError ?? "unknown error"}`);
    if (m && !m.connected) process.exitCode = 1;
  },
};

const syncCommand: CommandModule<GlobalArgs, Args> = {
  command: "sync",
  describe: "pull every active decision from the fleet now and replace this node's fleet set (after a long outage)",
  builder: (y) => y.option("json", { type: "boolean" }),
  handler: async (argv) => {
    const loaded = loadConfig(argv.root);
    const settings = fleetConfigOf(loaded);
    const firewall = createFirewall(loaded.config, loaded.paths);
    const lists = Lists.of(loaded.paths);
    const modules = enabledModules(loaded.config);
    const node = new FleetNode(loaded, firewall, modules, () => lists, argv.json ? () => {} : stderrLog("watcher fleet sync"));
    try {
      await node.connect();
      const bans = await node.fullSync();
      if (argv.json) printJson({ bans, ...node.stats, updatedAt: jsonTime(node.stats.updatedAt) });
      else console.log(`${bans} fleet bans in force on ${settings.node} (${node.stats.protected} refused by local policy, ${node.stats.badSignature} with a bad signature ignored)`);
    } finally {
      await node.close();
      await firewall.close();
    }
  },
};

const forgetCommand: CommandModule<GlobalArgs, Args & { node: string }> = {
  command: "forget <node>",
  describe: "take a node that left the fleet for good off the list of nodes",
  builder: (y) => y.positional("node", { type: "string", demandOption: true, describe: "the node's name, as fleet status lists it" }),
  handler: async (argv) => {
    await forgetNode(loadConfig(argv.root), argv.node);
    console.log(`forgot node ${argv.node}`);
  },
};

export const fleetCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: "fleet",
  describe: "fleet mode on Redis: status of this node and the others, full sync, forgetting a node",
  builder: (y: Argv<GlobalArgs>) => y.command(statusCommand).command(syncCommand).command(forgetCommand).demandCommand(1, "name a fleet command: status, sync or forget"),
  handler: () => {},
};
