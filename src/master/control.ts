/**
 * What `start`, `stop`, `status` and `restart` do from the operator's shell: start the master
 * in the background and wait until it is ready, stop it by its pid file, and gather its status.
 */
import { spawn } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, MODULE_NAMES, selfCommand } from "../core/config";
import { WatcherError } from "../core/errors";
import { FLEET_SET } from "../core/fleet";
import { createFirewall, resolveBackend } from "../core/firewall";
import { BLACKLIST_SET, moduleSetName, WHITELIST_SET } from "../core/firewall/types";
import { isAlive, type ModuleStatus, readJson, runningMaster, statusFile } from "../core/runfiles";
import type { FleetNodeStats } from "./fleet";
import { checkBeforeStart, type MasterStatus } from "./master";

const START_TIMEOUT_MS = 30000;
const STOP_TIMEOUT_MS = 30000;

function masterLogFile(logDir: string): string {
  return join(logDir, "watcher.log");
}

/** Fork `watcher start --foreground` into the background and wait until it is ready. */
export async function startDetached(rootOption: string | undefined): Promise<MasterStatus> {
  const loaded = loadConfig(rootOption);
  const { paths } = loaded;
  checkBeforeStart(loaded); /* a bad config, rule file or list stops us here (exit 2), before anything is made */
  const running = runningMaster(paths.runDir);
  if (running) throw new WatcherError(`watcher is already running (pid ${running})`);
  const logFile = masterLogFile(paths.logDir);
  Bun.spawnSync(["mkdir", "-p", paths.logDir]);
  const out = openSync(logFile, "a");
  const [command, ...args] = selfCommand();
  const child = spawn(command!, [...args, "--root", paths.root, "start", "--foreground"], { detached: true, stdio: ["ignore", out, out] });
  child.unref();
  const exited = new Promise<number>((resolve) => child.once("exit", (code) => resolve(code ?? 1)));
  let code: number | null = null;
  void exited.then((c) => (code = c));
  for (const until = Date.now() + START_TIMEOUT_MS; Date.now() < until; await Bun.sleep(50)) {
    const status = readJson<MasterStatus>(statusFile(paths.runDir, "master"));
    if (status?.ready && status.pid === child.pid) return status;
    if (code !== null) {
      const tail = readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-10).join("\n");
      throw new WatcherError(`watcher did not start (status ${code}); from ${logFile}:\n${tail}`, code === 2 ? 2 : 1);
    }
  }
  throw new WatcherError(`watcher did not report ready within ${START_TIMEOUT_MS / 1000} s; see ${logFile}`);
}

/** SIGTERM to the master, then wait for it to be gone; false when it was not running. */
export async function stopMaster(rootOption: string | undefined): Promise<boolean> {
  const { paths } = loadConfig(rootOption);
  const pid = runningMaster(paths.runDir);
  if (!pid) return false;
  process.kill(pid, "SIGTERM");
  for (const until = Date.now() + STOP_TIMEOUT_MS; Date.now() < until; await Bun.sleep(50)) if (!isAlive(pid)) return true;
  throw new WatcherError(`watcher (pid ${pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s`);
}

export interface StatusReport {
  running: boolean;
  pid: number | null;
  startedAt: number | null;
  root: string;
  backend: string | null;
  modules: (ModuleStatus & { restarts: number })[];
  /** entries per set, when this process can read the firewall watcher uses */
  firewall: { set: string; entries: number }[] | null;
  jobs: MasterStatus["jobs"];
  restore: MasterStatus["restore"] | null;
  /** the master's fleet reader (see `watcher fleet status`); null without [fleet] or when stopped */
  fleet: FleetNodeStats | null;
}

export async function gatherStatus(rootOption: string | undefined): Promise<StatusReport> {
  const { config, paths } = loadConfig(rootOption);
  const pid = runningMaster(paths.runDir);
  const master = pid ? readJson<MasterStatus>(statusFile(paths.runDir, "master")) : null;
  const modules: StatusReport["modules"] = [];
  for (const [name, m] of Object.entries(master?.modules ?? {})) {
    const own = readJson<ModuleStatus>(statusFile(paths.runDir, name));
    modules.push({
      module: name,
      pid: m.pid ?? 0,
      startedAt: own?.startedAt ?? m.startedAt ?? 0,
      updatedAt: own?.updatedAt ?? 0,
      lines: own?.lines ?? 0,
      matched: own?.matched ?? 0,
      affairs: own?.affairs ?? 0,
      bans: own?.bans ?? 0,
      dns: own?.dns ?? null,
      fleet: own?.fleet ?? null,
      pending: own?.pending ?? { hosts: 0, events: 0, droppedEvents: 0, error: null },
      restarts: m.restarts,
    });
  }
  const backend = resolveBackend(config.firewall);
  let firewall: StatusReport["firewall"] = null;
  if (!master || master.backend === backend) {
    const fw = createFirewall(config, paths);
    try {
      const sets = [WHITELIST_SET, BLACKLIST_SET, ...MODULE_NAMES.filter((m) => config.modules[m].enabled).map(moduleSetName), ...(config.fleet ? [FLEET_SET] : [])];
      firewall = [];
      for (const set of sets) firewall.push({ set, entries: (await fw.list(set)).length });
    } finally {
      await fw.close();
    }
  }
  return {
    running: !!pid,
    pid,
    startedAt: master?.startedAt ?? null,
    root: paths.root,
    backend: master?.backend ?? null,
    modules,
    firewall,
    jobs: master?.jobs ?? [],
    restore: master?.restore ?? null,
    fleet: master && config.fleet ? readJson<FleetNodeStats>(statusFile(paths.runDir, "fleet")) : null,
  };
}
