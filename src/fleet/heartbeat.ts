/**
 * The master's beat in the fleet, every few seconds on the writing link: say this node is
 * alive (with its lines and bans), drop lapsed decisions from the active set, measure how far
 * the stream is ahead of what we applied, and publish the outboxes of modules that are not
 * running (a `watcher ban` queued there).
 */
import { readdirSync } from "node:fs";
import { basename } from "node:path";
import pkg from "../../package.json";
import { moduleNames } from "../core/config";
import { nowSeconds } from "../core/duration";
import { dbPath, statusFile } from "../core/layout";
import { readJson } from "../core/runfiles";
import type { ModuleStatus } from "../modules/loop";
import type { FleetLink } from "./link";
import type { FleetNodeStats, NodeParts } from "./node";
import { type NodeInfo, sendHeartbeat } from "./nodes";
import { drainOutbox } from "./publisher";
import { streamInfo } from "./receiver";

/** Decisions dropped from the active set per beat, so one beat stays short after a long stop. */
const LAPSED_PER_BEAT = 1000;

export async function beat(parts: NodeParts, link: FleetLink, stats: FleetNodeStats, startedAt: number): Promise<void> {
  const { loaded, settings, keys, store } = parts;
  const statuses = parts.modules.map((m) => readJson<ModuleStatus>(statusFile(loaded.paths.runDir, m)));
  const info: NodeInfo = {
    node: settings.node,
    version: pkg.version,
    startedAt,
    updatedAt: nowSeconds(),
    lines: statuses.reduce((n, s) => n + (s?.lines ?? 0), 0),
    bans: statuses.reduce((n, s) => n + (s?.bans ?? 0), 0),
  };
  const beaten = await link.run(async (c) => {
    const now = nowSeconds();
    await sendHeartbeat(c, keys, info);
    const lapsed = (await c.send("ZRANGE", [keys.active, "-inf", String(now), "BYSCORE", "LIMIT", "0", String(LAPSED_PER_BEAT)])) as string[];
    if (lapsed.length) await Promise.all([c.send("ZREM", [keys.active, ...lapsed]), c.send("HDEL", [keys.payload, ...lapsed])]);
    return true;
  });
  if (!beaten) return; /* not connected: the link retries by itself */
  const stream = await streamInfo(link, keys.stream);
  const cursor = store.cursor;
  stats.lagMs = stream && cursor && cursor !== "0-0" ? Math.max(0, Number(stream.last.split("-")[0]) - Number(cursor.split("-")[0])) : stream?.last === "0-0" ? 0 : null;
  await drainIdleOutboxes(parts, link);
}

/** `watcher ban` in a module that is not running queues in that module's outbox: publish it from here. */
async function drainIdleOutboxes(parts: NodeParts, link: FleetLink): Promise<void> {
  const files = readdirSync(parts.loaded.paths.dbDir).filter((f) => f.endsWith(".db"));
  for (const module of moduleNames(parts.loaded.config)) {
    if (parts.modules.includes(module) || !files.includes(basename(dbPath(parts.loaded.paths, module)))) continue;
    await drainOutbox(parts.moduleStore(module), link, parts.settings, parts.key);
  }
}
