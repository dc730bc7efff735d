/**
 * The master (`watcher start --foreground`, what systemd runs): validate everything, take the
 * root's lock (and, with a kernel backend, the network namespace's firewall), end module
 * processes no master runs, restore the firewall, create the FIFOs and keep them open, fork
 * one `watcher module X` per enabled module (each ends with the master: see lifeline.ts) and
 * restart a crashed one (at once, then with backoff), run the scheduled jobs, keep a status
 * file for `watcher status`, and serve the Prometheus metrics on `[metrics] listen` when set
 * (that address only). SIGTERM stops the modules and exits; SIGHUP reloads lists (and makes
 * the modules reload config, rules and lists) without losing counts; SIGUSR1 and SIGHUP open
 * watcher.log again after logrotate moved it (core/log-file.ts), in the master and the modules.
 */
import { closeSync, mkdirSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import cron, { type ScheduledTask } from "node-cron";
import { enabledModules, type LoadedConfig, loadConfig, type ModuleName, moduleConfig, parseListen, selfCommand } from "../core/config";
import { WatcherError } from "../core/errors";
import { createFirewall, resolveBackend } from "../core/firewall";
import type { Firewall } from "../core/firewall/types";
import { redactUrl } from "../fleet/link";
import { Lists, ownAddresses } from "../core/lists";
import { holdLock, readJson, removeFile, runningMaster, writeFileAtomic, writeJson } from "../core/runfiles";
import { emptySwitchedOffLists, refreshLists } from "../dynload/load";
import { dynLists } from "../dynload/lists";
import { checkLoaded, refuseProblems } from "../ops/check";
import { ensureFifo, fifoAccess } from "../pipeline/read";
import { expire } from "../ops/expire";
import { claimFirewall, type FirewallClaim, forgetFirewallRoot } from "./claim";
import { FifoKeeper } from "./fifos";
import { FleetNode } from "../fleet/node";
import { describeProcesses, endLeftovers, STOP_GRACE_MS } from "./leftovers";
import { RESTART_EXIT, SUPERVISED_OPTION, SUPERVISED_STDIO } from "./lifeline";
import { restoreFirewall } from "./restore";
import { fifoPath, lockFile, masterLogFile, pidFile, statusFile } from "../core/layout";
import { reopenOnSignal } from "../core/log-file";
import { formatDuration, nowSeconds } from "../core/duration";
import { METRICS_CONTENT_TYPE, renderMetrics } from "../ops/metrics";
import { gatherStatus, type MasterStatus } from "./control";

const MAX_BACKOFF_S = 60;
/** how often a signal held for a starting module looks whether it is caught yet */
const HELD_SIGNAL_POLL_MS = 50;
/**
 * How often the master reads this machine's addresses (a netlink dump, ~0.1 ms) and looks whether
 * watcher's rules are all still in the firewall (Firewall.intact: nftables, two listings; ipset,
 * five short tool runs): the longest an address gained or a flushed rule goes unnoticed.
 */
const MACHINE_CHECK_MS = 2000;

/**
 * A module's environment: ours, with JavaScriptCore's last compiler tier (FTL) off unless the
 * operator set it. A module's loop runs as fast in the tier below, and FTL's compilations cost
 * peak RSS: 2026-12-06, `module LG --stdin` of bench/gen-corpus.ts's 1M lines took 2.6-3.4 s of
 * CPU either way (3 runs each) and peaked at 82 MiB against 92-93; 1M new attackers 81 against 87.
 */
export function moduleEnvironment(): Record<string, string | undefined> {
  return { BUN_JSC_useFTLJIT: "0", ...process.env };
}

class ModuleChild {
  proc: Bun.Subprocess | null = null;
  startedAt: number | null = null;
  restarts = 0;
  lastExit: number | null = null;
  /** seconds before the next restart: none the first time (the logger's lines wait in the FIFO), then 1, 2, 4 ... */
  private backoff = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  stopping = false;
  /** signals for a module still starting: delivered once it catches them (before, SIGHUP or SIGUSR1 would end it) */
  private readonly held = new Set<NodeJS.Signals>();
  private heldTimer: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly module: ModuleName,
    private readonly root: string,
    private readonly log: (m: string) => void,
    private readonly changed: () => void,
    /** before a new process: its FIFO may have been made again by the one that ended (FifoKeeper.refresh) */
    private readonly beforeStart: () => void = () => {},
  ) {}

  start(): void {
    this.timer = null;
    const proc = Bun.spawn([...selfCommand(), "--root", this.root, "module", this.module, `--${SUPERVISED_OPTION}`], { stdio: [...SUPERVISED_STDIO], env: moduleEnvironment() });
    /* our end of the module's lifeline: never written, closed by the kernel if we die */
    const lifeline = proc.stdio[3];
    this.proc = proc;
    this.startedAt = Date.now();
    this.log(`module ${this.module} started (pid ${proc.pid})`);
    this.changed();
    void proc.exited.then((code) => {
      if (typeof lifeline === "number") closeSync(lifeline); /* Bun leaves it open */
      this.exited(code);
    });
  }

  private exited(code: number): void {
    this.lastExit = code;
    this.proc = null;
    /* the next process reads config, rules and lists afresh: nothing held is owed to it */
    this.releaseHeld();
    if (this.stopping) return;
    this.beforeStart();
    /* a SIGHUP changed what the module reads only at start: at once, and no restart after a failure */
    if (code === RESTART_EXIT) {
      this.log(`module ${this.module} exited to read its new settings; starting it now`);
      this.start();
      return;
    }
    /* a module that ran a while starts over at once */
    if (this.startedAt && Date.now() - this.startedAt > MAX_BACKOFF_S * 1000) this.backoff = 0;
    /* the restart is set before anything is said: nothing said may keep it from coming */
    this.timer = setTimeout(() => this.start(), this.backoff * 1000);
    this.restarts++;
    this.log(`module ${this.module} exited with status ${code}; restarting ${this.backoff ? `in ${this.backoff}s` : "now"}`);
    this.backoff = this.backoff === 0 ? 1 : Math.min(MAX_BACKOFF_S, this.backoff * 2);
    this.changed();
  }

  signal(sig: NodeJS.Signals): void {
    const proc = this.proc;
    if (!proc) return;
    if (this.catches(proc, sig)) {
      proc.kill(sig);
      return;
    }
    this.held.add(sig);
    this.heldTimer ??= setInterval(() => {
      if (this.proc !== proc) return;
      for (const s of this.held) {
        if (!this.catches(proc, s)) continue;
        proc.kill(s);
        this.held.delete(s);
      }
      if (this.held.size === 0) this.releaseHeld();
    }, HELD_SIGNAL_POLL_MS);
  }

  /** The process catches `sig` (Linux: its SigCgt mask in /proc), so the signal cannot end it: while Bun loads, nothing is caught yet. */
  private catches(proc: Bun.Subprocess, sig: NodeJS.Signals): boolean {
    let status: string;
    try {
      status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
    } catch {
      return false; /* gone: its exit is on its way */
    }
    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return mask !== undefined && ((BigInt(`0x${mask}`) >> BigInt(constants.signals[sig] - 1)) & 1n) === 1n;
  }

  private releaseHeld(): void {
    this.held.clear();
    if (this.heldTimer) clearInterval(this.heldTimer);
    this.heldTimer = null;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.releaseHeld();
    const proc = this.proc;
    if (!proc) return;
    proc.kill("SIGTERM");
    const killed = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
    await proc.exited;
    clearTimeout(killed);
  }
}

/** The scheduled expiry (see ops/expire), said in the log where it forgot something. */
async function expireJob(loaded: LoadedConfig, log: (m: string) => void): Promise<void> {
  for (const r of await expire(loaded, { now: nowSeconds(), dryRun: false })) {
    if (r.expired.length) log(`expire ${r.module}: forgot ${r.expired.length} hosts`);
    if (r.eventsExpired) log(`expire ${r.module}: deleted ${r.eventsExpired} events older than ${formatDuration(r.eventRetention)}${r.bytesFreed ? `, ${r.bytesFreed} bytes given back` : ""}`);
  }
}

/**
 * Everything that can be wrong in files, and a firewall another root owns, is found before
 * anything is touched (exit 2, every problem listed: see ops/check.ts).
 */
export function checkBeforeStart(loaded: LoadedConfig): { modules: ModuleName[]; lists: Lists } {
  const report = checkLoaded(loaded);
  refuseProblems(report, "watcher cannot start");
  return { modules: report.modules, lists: report.lists! };
}

/* what a reload cannot change in a running master: these take a restart */
const RESTART_SETTINGS = ["firewall", "fleet", "metrics", "fifoBase", "dbDir", "logDir", "runDir", "fifoMode", "fifoGroup", "keepFirewallOnStop"] as const;

/**
 * The master's own settings read again on SIGHUP: the schedules and the blocklists. A file with
 * a problem (all of them said, as `watcher check` would) keeps the settings in force, and
 * `in force` comes back; settings that need a restart are named, against what the master
 * `started` with, at every SIGHUP until the restart (and not once the file is back to them).
 */
function settingsAfterReload(started: LoadedConfig, inForce: LoadedConfig, log: (message: string) => void): LoadedConfig {
  const problems: string[] = [];
  let next: LoadedConfig;
  try {
    next = loadConfig(inForce.paths.root);
    checkLoaded(next, problems);
  } catch (e) {
    problems.push((e as Error).message);
  }
  if (problems.length) {
    log(`SIGHUP: kept the master's settings in force (schedules, blocklists): ${problems.join("; ")}`);
    return inForce;
  }
  const changed = (key: (typeof RESTART_SETTINGS)[number]) => JSON.stringify(started.config[key]) !== JSON.stringify(next!.config[key]);
  const modulesChanged = enabledModules(started.config).join() !== enabledModules(next!.config).join();
  const waiting = [...(modulesChanged ? ["the modules enabled"] : []), ...RESTART_SETTINGS.filter(changed)];
  if (waiting.length) log(`SIGHUP: ${waiting.join(", ")} changed: they take effect at the next restart`);
  return next!;
}

export async function runMaster(rootOption: string | undefined, log: (message: string) => void): Promise<void> {
  const loaded = loadConfig(rootOption);
  const { paths } = loaded;
  const checked = checkBeforeStart(loaded);

  mkdirSync(paths.runDir, { recursive: true });
  /* held while this process lives: the kernel lets go of it however we end */
  const lock = holdLock(lockFile(paths.runDir));
  if (!lock) throw new WatcherError(`watcher is already running (pid ${runningMaster(paths.runDir) ?? "?"}); use "watcher restart" to start it afresh`);
  try {
    try {
      lock.write(`${process.pid}\n`);
    } catch (e) {
      log(`cannot write ${lock.path} (${(e as Error).message}); status and stop find this master by its pid file`);
    }
    /* modules of a master that was killed, or run by hand: one set of modules per root */
    const left = await endLeftovers(paths.root, STOP_GRACE_MS);
    if (left.found.length) log(`ended module processes no master ran: ${describeProcesses(left.found)}`);
    if (left.stuck.length) throw new WatcherError(`module processes of this root would not end (${describeProcesses(left.stuck)}); not starting a second set`);
    await supervise(loaded, checked, log);
  } finally {
    lock.release();
  }
}

async function supervise(started: LoadedConfig, checked: ReturnType<typeof checkBeforeStart>, log: (message: string) => void): Promise<void> {
  const { config, paths } = started;
  /* the settings in force: the scheduled jobs and the blocklists follow a SIGHUP (settingsAfterReload) */
  let loaded = started;
  const modules = checked.modules;
  let lists = checked.lists;
  reopenOnSignal(masterLogFile(paths), log);
  try {
    writeFileAtomic(pidFile(paths.runDir), `${process.pid}\n`);
  } catch (e) {
    log(`cannot write the pid file (${(e as Error).message}); status and stop find this master by ${lockFile(paths.runDir)}`);
  }

  let claim: FirewallClaim | null = null;
  let firewall: Firewall | null = null;
  let fleet: FleetNode | null = null;
  let metrics: Bun.Server<undefined> | null = null;
  const fifos = new FifoKeeper();
  const children = new Map<ModuleName, ModuleChild>();
  /* logrotate's, at any time: each module opens watcher.log again itself (under systemd, nothing to do) */
  process.on("SIGUSR1", () => {
    for (const c of children.values()) c.signal("SIGUSR1");
  });
  const tasks: { name: string; schedule: string; task: ScheduledTask }[] = [];
  const status: MasterStatus = {
    pid: process.pid,
    startedAt: nowSeconds(),
    root: paths.root,
    backend: "",
    ready: false,
    restore: { backend: "", sets: [], lifted: [], refusals: [], seconds: 0 },
    modules: {},
    jobs: [],
  };
  /* aborted at stop: a blocklist download in flight ends then, not at its timeout */
  const stopping = new AbortController();
  let downloading = false;
  /* (re)made at start and after each SIGHUP, from the settings in force */
  const scheduleJobs = () => {
    for (const t of tasks.splice(0)) void t.task.destroy();
    const { schedule } = loaded.config;
    const expire = cron.schedule(schedule.expire, () => expireJob(loaded, log).catch((e) => log(`expire failed: ${(e as Error).message}`)));
    tasks.push({ name: "expire", schedule: schedule.expire, task: expire });
    if (dynLists(loaded.config).some((l) => l.enabled)) {
      const dynload = cron.schedule(schedule.dynload, () => {
        /* one run at a time: a server that hangs until its timeout must not have runs pile up */
        if (downloading) return;
        downloading = true;
        refreshLists(loaded, firewall!, lists, { force: false, now: nowSeconds(), stop: stopping.signal })
          .then((outcomes) => {
            for (const o of outcomes) if (o.result === "loaded" || o.result === "failed") log(`dynload ${o.list}: ${o.result === "loaded" ? `${o.entries} networks` : o.error}`);
          })
          .catch((e) => log(`dynload failed: ${(e as Error).message}`))
          .finally(() => (downloading = false));
      });
      tasks.push({ name: "dynload", schedule: schedule.dynload, task: dynload });
    }
  };
  const masterFile = statusFile(paths.runDir, "master");
  const writeStatus = () => {
    for (const [m, c] of children) {
      status.modules[m] = { pid: c.proc?.pid ?? null, startedAt: c.startedAt && Math.floor(c.startedAt / 1000), restarts: c.restarts, lastExit: c.lastExit };
    }
    status.jobs = tasks.map((t) => ({ name: t.name, schedule: t.schedule, next: t.task.getNextRun()?.toISOString() ?? null }));
    /* a full disk or a read-only run folder is said once, and once more when it is over */
    const written = writeJson(masterFile, status, (why) => {
      if (!statusError) log(`${why}; watcher status shows what was written last until it can be written again`);
      statusError = why;
    });
    if (written && statusError) {
      log(`${masterFile} is written again`);
      statusError = null;
    }
  };
  let statusError: string | null = null;
  /*
   * This machine's addresses, looked at every few seconds: one it gains (DHCP, a link coming up)
   * leaves the blacklist and a blocklist's sets and loses its bans at once, as a SIGHUP would do
   * for a whitelist entry (the modules look for themselves: their loop's timer). And watcher's
   * rules in the firewall: a flushed ruleset is put back with every set, as at start.
   */
  let machineWatch: ReturnType<typeof setInterval> | null = null;
  let watching = false;
  /* one look at a time: an address change and a firewall that lost watcher's hook both restore everything */
  const watchMachine = async () => {
    if (watching) return;
    watching = true;
    try {
      /* a status file that could not be written (a full or read-only run folder) is tried again */
      if (statusError) writeStatus();
      const own = lists.refreshOwn(ownAddresses());
      const hooked = await firewall!.intact();
      if (!own && hooked) return;
      if (own) {
        log(`this machine's addresses are now ${lists.own.entries().join(", ")}: restoring the sets without them`);
        for (const l of lists.leftOut) log(l);
      }
      if (!hooked) log(`watcher's rules are gone from the firewall (nft flush ruleset, iptables -F, a firewall service reloaded): restoring them with every set`);
      status.restore = await restoreFirewall(loaded, firewall!, modules, lists, nowSeconds());
      if (!hooked) log(`restored ${status.restore.sets.reduce((n, s) => n + s.entries, 0)} entries into ${status.restore.sets.length} sets in ${status.restore.seconds.toFixed(3)} s`);
      for (const a of status.restore.lifted) log(`lifted the ban of ${a}: it is protected now`);
      writeStatus();
    } catch (e) {
      log(`restoring the firewall failed: ${(e as Error).message}; trying again in ${MACHINE_CHECK_MS / 1000} s`);
    } finally {
      watching = false;
    }
  };

  try {
    if (resolveBackend(config.firewall) !== "dryrun") claim = claimFirewall(paths.root);
    firewall = createFirewall(config, paths);
    status.backend = firewall.backend;
    status.restore = await restoreFirewall(loaded, firewall, modules, lists, nowSeconds(), (progress) => {
      status.restoring = progress;
      writeStatus();
    });
    status.restoring = null;
    const entries = status.restore.sets.reduce((n, s) => n + s.entries, 0);
    log(`restored ${entries} entries into ${status.restore.sets.length} sets (${firewall.backend}) in ${status.restore.seconds.toFixed(3)} s`);
    for (const a of status.restore.lifted) log(`lifted the ban of ${a}: it is protected now`);
    for (const r of status.restore.refusals) log(r);
    for (const l of lists.leftOut) log(l);
    for (const list of await emptySwitchedOffLists(loaded, firewall)) log(`emptied the set of blocklist ${list}: it is switched off or gone from the configuration`);
    if (config.fleet) {
      fleet = new FleetNode(loaded, firewall, modules, () => lists, log);
      await fleet.start();
      log(`fleet: node ${config.fleet.node} joining through ${redactUrl(config.fleet.url)}`);
    }
    /* while a module restarts, the logger's lines wait in the pipe; a module that reads no FIFO has none held (inject then says so) */
    const fifoModules = modules.filter((m) => readsFifo(loaded, m));
    for (const m of fifoModules) {
      const fifo = fifoPath(paths.fifoBase, m);
      ensureFifo(fifo, fifoAccess(config));
      const size = fifos.keep(fifo);
      if (m === fifoModules[0]) log(`FIFOs held open with ${size}-byte pipe buffers`);
    }
    if (config.metrics) {
      metrics = serveMetrics(config.metrics.listen, paths.root, log);
      log(`metrics: http://${config.metrics.listen}/metrics`);
    }
    for (const m of modules) {
      const child = new ModuleChild(m, paths.root, log, writeStatus, () => {
        if (readsFifo(loaded, m)) fifos.refresh(fifoPath(paths.fifoBase, m));
      });
      children.set(m, child);
      child.start();
    }
    scheduleJobs();
    machineWatch = setInterval(() => void watchMachine(), MACHINE_CHECK_MS);
    status.ready = true;
    writeStatus();
    log(`running: ${modules.join(", ") || "no modules enabled"} (pid ${process.pid})`);

    await new Promise<void>((resolve) => {
      process.once("SIGTERM", () => resolve());
      process.once("SIGINT", () => resolve());
      process.on("SIGHUP", () => {
        void (async () => {
          try {
            const next = settingsAfterReload(started, loaded, log);
            /* a module whose sources changed starts again by itself (RESTART_EXIT): its FIFO is held, or let go, first */
            const refifoed = modules.filter((m) => readsFifo(loaded, m) !== readsFifo(next, m));
            if (next !== loaded) {
              loaded = next;
              scheduleJobs();
              log(`SIGHUP: the master's settings reloaded: ${tasks.map((t) => `${t.name} "${t.schedule}"`).join(", ")}; blocklists ${dynLists(loaded.config).filter((l) => l.enabled).map((l) => l.name).join(", ") || "none"}`);
            }
            lists = Lists.of(paths);
            status.restore = await restoreFirewall(loaded, firewall!, modules, lists, nowSeconds());
            for (const a of status.restore.lifted) log(`lifted the ban of ${a}: it is protected now`);
            for (const r of status.restore.refusals) log(r);
            for (const l of lists.leftOut) log(l);
            for (const list of await emptySwitchedOffLists(loaded, firewall!)) log(`SIGHUP: emptied the set of blocklist ${list}: it is switched off or gone from the configuration`);
            for (const m of refifoed) {
              const fifo = fifoPath(paths.fifoBase, m);
              if (readsFifo(loaded, m)) {
                ensureFifo(fifo, fifoAccess(loaded.config));
                fifos.refresh(fifo);
              } else fifos.release(fifo);
            }
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
    stopping.abort();
    if (machineWatch) clearInterval(machineWatch);
    for (const t of tasks) t.task.stop();
    await metrics?.stop(true);
    await Promise.all([...children.values()].map((c) => c.stop()));
    await fleet?.close();
    if (firewall) {
      if (!config.keepFirewallOnStop) {
        await firewall.teardown();
        forgetFirewallRoot(paths.root);
      }
      await firewall.close();
    }
    claim?.release();
    fifos.close();
    removeFile(masterFile);
    if (readJson<number>(pidFile(paths.runDir)) === process.pid) removeFile(pidFile(paths.runDir));
    log("stopped");
  }
}

/** Whether the module's sources hold its FIFO. */
function readsFifo(loaded: LoadedConfig, module: ModuleName): boolean {
  return moduleConfig(loaded.config, module).sources.some((s) => s.type === "fifo");
}

/**
 * GET /metrics on the configured address only: the text of `watcher metrics`, gathered afresh
 * for each scrape from the status files and the kernel sets (a scrape every few seconds costs
 * a few small reads). A port in use stops the start, before the modules run.
 */
function serveMetrics(listen: string, root: string, log: (message: string) => void): Bun.Server<undefined> {
  const { hostname, port } = parseListen(listen)!;
  try {
    return Bun.serve({
      hostname,
      port,
      fetch: async (req) => {
        if (new URL(req.url).pathname !== "/metrics") return new Response("watcher: the metrics are at /metrics\n", { status: 404 });
        if (req.method !== "GET" && req.method !== "HEAD") return new Response("GET only\n", { status: 405, headers: { Allow: "GET, HEAD" } });
        try {
          return new Response(renderMetrics(await gatherStatus(root)), { headers: { "Content-Type": METRICS_CONTENT_TYPE } });
        } catch (e) {
          log(`metrics: ${(e as Error).message}`);
          return new Response(`watcher: ${(e as Error).message}\n`, { status: 500 });
        }
      },
    });
  } catch (e) {
    throw new WatcherError(`[metrics] listen = ${JSON.stringify(listen)}: cannot serve there: ${(e as Error).message}`);
  }
}
