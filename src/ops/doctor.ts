/**
 * `watcher doctor`: is the running watcher doing its job? Every module alive and reading, the
 * logger feeding each FIFO, the kernel sets holding what the databases say (drift, which `--fix`
 * repairs), sets not near their limit, room on the disk, the name servers answering (DNS
 * classes) and Redis answering (fleet). `watcher check` looks at the files; this looks at the
 * processes, the kernel and the network.
 */
import type { ConfigFiles } from "../core/config-files";
import { existsSync, readdirSync, readFileSync, statfsSync, statSync } from "node:fs";
import { enabledModules, type LoadedConfig, type ModuleName, moduleConfig, type SourceConfig } from "../core/config";
import { DnsClient, reverseName, systemNameServers } from "../core/dns";
import { formatDuration, nowSeconds } from "../core/duration";
import { createFirewall, resolveBackend } from "../core/firewall";
import type { Firewall, ListedElement } from "../core/firewall/types";
import { parseCidr, parseIp } from "../core/ip";
import { fifoPath, masterLogFile } from "../core/layout";
import { Lists } from "../core/lists";
import { processState } from "../core/runfiles";
import { FleetLink, redactUrl } from "../fleet/link";
import { FLEET_SET } from "../fleet/protocol";
import { checkFirewallFree } from "../master/claim";
import { gatherStatus, SET_NEARLY_FULL } from "../master/control";
import { describeProcesses } from "../master/leftovers";
import { count } from "./check";
import { liftProtectedBans, planFirewall, type ProtectedBan } from "../master/restore";

/** One thing doctor looked at: `ok`, or a finding. */
export interface DoctorCheck {
  readonly check: string;
  readonly ok: boolean;
  readonly message: string;
}

export interface DoctorReport {
  readonly root: string;
  readonly healthy: boolean;
  readonly checks: DoctorCheck[];
  /** what --fix changed, one line per set; empty without --fix or when there was nothing to fix */
  readonly fixed: string[];
}

export interface DoctorOptions {
  /** repair the drift between the databases and the kernel sets */
  readonly fix: boolean;
  /** a module that read no line for this many seconds is a finding (its logger may not feed it) */
  readonly idle: number;
  /** where the lists are read (controlConfig: the disk, or the configuration in force) */
  readonly files?: ConfigFiles;
}

/** A module whose status file is older than this has stopped working (it writes it every 2 s). */
const STALE_STATUS_S = 30;
/** Less free room than this (bytes, or share of the disk) is a finding: the databases and the log need it. */
const MIN_FREE_BYTES = 100 * 1024 * 1024;
const MIN_FREE_SHARE = 0.05;
/** A ban this close to its end may already have lapsed in the kernel, or not yet: neither is drift. */
const LAPSING_S = 3;
/** Drift is confirmed by a second look this much later: a ban is recorded before the kernel has it. */
const SECOND_LOOK_MS = 1000;

/** One set's drift: recorded bans the kernel lacks, kernel elements no database knows, recorded bans now protected. */
interface Drift {
  readonly set: string;
  readonly missing: { address: string; timeout: number }[];
  readonly unknown: string[];
  readonly protectedBans: ProtectedBan[];
}

const ago = (seconds: number) => `${formatDuration(Math.max(0, seconds))} ago`;

function checkModules(loaded: LoadedConfig, status: Awaited<ReturnType<typeof gatherStatus>>, idle: number, now: number): DoctorCheck[] {
  const checks: DoctorCheck[] = [];
  const { config, paths } = loaded;
  const running = new Set(status.modules.map((m) => m.module));
  for (const m of enabledModules(config)) {
    if (!running.has(m)) checks.push({ check: `module ${m}`, ok: false, message: `enabled in ${paths.configFile} but not run by the master: "watcher restart" starts it` });
  }
  for (const m of status.modules) {
    const check = `module ${m.module}`;
    const restarts = m.restarts ? `; restarted ${count(m.restarts, "time")}` : "";
    if (!m.running) {
      checks.push({ check, ok: false, message: `not running${m.lastExit !== null ? ` (last exit status ${m.lastExit})` : ""}${restarts}: the master restarts it, with a growing pause; see ${masterLogFile(paths)}` });
      continue;
    }
    const state = processState(m.pid);
    if (state === "T" || state === "t") {
      checks.push({ check, ok: false, message: `pid ${m.pid} is stopped (by a signal or a debugger): it reads nothing; "kill -CONT ${m.pid}" or "watcher restart"` });
      continue;
    }
    /* a module writes its status once it has set its firewall up, then every 2 s */
    const lastWord = m.updatedAt || m.startedAt;
    if (now - lastWord > STALE_STATUS_S) {
      checks.push({ check, ok: false, message: `pid ${m.pid} has not written its status for ${formatDuration(now - lastWord)}: it is stuck; "watcher restart"` });
      continue;
    }
    if (m.configError) checks.push({ check: `${check} configuration`, ok: false, message: `runs on its last good configuration: ${m.configError}` });
    if (m.pending.error) checks.push({ check: `${check} writes`, ok: false, message: `${m.pending.hosts} hosts and ${m.pending.events} events wait in memory, not written: ${m.pending.error}` });
    checks.push({ check, ok: true, message: `pid ${m.pid}, ${count(m.lines, "line")}, ${count(m.affairs, "affair")}, ${count(m.bans, "ban")} since it started ${ago(now - m.startedAt)}${restarts}` });
    checks.push(checkFeed(loaded, m.module as ModuleName, m.sources ?? null, m.lastLineAt ?? null, m.startedAt, idle, now));
  }
  return checks;
}

/**
 * Pure-FTPd writes the client's reverse name where its address goes unless it runs with -H
 * (Debian: DontResolve): a name is the text the address's owner chooses, and one that reads as an
 * address (a PTR record "198.51.100.7") would have watcher count that address. A finding for each
 * pure-ftpd process of this machine that runs without it, when FT is enabled.
 */
function checkPureFtpd(loaded: LoadedConfig): DoctorCheck[] {
  if (!enabledModules(loaded.config).includes("FT")) return [];
  const resolving: number[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    let args: string[];
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "pure-ftpd") continue;
      args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
      continue; /* gone meanwhile */
    }
    const dontResolve = args.some((a) => a === "--dontresolve" || /^-[A-Za-z]*H[A-Za-z]*$/.test(a));
    if (!dontResolve) resolving.push(Number(pid));
  }
  if (resolving.length === 0) return [];
  return [{ check: "pure-ftpd", ok: false, message: `pid ${resolving.join(", ")} runs without -H: its lines name the client's reverse name, which the client's owner writes, and one that reads as an address would be counted against that address; run it with -H (Debian: echo yes > /etc/pure-ftpd/conf/DontResolve)` }];
}

/**
 * Lines seen recently: the logger feeds the FIFO (or the module's other sources give lines). The
 * sources are those the module says it reads (`reading`), else the configuration's: an edit not
 * yet loaded by a SIGHUP is not read.
 */
function checkFeed(loaded: LoadedConfig, module: ModuleName, reading: readonly SourceConfig[] | null, lastLineAt: number | null, startedAt: number, idle: number, now: number): DoctorCheck {
  const sources = reading ?? moduleConfig(loaded.config, module).sources;
  const fifo = fifoPath(loaded.paths.fifoBase, module);
  const check = `input ${module}`;
  const fromFifo = sources.some((s) => s.type === "fifo");
  if (fromFifo && !(existsSync(fifo) && statSync(fifo).isFIFO())) return { check, ok: false, message: `${fifo} is not a FIFO: "watcher restart" makes it` };
  const missing = sources.flatMap((s) => (s.type === "file" && !(existsSync(s.path) && statSync(s.path).isFile()) ? [s.path] : []));
  if (missing.length) return { check, ok: false, message: `${missing.join(", ")} not there, or no file: nothing is read from it until a file is there (a typo in sources?)` };
  const where = sources.map((s) => (s.type === "fifo" ? fifo : s.type === "file" ? s.path : s.type)).join(", ");
  const since = lastLineAt ?? startedAt;
  if (now - since > idle) {
    const what = lastLineAt === null ? `no line since the module started ${ago(now - startedAt)}` : `no line for ${formatDuration(now - lastLineAt)}`;
    const hint = fromFifo ? `: is the logger writing to it? ("watcher syslog-config" prints its snippet)` : "";
    return { check, ok: false, message: `${what} from ${where}${hint}` };
  }
  return { check, ok: true, message: lastLineAt === null ? `${where}: no line yet (started ${ago(now - startedAt)})` : `${where}: last line ${ago(now - lastLineAt)}` };
}

/** An element's address in canonical text, as the plan writes it. */
function canonical(address: string): string {
  return (address.includes("/") ? parseCidr(address)?.text : parseIp(address)?.text) ?? address;
}

/** The kernel's ban sets against the databases' bans (module sets and the fleet set). */
async function findDrift(loaded: LoadedConfig, firewall: Firewall, modules: readonly ModuleName[], lists: Lists): Promise<Drift[]> {
  const now = nowSeconds();
  const plan = planFirewall(loaded, modules, lists, now, true);
  const drift: Drift[] = [];
  for (const { spec, elements } of plan.sets.filter((s) => s.spec.kind === "addresses")) {
    const kernel = new Map<string, ListedElement>((await firewall.list(spec.name)).map((e) => [canonical(e.address), e]));
    const protectedBans = plan.protectedBans.filter((b) => b.set === spec.name);
    const known = new Set([...elements.map((e) => e.address), ...protectedBans.map((b) => canonical(b.address))]);
    const missing = elements.filter((e) => e.timeout > LAPSING_S && !kernel.has(e.address));
    const unknown = [...kernel].filter(([a, e]) => !known.has(a) && (e.timeout === 0 || e.timeout > LAPSING_S)).map(([a]) => a);
    if (missing.length || unknown.length || protectedBans.length) drift.push({ set: spec.name, missing, unknown, protectedBans });
  }
  return drift;
}

/** Drift seen in both looks: what a ban in flight (recorded, not yet in the kernel) shows for a moment is left out. */
function confirmed(first: Drift[], second: Drift[]): Drift[] {
  return second
    .map((d) => {
      const before = first.find((f) => f.set === d.set);
      const seen = (list: readonly string[]) => new Set(list);
      const missing = seen(before?.missing.map((e) => e.address) ?? []);
      const unknown = seen(before?.unknown ?? []);
      const guarded = seen(before?.protectedBans.map((b) => b.address) ?? []);
      return { set: d.set, missing: d.missing.filter((e) => missing.has(e.address)), unknown: d.unknown.filter((a) => unknown.has(a)), protectedBans: d.protectedBans.filter((b) => guarded.has(b.address)) };
    })
    .filter((d) => d.missing.length || d.unknown.length || d.protectedBans.length);
}

const sample = (list: readonly string[]) => `${list.slice(0, 5).join(", ")}${list.length > 5 ? `, and ${list.length - 5} more` : ""}`;

function describeDrift(d: Drift): string {
  const parts: string[] = [];
  if (d.missing.length) parts.push(`${count(d.missing.length, "recorded ban")} missing from the kernel (${sample(d.missing.map((e) => e.address))})`);
  if (d.unknown.length) parts.push(`${count(d.unknown.length, "address", "addresses")} in the kernel that no database knows (${sample(d.unknown)})`);
  if (d.protectedBans.length) parts.push(`${count(d.protectedBans.length, "recorded ban")} of addresses protected now (${sample(d.protectedBans.map((b) => b.address))})`);
  return `${parts.join("; ")}: "watcher doctor --fix" repairs it`;
}

/** Put the missing bans back, take the unknown elements out, lift the bans of protected addresses. */
async function repair(loaded: LoadedConfig, firewall: Firewall, drift: readonly Drift[]): Promise<string[]> {
  checkFirewallFree(firewall.backend, loaded.paths.root, "doctor --fix");
  const fixed: string[] = [];
  for (const d of drift) {
    const done: string[] = [];
    if (d.missing.length) {
      const outcome = await firewall.ban(d.set, d.missing);
      done.push(`put back ${count(d.missing.length - outcome.refused.length, "ban")}${outcome.refused.length ? ` (the kernel refused ${sample(outcome.refused.map((r) => `${r.address}: ${r.reason}`))})` : ""}`);
    }
    const out = [...d.unknown, ...d.protectedBans.map((b) => b.address)];
    if (out.length) await firewall.unban(d.set, out);
    if (d.unknown.length) done.push(`removed ${count(d.unknown.length, "unknown address", "unknown addresses")}`);
    if (d.protectedBans.length) {
      liftProtectedBans(loaded, d.protectedBans, nowSeconds());
      done.push(`lifted ${count(d.protectedBans.length, "ban")} of protected addresses`);
    }
    fixed.push(`${d.set}: ${done.join(", ")}`);
  }
  return fixed;
}

function checkFirewall(status: Awaited<ReturnType<typeof gatherStatus>>): DoctorCheck[] {
  return (status.firewall ?? []).map(({ set, entries, full }) =>
    full !== null && full >= SET_NEARLY_FULL
      ? { check: `set ${set}`, ok: false, message: `${Math.round(full * 100)}% full (${entries} entries): the kernel refuses bans beyond its limit; shorten banTime or maxBanTime, or run "watcher expire"` }
      : { check: `set ${set}`, ok: true, message: `${count(entries, "entry", "entries")}${full !== null ? ` (${(full * 100).toFixed(1)}% of its limit)` : ""}` },
  );
}

function checkDisk(loaded: LoadedConfig): DoctorCheck[] {
  const { dbDir, logDir, runDir } = loaded.paths;
  const seen = new Set<number>();
  const checks: DoctorCheck[] = [];
  for (const dir of [dbDir, logDir, runDir]) {
    if (!existsSync(dir)) continue;
    const device = statSync(dir).dev;
    if (seen.has(device)) continue;
    seen.add(device);
    const fs = statfsSync(dir);
    const free = fs.bavail * fs.bsize;
    const share = fs.blocks ? fs.bavail / fs.blocks : 1;
    const room = `${(free / 1024 ** 3).toFixed(free < 1024 ** 3 ? 3 : 1)} GiB free (${(share * 100).toFixed(1)}%)`;
    const low = free < MIN_FREE_BYTES || share < MIN_FREE_SHARE;
    checks.push({ check: `disk ${dir}`, ok: !low, message: low ? `${room}: the databases and the log need room; when it is full, writes wait in memory` : room });
  }
  return checks;
}

/** Each name server the modules' DNS classes ask: does it answer (a reverse lookup of 127.0.0.1)? */
async function checkDns(loaded: LoadedConfig): Promise<DoctorCheck[]> {
  const { config } = loaded;
  const classifying = enabledModules(config).filter((m) => moduleConfig(config, m).dns);
  if (classifying.length === 0) return [];
  const servers = config.dns.servers.length ? config.dns.servers : systemNameServers();
  if (servers.length === 0) return [{ check: "dns", ok: false, message: `modules ${classifying.join(", ")} classify by DNS, but no name server is set (dns.servers) or in /etc/resolv.conf` }];
  const probe = reverseName(parseIp("127.0.0.1")!);
  return Promise.all(
    servers.map(async (server) => {
      const client = new DnsClient({ servers: [server], timeout: config.dns.timeout, retries: config.dns.retries, log: () => {} });
      const started = performance.now();
      try {
        const answer = await client.query(probe, 12 /* PTR */);
        const ms = Math.round(performance.now() - started);
        return answer
          ? { check: `dns ${server}`, ok: true, message: `answers (${ms} ms)` }
          : { check: `dns ${server}`, ok: false, message: `no answer within ${config.dns.timeout} s (${count(config.dns.retries + 1, "try", "tries")}): hosts stay UNKNOWN, nothing is preset` };
      } finally {
        client.close();
      }
    }),
  );
}

/** Redis in fleet mode: connect as the master does, and PING. */
async function checkRedis(loaded: LoadedConfig): Promise<DoctorCheck[]> {
  const fleet = loaded.config.fleet;
  if (!fleet) return [];
  const check = `fleet ${redactUrl(fleet.url)}`;
  let link: FleetLink;
  try {
    link = new FleetLink(fleet);
  } catch (e) {
    return [{ check, ok: false, message: (e as Error).message }];
  }
  try {
    const started = performance.now();
    const connected = await link.start();
    const pong = connected ? await link.run((c) => c.send("PING", [])).catch((e: Error) => e.message) : null;
    const ms = Math.round(performance.now() - started);
    if (pong === "PONG") return [{ check, ok: true, message: `Redis answers (${ms} ms)` }];
    return [{ check, ok: false, message: `Redis does not answer: ${pong ?? link.lastError ?? "no connection"}; bans are not shared until it does` }];
  } finally {
    link.close();
  }
}

export async function runDoctor(loaded: LoadedConfig, o: DoctorOptions): Promise<DoctorReport> {
  const { config, paths } = loaded;
  const now = nowSeconds();
  const status = await gatherStatus(paths.root);
  const checks: DoctorCheck[] = [];
  const fixed: string[] = [];
  if (!status.running) {
    const strays = status.strayModules.length ? `; module processes no master runs: ${describeProcesses(status.strayModules)}; "watcher stop" ends them` : "";
    checks.push({ check: "master", ok: false, message: `watcher is not running: "watcher start"${strays}` });
  } else {
    checks.push({ check: "master", ok: true, message: `pid ${status.pid}, ${status.backend}, started ${ago(now - (status.startedAt ?? now))}` });
    if (status.configError) checks.push({ check: "configuration", ok: false, message: `${status.configError} (the running watcher goes on with what it loaded; "watcher check" lists every problem)` });
    checks.push(...checkModules(loaded, status, o.idle, now));
    checks.push(...checkPureFtpd(loaded));
    const backend = resolveBackend(config.firewall);
    if (status.backend !== backend) {
      checks.push({ check: "drift", ok: false, message: `the master runs ${status.backend}, watcher.toml now says ${backend}: not compared; "watcher restart" applies the setting` });
    } else {
      const modules = status.modules.map((m) => m.module as ModuleName);
      const firewall = createFirewall(config, paths);
      try {
        const lists = Lists.of(paths, o.files);
        if (lists.leftOut.length) checks.push({ check: "blacklist", ok: false, message: `${lists.leftOut.join("; ")}: narrow the line, so that it drops what it was meant to` });
        let drift = await findDrift(loaded, firewall, modules, lists);
        if (drift.length) {
          await Bun.sleep(SECOND_LOOK_MS);
          drift = confirmed(drift, await findDrift(loaded, firewall, modules, lists));
        }
        if (drift.length && o.fix) {
          fixed.push(...(await repair(loaded, firewall, drift)));
          drift = await findDrift(loaded, firewall, modules, lists);
        }
        const compared = [...modules.map((m) => `watcher_${m}`), ...(config.fleet ? [FLEET_SET] : [])];
        for (const set of compared) {
          const d = drift.find((x) => x.set === set);
          checks.push(d ? { check: `drift ${set}`, ok: false, message: describeDrift(d) } : { check: `drift ${set}`, ok: true, message: "the kernel holds what the database records" });
        }
      } catch (e) {
        checks.push({ check: "drift", ok: false, message: `not compared: ${(e as Error).message}` });
      } finally {
        await firewall.close();
      }
      checks.push(...checkFirewall(status));
    }
  }
  checks.push(...checkDisk(loaded));
  checks.push(...(await checkDns(loaded)));
  checks.push(...(await checkRedis(loaded)));
  return { root: paths.root, healthy: checks.every((c) => c.ok), checks, fixed };
}
