/**
 * The fleet's nodes: each node's heartbeat (a key with a TTL, and the set of every node seen),
 * `watcher fleet status` (this node's counters from its run files, the nodes from Redis) and
 * `watcher fleet forget`. What a heartbeat key holds is anybody's with write access to Redis, so
 * it is read with suspicion.
 */
import type { RedisClient } from "bun";
import { existsSync } from "node:fs";
import type { FleetConfig, LoadedConfig } from "../core/config";
import { moduleNames, moduleConfig } from "../core/config";
import { ConfigError, WatcherError } from "../core/errors";
import { dbPath, statusFile } from "../core/layout";
import { readJson, runningMaster } from "../core/runfiles";
import type { ModuleStatus } from "../modules/loop";
import { ModuleStore } from "../store/module-db";
import { FleetLink, redactUrl } from "./link";
import type { FleetNodeStats } from "./node";
import { fleetKeys } from "./protocol";

/** a node that has not beaten for this long is silent */
const HEARTBEAT_TTL_S = 20;

export interface NodeInfo {
  node: string;
  version: string;
  startedAt: number;
  updatedAt: number;
  lines: number;
  bans: number;
}

/** The [fleet] settings, or a configuration error for a command that needs them. */
export function fleetConfigOf(loaded: LoadedConfig): FleetConfig {
  if (!loaded.config.fleet) throw new ConfigError(`${loaded.paths.configFile}: fleet mode is off; add a [fleet] section with url = "redis://..."`);
  return loaded.config.fleet;
}

/** A node's heartbeat, or null when the key holds something else. */
function heartbeatOf(text: string): NodeInfo | null {
  try {
    const beat = JSON.parse(text) as Partial<NodeInfo> | null;
    return beat && typeof beat.node === "string" && typeof beat.updatedAt === "number" ? (beat as NodeInfo) : null;
  } catch {
    return null;
  }
}

/** This node is alive: its heartbeat, with a TTL, and its name in the set of nodes. */
export async function sendHeartbeat(c: RedisClient, keys: ReturnType<typeof fleetKeys>, info: NodeInfo): Promise<void> {
  await Promise.all([c.send("SET", [keys.node(info.node), JSON.stringify(info), "EX", String(HEARTBEAT_TTL_S)]), c.send("SADD", [keys.nodes, info.node])]);
}

export interface FleetStatusReport {
  node: string;
  url: string;
  /** what the running master's fleet reader reports; null when watcher is not running */
  master: FleetNodeStats | null;
  modules: { module: string; published: number; outbox: number; dropped: number; shared: number; unshared: number; fleetBans: number }[];
  /** every node that ever beat; null when Redis could not be asked */
  nodes: (NodeInfo & { live: boolean })[] | null;
  redisError: string | null;
}

/** `watcher fleet status`: this node's counters from its run files and databases, the fleet's nodes from Redis. */
export async function fleetStatus(loaded: LoadedConfig): Promise<FleetStatusReport> {
  const settings = fleetConfigOf(loaded);
  const { runDir } = loaded.paths;
  const master = runningMaster(runDir) ? readJson<FleetNodeStats>(statusFile(runDir, "fleet")) : null;
  const modules: FleetStatusReport["modules"] = [];
  for (const module of moduleNames(loaded.config)) {
    const running = master ? readJson<ModuleStatus>(statusFile(runDir, module))?.fleet : null;
    if (running) modules.push({ module, ...running });
    else if (existsSync(dbPath(loaded.paths, module))) {
      const store = new ModuleStore(dbPath(loaded.paths, module));
      const outbox = store.outboxLength();
      store.close();
      if (outbox > 0 || moduleConfig(loaded.config, module).enabled) modules.push({ module, published: 0, outbox, dropped: 0, shared: 0, unshared: 0, fleetBans: 0 });
    }
  }
  const link = new FleetLink(settings);
  let nodes: FleetStatusReport["nodes"] = null;
  try {
    if (await link.start()) {
      const k = fleetKeys(settings.prefix);
      nodes = await link.run(async (c) => {
        const names = ((await c.send("SMEMBERS", [k.nodes])) as string[]).sort();
        const beats = names.length ? ((await c.send("MGET", names.map(k.node))) as (string | null)[]) : [];
        return names.map((node, i) => {
          const beat = beats[i] ? heartbeatOf(beats[i]!) : null;
          return { node, version: beat?.version ?? "", startedAt: beat?.startedAt ?? 0, updatedAt: beat?.updatedAt ?? 0, lines: beat?.lines ?? 0, bans: beat?.bans ?? 0, live: beat !== null };
        });
      });
    }
  } catch {
    nodes = null;
  } finally {
    link.close();
  }
  return { node: settings.node, url: redactUrl(settings.url), master, modules, nodes, redisError: nodes ? null : link.lastError };
}

/** `watcher fleet forget NODE`: a node taken out of service leaves the list; a live one is refused. */
export async function forgetNode(loaded: LoadedConfig, node: string): Promise<void> {
  const settings = fleetConfigOf(loaded);
  const link = new FleetLink(settings);
  try {
    if (!(await link.start())) throw new WatcherError(`cannot reach Redis at ${redactUrl(settings.url)}: ${link.lastError}`);
    const k = fleetKeys(settings.prefix);
    await link.run(async (c) => {
      if ((await c.send("EXISTS", [k.node(node)])) === 1) throw new WatcherError(`node ${node} is live (its heartbeat is fresh): stop watcher there first`);
      if ((await c.send("SREM", [k.nodes, node])) === 0) throw new WatcherError(`no node ${node} in the fleet`);
    });
  } finally {
    link.close();
  }
}
