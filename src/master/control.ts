/**
 * What `start`, `stop`, `status` and `restart` do from the operator's shell: start the master
 * in the background and wait until it is ready, stop it by its lock and pid, and gather its
 * status. `stop` and `status` work from the run files whatever the configuration says: a
 * half-edited watcher.toml must neither hide a running watcher nor keep it from stopping.
 */
import { spawn } from "node:child_process";
import { mkdirSync, openSync, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { discoverRoot, type LoadedConfig, loadConfig, enabledModules, selfCommand } from "../core/config";
import { WatcherError } from "../core/errors";
import { FLEET_SET } from "../fleet/protocol";
import { createFirewall, resolveBackend } from "../core/firewall";
import { BLACKLIST_SET, byFamily, moduleSetName, WHITELIST_SET } from "../core/firewall/types";
import { isAlive, readJson, runningMaster } from "../core/runfiles";
import type { ModuleStatus } from "../modules/loop";
import { parseToml } from "../core/toml";
import { dynLists, dynloadSetName } from "../dynload/lists";
import { Histogram, LATENCY_BOUNDS } from "../ops/metrics";
import { checkFirewallFree, checkFirewallRemovable, forgetFirewallRoot } from "./claim";
import type { FleetNodeStats } from "../fleet/node";
import { endProcesses, type ModuleProcess, moduleProcesses, STOP_GRACE_MS } from "./leftovers";
import type { RestoreProgress, RestoreReport } from "./restore";
import { checkInstall, refuseProblems } from "../ops/check";

/** What the master writes to its status file (<runDir>/master.json) and `status`, `doctor` and `start` read. */
export interface MasterStatus {
  pid: number;
  startedAt: number;
  root: string;
  backend: string;
  ready: boolean;
  restore: RestoreReport;
  /** while the firewall is restored at start: how far (`watcher start` shows it on a terminal) */
  restoring?: RestoreProgress | null;
  modules: Record<string, { pid: number | null; startedAt: number | null; restarts: number; lastExit: number | null }>;
  jobs: { name: string; schedule: string; next: string | null }[];
}
import { configFile, defaultRunDir, masterLogFile, statusFile } from "../core/layout";

const START_TIMEOUT_MS = 30000;
const STOP_TIMEOUT_MS = 30000;

/** Where a root's run files are, and its configuration if it loads. */
export interface RunFiles {
  root: string;
  runDir: string;
  loaded: LoadedConfig | null;
  /** why the configuration does not load (naming the file), else null */
  configError: string | null;
}

/**
 * The run folder without trusting the configuration: the configured one when watcher.toml
 * loads, else its `runDir` key if the file is still TOML, else var/run under the root.
 */
export function locateRunFiles(rootOption: string | undefined): RunFiles {
  const root = discoverRoot(rootOption);
  try {
    const loaded = loadConfig(rootOption);
    return { root, runDir: loaded.paths.runDir, loaded, configError: null };
  } catch (e) {
    let runDir = defaultRunDir(root);
    try {
      const raw = parseToml("", readFileSync(configFile(root), "utf8")) as { runDir?: unknown };
      if (typeof raw.runDir === "string" && raw.runDir !== "") runDir = isAbsolute(raw.runDir) ? raw.runDir : join(root, raw.runDir);
    } catch {
      /* not even TOML: the default */
    }
    return { root, runDir, loaded: null, configError: (e as Error).message };
  }
}

/** Fork `watcher start --foreground` into the background and wait until it is ready; `onRestore` hears how far its firewall restore is. */
export async function startDetached(rootOption: string | undefined, onRestore?: (progress: RestoreProgress) => void): Promise<MasterStatus> {
  /* a bad config, rule file or list stops us here (exit 2, every problem named), before anything is made */
  refuseProblems(checkInstall(rootOption), "watcher cannot start");
  const { paths } = loadConfig(rootOption);
  const running = runningMaster(paths.runDir);
  if (running) throw new WatcherError(`watcher is already running (pid ${running})`);
  const logFile = masterLogFile(paths);
  let out: number;
  try {
    mkdirSync(paths.logDir, { recursive: true });
    out = openSync(logFile, "a");
  } catch (e) {
    throw new WatcherError(`cannot open the log file ${logFile}: ${(e as Error).message}`);
  }
  const [command, ...args] = selfCommand();
  const child = spawn(command!, [...args, "--root", paths.root, "start", "--foreground"], { detached: true, stdio: ["ignore", out, out] });
  child.unref();
  const exited = new Promise<number>((resolve) => child.once("exit", (code) => resolve(code ?? 1)));
  let code: number | null = null;
  void exited.then((c) => (code = c));
  for (const until = Date.now() + START_TIMEOUT_MS; Date.now() < until; await Bun.sleep(50)) {
    const status = readJson<MasterStatus>(statusFile(paths.runDir, "master"));
    if (status?.ready && status.pid === child.pid) return status;
    if (status?.restoring && status.pid === child.pid) onRestore?.(status.restoring);
    if (code !== null) {
      const tail = readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-10).join("\n");
      throw new WatcherError(`watcher did not start (status ${code}); from ${logFile}:\n${tail}`, code === 2 ? 2 : 1);
    }
  }
  throw new WatcherError(`watcher did not report ready within ${START_TIMEOUT_MS / 1000} s; see ${logFile}`);
}

export interface StopReport {
  /** the master's pid, when one was running */
  master: number | null;
  /** module processes of this root that no master ran (ended too) */
  leftovers: ModuleProcess[];
  configError: string | null;
}

/**
 * SIGTERM to the master and wait for it to be gone, then end the module processes of this
 * root that no master runs (left by a master that was killed). Found by the run files alone.
 */
export async function stopMaster(rootOption: string | undefined): Promise<StopReport> {
  const { root, runDir, configError } = locateRunFiles(rootOption);
  const pid = runningMaster(runDir);
  if (pid) {
    process.kill(pid, "SIGTERM");
    let gone = false;
    for (const until = Date.now() + STOP_TIMEOUT_MS; !gone && Date.now() < until; await Bun.sleep(50)) gone = !isAlive(pid);
    if (!gone) throw new WatcherError(`watcher (pid ${pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s`);
  }
  const leftovers = moduleProcesses(root);
  const stuck = await endProcesses(leftovers, STOP_GRACE_MS);
  if (stuck.length) throw new WatcherError(`module processes ${stuck.map((p) => p.pid).join(", ")} of ${root} would not end, even after SIGKILL`);
  return { master: pid, leftovers, configError };
}

/**
 * `stop --remove-firewall` (uninstall): everything is checked first (the configuration, which
 * says which firewall; no other root's master on it), then the master stops and the rules and
 * sets go. Returns the stop report and the backend removed.
 */
export async function stopAndRemoveFirewall(rootOption: string | undefined): Promise<StopReport & { backend: string }> {
  const { config, paths } = loadConfig(rootOption);
  checkFirewallFree(resolveBackend(config.firewall), paths.root, "the firewall stays");
  checkFirewallRemovable(resolveBackend(config.firewall), paths.root);
  const stopped = await stopMaster(rootOption);
  const firewall = createFirewall(config, paths);
  try {
    await firewall.teardown();
    forgetFirewallRoot(paths.root);
  } finally {
    await firewall.close();
  }
  return { ...stopped, backend: firewall.backend };
}

/**
 * Check everything the new master needs before the running one is stopped: a refused check
 * (exit 2) leaves the running watcher as it is, protecting.
 */
export async function restartMaster(rootOption: string | undefined, onRestore?: (progress: RestoreProgress) => void): Promise<MasterStatus> {
  refuseProblems(checkInstall(rootOption), "watcher was not restarted");
  await stopMaster(rootOption);
  return startDetached(rootOption, onRestore);
}

/** A kernel set this full is worth a warning (status) and a finding (doctor) before it refuses bans. */
export const SET_NEARLY_FULL = 0.8;

export interface StatusReport {
  running: boolean;
  pid: number | null;
  /** watcher.toml does not load (what is wrong, naming the file): what runs is what loaded when it started */
  configError: string | null;
  /** module processes of this root that no master runs (a master was killed); `stop` ends them */
  strayModules: ModuleProcess[];
  startedAt: number | null;
  root: string;
  backend: string | null;
  /**
   * `running`: the module's process is alive now (the one test of it: doctor and the metrics read
   * it too); `lastExit`: the status its last process exited with, null before any exit
   */
  modules: (ModuleStatus & { restarts: number; running: boolean; lastExit: number | null })[];
  /** the master's modules whose process is not alive: their lines wait, nothing is counted or banned */
  modulesDown: string[];
  /**
   * entries per set, when this process can read the firewall watcher uses; `full`: the share of
   * its fuller kernel set (`_v4` or `_v6`) against the backend's limit, null without a limit
   */
  firewall: { set: string; entries: number; full: number | null }[] | null;
  jobs: MasterStatus["jobs"];
  restore: MasterStatus["restore"] | null;
  /** the master's fleet reader (see `watcher fleet status`); null without [fleet] or when stopped */
  fleet: FleetNodeStats | null;
}

export async function gatherStatus(rootOption: string | undefined): Promise<StatusReport> {
  const { root, runDir, loaded, configError } = locateRunFiles(rootOption);
  const pid = runningMaster(runDir);
  const master = pid ? readJson<MasterStatus>(statusFile(runDir, "master")) : null;
  const modules: StatusReport["modules"] = [];
  for (const [name, m] of Object.entries(master?.modules ?? {})) {
    const own = readJson<ModuleStatus>(statusFile(runDir, name));
    modules.push({
      module: name,
      pid: m.pid ?? 0,
      startedAt: own?.startedAt ?? m.startedAt ?? 0,
      updatedAt: own?.updatedAt ?? 0,
      lines: own?.lines ?? 0,
      lastLineAt: own?.lastLineAt ?? null,
      matched: own?.matched ?? 0,
      affairs: own?.affairs ?? 0,
      bans: own?.bans ?? 0,
      dns: own?.dns ?? null,
      fleet: own?.fleet ?? null,
      pending: own?.pending ?? { hosts: 0, events: 0, droppedEvents: 0, error: null },
      refused: own?.refused ?? 0,
      rules: own?.rules ?? {},
      latency: own?.latency ?? new Histogram(LATENCY_BOUNDS).snapshot(),
      bansEnded: own?.bansEnded ?? { expired: 0, lifted: 0 },
      actions: own?.actions ?? {},
      configError: own?.configError ?? null,
      sources: own?.sources ?? null,
      restarts: m.restarts,
      /* the master lists a module once it has started it (a master still restoring the firewall lists none) and clears its pid when it exits */
      running: m.pid !== null && isAlive(m.pid),
      lastExit: m.lastExit,
    });
  }
  let firewall: StatusReport["firewall"] = null;
  if (loaded && (!master || master.backend === resolveBackend(loaded.config.firewall))) {
    const { config, paths } = loaded;
    const fw = createFirewall(config, paths);
    try {
      const blocklists = dynLists(config).filter((l) => l.enabled).map((l) => dynloadSetName(l.name));
      const sets = [WHITELIST_SET, BLACKLIST_SET, ...enabledModules(config).map(moduleSetName), ...(config.fleet ? [FLEET_SET] : []), ...blocklists];
      firewall = [];
      for (const set of sets) {
        const { v4, v6 } = byFamily(await fw.list(set));
        firewall.push({ set, entries: v4.length + v6.length, full: fw.maxElements ? Math.max(v4.length, v6.length) / fw.maxElements : null });
      }
    } finally {
      await fw.close();
    }
  }
  return {
    running: !!pid,
    pid,
    configError,
    strayModules: pid ? [] : moduleProcesses(root),
    startedAt: master?.startedAt ?? null,
    root,
    backend: master?.backend ?? null,
    modules,
    modulesDown: modules.filter((m) => !m.running).map((m) => m.module),
    firewall,
    jobs: master?.jobs ?? [],
    restore: master?.restore ?? null,
    fleet: master && loaded?.config.fleet ? readJson<FleetNodeStats>(statusFile(runDir, "fleet")) : null,
  };
}
