/**
 * Module processes of one root that no live master supervises: left by a master that was
 * killed (kill -9, OOM) before modules watched their master, or run by hand on the root's FIFOs
 * and databases. A new master ends them before it starts its own, so one set of modules ever
 * reads a root's FIFOs and writes its databases; `stop` and `status` find them the same way.
 */
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { MODULE_NAME } from "../core/config";
import { isAlive } from "../core/runfiles";

export interface ModuleProcess {
  pid: number;
  module: string;
}

/** One process's arguments, or null when it is gone or not ours to read. */
function argvOf(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return text.split("\0").slice(0, -1);
  } catch {
    return null;
  }
}

/**
 * Is this `watcher --root ROOT module X` reading the configured sources (what a master forks)?
 * `--stdin` and `--file` runs read their own input and are left alone.
 */
export function moduleOfRoot(argv: readonly string[], root: string): string | null {
  let rootArg: string | null = null;
  const positional: string[] = [];
  /* the executable, and the script when run from source (bun src/cli.ts) */
  const first = /\.[cm]?[jt]s$/.test(argv[1] ?? "") ? 2 : 1;
  for (let i = first; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--root") rootArg = argv[++i] ?? null;
    else if (a.startsWith("--root=")) rootArg = a.slice("--root=".length);
    else if (a === "--stdin" || a === "--file" || a.startsWith("--file=") || a === "--help" || a === "-h") return null;
    else if (!a.startsWith("-")) positional.push(a);
  }
  const module = positional[1]?.toUpperCase() ?? "";
  if (positional[0] !== "module" || !MODULE_NAME.test(module)) return null;
  return rootArg !== null && resolve(rootArg) === root ? module : null;
}

/** Every live module process of `root` (not this process). */
export function moduleProcesses(root: string): ModuleProcess[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return []; /* no /proc: nothing to find */
  }
  const found: ModuleProcess[] = [];
  for (const e of entries) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    const argv = argvOf(pid);
    const module = argv && moduleOfRoot(argv, root);
    if (module && isAlive(pid)) found.push({ pid, module });
  }
  return found;
}

/** How long a module may take to end after SIGTERM before it gets SIGKILL (a batch in flight commits first). */
export const STOP_GRACE_MS = 10000;

/** How long a process may take to vanish after SIGKILL (one stuck in the kernel may never). */
const KILL_WAIT_MS = 5000;

/**
 * SIGTERM to each (a module finishes the chunk in hand and closes its database), SIGKILL to
 * those still there after `graceMs`; returns those that would not go (none, normally).
 */
export async function endProcesses(procs: readonly ModuleProcess[], graceMs: number): Promise<ModuleProcess[]> {
  const signal = (p: ModuleProcess, sig: NodeJS.Signals) => {
    try {
      process.kill(p.pid, sig);
    } catch {
      /* gone already */
    }
  };
  for (const p of procs) signal(p, "SIGTERM");
  let killed = false;
  for (const start = Date.now(); procs.some((p) => isAlive(p.pid)); await Bun.sleep(25)) {
    if (!killed && Date.now() - start > graceMs) {
      for (const p of procs) if (isAlive(p.pid)) signal(p, "SIGKILL");
      killed = true;
    }
    if (Date.now() - start > graceMs + KILL_WAIT_MS) break;
  }
  return procs.filter((p) => isAlive(p.pid));
}

/** End the module processes of `root` that no master runs: what was found, and what would not go. */
export async function endLeftovers(root: string, graceMs: number): Promise<{ found: ModuleProcess[]; stuck: ModuleProcess[] }> {
  const found = moduleProcesses(root);
  return { found, stuck: found.length ? await endProcesses(found, graceMs) : [] };
}

export function describeProcesses(procs: readonly ModuleProcess[]): string {
  return procs.map((p) => `${p.module} (pid ${p.pid})`).join(", ");
}
