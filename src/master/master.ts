/**
 * The master (`watcher start --foreground`, what systemd runs): validate everything, restore
 * the firewall, create the FIFOs, fork one `watcher module X` per enabled module and restart a
 * crashed one with backoff, run the scheduled jobs, keep a status file for `watcher status`.
 * SIGTERM stops the modules and exits; SIGHUP reloads lists (and makes the modules reload
 * config, rules and lists) without losing counts.
 */
import { mkdirSync, openSync, writeSync, closeSync } from "node:fs";
import cron, { type ScheduledTask } from "node-cron";
import { type LoadedConfig, loadConfig, MODULE_NAMES, type ModuleName, selfCommand } from "../core/config";
import { WatcherError } from "../core/errors";
import { createFirewall } from "../core/firewall";
import type { Firewall } from "../core/firewall/types";
import { FleetStore, loadFleetKey, readFleetCa, redactUrl } from "../core/fleet";
import { Lists } from "../core/lists";
import { pidFile, readJson, removeFile, runningMaster, statusFile, writeJson } from "../core/runfiles";
import { refreshLists } from "../dynload/load";
import { dynLists } from "../dynload/lists";
import { fleetDbPath, openModule } from "../modules/context";
import { expireModule } from "../modules/expire";
import { loadRules } from "../modules/registry";
import { ensureFifo, fifoPath } from "../modules/sources";
import { FleetNode } from "./fleet";
import { type RestoreReport, restoreFirewall } from "./restore";

const MAX_BACKOFF_S = 60;
const STOP_GRACE_MS = 10000;
/** decisions received from the fleet are kept this long for reports */
const FLEET_HISTORY_S = 30 * 86400;

export interface MasterStatus {
  pid: number;
  startedAt: number;
  root: string;
  backend: string;
  ready: boolean;
  restore: RestoreReport;
  modules: Record<string, { pid: number | null; startedAt: number | null; restarts: number; lastExit: number | null }>;
  jobs: { name: string; schedule: string; next: string | null }[];
}

class ModuleChild {
  proc: Bun.Subprocess | null = null;
  startedAt: number | null = null;
  restarts = 0;
  lastExit: number | null = null;
  private backoff = 1;
  private timer: ReturnType<typeof setTimeout> | null = null;
  stopping = false;

  constructor(
    readonly module: ModuleName,
    private readonly root: string,
    private readonly log: (m: string) => void,
    private readonly changed: () => void,
  ) {}

  start(): void {
    this.timer = null;
    const proc = Bun.spawn([...selfCommand(), "--root", this.root, "module", this.module], { stdin: "ignore", stdout: "inherit", stderr: "inherit" });
    this.proc = proc;
    this.startedAt = Date.now();
    this.log(`module ${this.module} started (pid ${proc.pid})`);
    this.changed();
    void proc.exited.then((code) => this.exited(code));
  }

  private exited(code: number): void {
    this.lastExit = code;
    this.proc = null;
    if (this.stopping) return;
    /* a module that ran a while starts over with a short backoff */
    if (this.startedAt && Date.now() - this.startedAt > MAX_BACKOFF_S * 1000) this.backoff = 1;
    this.log(`module ${this.module} exited with status ${code}; restarting in ${this.backoff}s`);
    this.restarts++;
    this.timer = setTimeout(() => this.start(), this.backoff * 1000);
    this.backoff = Math.min(MAX_BACKOFF_S, this.backoff * 2);
    this.changed();
  }

  signal(sig: NodeJS.Signals): void {
    this.proc?.kill(sig);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    const proc = this.proc;
    if (!proc) return;
    proc.kill("SIGTERM");
    const killed = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
    await proc.exited;
    clearTimeout(killed);
  }
}

function enabledModules(loaded: LoadedConfig): ModuleName[] {
  return MODULE_NAMES.filter((m) => loaded.config.modules[m].enabled);
}

/** Expire every enabled module's old hosts, lifting their bans. */
async function expireJob(loaded: LoadedConfig, modules: readonly ModuleName[], log: (m: string) => void): Promise<void> {
  const root = loaded.paths.root;
  if (loaded.config.fleet) {
    const fleet = new FleetStore(fleetDbPath(loaded.paths));
    try {
      const now = Math.floor(Date.now() / 1000);
      fleet.prune(now - FLEET_HISTORY_S, now);
    } finally {
      fleet.close();
    }
  }
  for (const module of modules) {
    const ctx = openModule(root, module);
    try {
      const r = await expireModule(ctx, Math.floor(Date.now() / 1000));
      if (r.expired.length) log(`expire ${module}: forgot ${r.expired.length} hosts, lifted ${r.lifted.length} bans`);
    } finally {
      await ctx.close();
    }
  }
}

/** Everything that can be wrong in files is found before anything is touched (exit 2). */
export function checkBeforeStart(loaded: LoadedConfig): { modules: ModuleName[]; lists: Lists } {
  const modules = enabledModules(loaded);
  for (const m of modules) loadRules(m, loaded.paths.rulesDir, loaded.config.modules[m].mode);
  dynLists(loaded.config);
  if (loaded.config.fleet) {
    loadFleetKey(loaded.paths.fleetKey);
    if (loaded.config.fleet.tlsCa) readFleetCa(loaded.config.fleet.tlsCa);
  }
  return { modules, lists: Lists.load(loaded.paths.whitelist, loaded.paths.blacklist) };
}

export async function runMaster(rootOption: string | undefined, log: (message: string) => void): Promise<void> {
  const loaded = loadConfig(rootOption);
  const { config, paths } = loaded;
  const checked = checkBeforeStart(loaded);
  const modules = checked.modules;
  let lists = checked.lists;

  mkdirSync(paths.runDir, { recursive: true });
  const running = runningMaster(paths.runDir);
  if (running) throw new WatcherError(`watcher is already running (pid ${running}); use "watcher restart" to start it afresh`);
  removeFile(pidFile(paths.runDir));
  const fd = openSync(pidFile(paths.runDir), "wx");
  writeSync(fd, `${process.pid}\n`);
  closeSync(fd);

  let firewall: Firewall | null = null;
  let fleet: FleetNode | null = null;
  const children = new Map<ModuleName, ModuleChild>();
  const tasks: { name: string; schedule: string; task: ScheduledTask }[] = [];
  const status: MasterStatus = {
    pid: process.pid,
    startedAt: Math.floor(Date.now() / 1000),
    root: paths.root,
    backend: "",
    ready: false,
    restore: { backend: "", sets: [], lifted: [], seconds: 0 },
    modules: {},
    jobs: [],
  };
  const masterFile = statusFile(paths.runDir, "master");
  const writeStatus = () => {
    for (const [m, c] of children) {
      status.modules[m] = { pid: c.proc?.pid ?? null, startedAt: c.startedAt && Math.floor(c.startedAt / 1000), restarts: c.restarts, lastExit: c.lastExit };
    }
    status.jobs = tasks.map((t) => ({ name: t.name, schedule: t.schedule, next: t.task.getNextRun()?.toISOString() ?? null }));
    writeJson(masterFile, status);
  };

  try {
    firewall = createFirewall(config, paths);
    status.backend = firewall.backend;
    status.restore = await restoreFirewall(loaded, firewall, modules, lists, Math.floor(Date.now() / 1000));
    const entries = status.restore.sets.reduce((n, s) => n + s.entries, 0);
    log(`restored ${entries} entries into ${status.restore.sets.length} sets (${firewall.backend}) in ${status.restore.seconds.toFixed(3)} s`);
    for (const a of status.restore.lifted) log(`lifted the ban of ${a}: it is protected now`);
    if (config.fleet) {
      fleet = new FleetNode(loaded, firewall, modules, () => lists, log);
      await fleet.start();
      log(`fleet: node ${config.fleet.node} joining through ${redactUrl(config.fleet.url)}`);
    }
    for (const m of modules) ensureFifo(fifoPath(paths.fifoBase, m), { mode: config.fifoMode, group: config.fifoGroup });
    for (const m of modules) {
      const child = new ModuleChild(m, paths.root, log, writeStatus);
      children.set(m, child);
      child.start();
    }
    const expire = cron.schedule(config.schedule.expire, () => expireJob(loaded, modules, log).catch((e) => log(`expire failed: ${(e as Error).message}`)));
    tasks.push({ name: "expire", schedule: config.schedule.expire, task: expire });
    if (dynLists(config).some((l) => l.enabled)) {
      const dynload = cron.schedule(config.schedule.dynload, () =>
        refreshLists(loaded, firewall!, lists, { force: false, now: Math.floor(Date.now() / 1000) })
          .then((outcomes) => {
            for (const o of outcomes) if (o.result === "loaded" || o.result === "failed") log(`dynload ${o.list}: ${o.result === "loaded" ? `${o.entries} networks` : o.error}`);
          })
          .catch((e) => log(`dynload failed: ${(e as Error).message}`)),
      );
      tasks.push({ name: "dynload", schedule: config.schedule.dynload, task: dynload });
    }
    status.ready = true;
    writeStatus();
    log(`running: ${modules.join(", ") || "no modules enabled"} (pid ${process.pid})`);

    await new Promise<void>((resolve) => {
      process.once("SIGTERM", () => resolve());
      process.once("SIGINT", () => resolve());
      process.on("SIGHUP", () => {
        void (async () => {
          try {
            lists = Lists.load(paths.whitelist, paths.blacklist);
            status.restore = await restoreFirewall(loaded, firewall!, modules, lists, Math.floor(Date.now() / 1000));
            for (const a of status.restore.lifted) log(`lifted the ban of ${a}: it is protected now`);
            for (const c of children.values()) c.signal("SIGHUP");
            fleet?.resync();
            writeStatus();
            log("SIGHUP: lists reloaded and restored; modules reload config and rules");
          } catch (e) {
            log(`SIGHUP: nothing changed: ${(e as Error).message}`);
          }
        })();
      });
    });
    log("stopping");
  } finally {
    for (const t of tasks) t.task.stop();
    await Promise.all([...children.values()].map((c) => c.stop()));
    await fleet?.close();
    if (firewall) {
      if (!config.keepFirewallOnStop) await firewall.teardown();
      await firewall.close();
    }
    removeFile(masterFile);
    if (readJson<number>(pidFile(paths.runDir)) === process.pid) removeFile(pidFile(paths.runDir));
    log("stopped");
  }
}
