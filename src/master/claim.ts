/**
 * One root per firewall. Every root uses the same kernel names (table `inet watcher`, sets
 * `watcher_*`), and separate tables would not help either: one table's accept does not stop
 * another's drop, so a whitelist would stop protecting. A kernel firewall belongs to a network
 * namespace, so the master of a root with a kernel backend claims its namespace's firewall for
 * its whole life: an exclusive flock on `/run/watcher/firewall-net-<inode>.lock`, holding
 * `{root, pid}`. The kernel lets go when the master dies; a dry-run root never claims.
 */
import { existsSync, readlinkSync, readFileSync, realpathSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../core/errors";
import { type HeldLock, holdLock, isAlive, isLocked, removeFile, writeFileAtomic } from "../core/runfiles";

const CLAIM_DIR = "/run/watcher";

export interface FirewallOwner {
  root: string;
  pid: number;
}

/** This process's network namespace, as the kernel names it: `net:[4026531840]`. */
export function networkNamespace(): string {
  try {
    return readlinkSync("/proc/self/ns/net");
  } catch {
    return "net:[host]"; /* no /proc: one namespace is all we can know of */
  }
}

function claimFile(): string {
  const ns = networkNamespace();
  return join(CLAIM_DIR, `firewall-net-${/\[(\d+)\]/.exec(ns)?.[1] ?? "host"}.lock`);
}

function readOwner(path: string): FirewallOwner | null {
  try {
    const o = JSON.parse(readFileSync(path, "utf8")) as Partial<FirewallOwner>;
    return typeof o.root === "string" && Number.isInteger(o.pid) ? { root: o.root, pid: o.pid! } : null;
  } catch {
    return null;
  }
}

/** The live master of another root that holds this namespace's firewall, else null. */
export function otherFirewallOwner(root: string): FirewallOwner | null {
  const path = claimFile();
  if (!isLocked(path)) return null;
  /* the holder writes who it is right after taking the lock */
  let owner: FirewallOwner | null = null;
  for (let i = 0; i < 20 && !owner; i++) {
    owner = readOwner(path);
    if (!owner) Bun.sleepSync(10);
  }
  if (!owner) return { root: "(unknown)", pid: 0 };
  return owner.root !== root && isAlive(owner.pid) ? owner : null;
}

function refusal(owner: FirewallOwner, what: string): ConfigError {
  return new ConfigError(
    `${what}: the firewall of this network namespace (${networkNamespace()}) is watcher's for root ${owner.root} ` +
      `(master pid ${owner.pid}); one root per firewall: stop that one first ("watcher --root ${owner.root} stop"), ` +
      `or give this root firewall = "dryrun"`,
  );
}

/**
 * Refuse (exit 2) `what` when another root's live master owns this namespace's kernel firewall:
 * start, stop --remove-firewall, and every command that changes the firewall. A dry-run root
 * touches no kernel and claims none.
 */
export function checkFirewallFree(backend: string, root: string, what: string): void {
  if (backend === "dryrun") return;
  const owner = otherFirewallOwner(root);
  if (owner) throw refusal(owner, what);
}

export interface FirewallClaim {
  release(): void;
}

/**
 * The root whose master set up this namespace's firewall last, kept after that master stops:
 * its sets stay for its next start (keepFirewallOnStop), and another root's `stop
 * --remove-firewall` (an uninstall tried on a test root) must not take them away.
 */
function setterFile(): string {
  return claimFile().replace(/\.lock$/, ".root");
}

/** Whether two paths name one root (a symlink to it included); a path not there is no root. */
function sameRoot(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** After this root's rules and sets are gone: no root's firewall is kept here any more. */
export function forgetFirewallRoot(root: string): void {
  const setter = readOwner(setterFile());
  if (setter && sameRoot(setter.root, root)) removeFile(setterFile());
}

/**
 * Refuse (exit 2) removing this namespace's firewall when another root, still on disk, set it
 * up and only stopped: the rules and sets are that root's to remove.
 */
export function checkFirewallRemovable(backend: string, root: string): void {
  if (backend === "dryrun") return;
  const setter = readOwner(setterFile());
  if (!setter || !existsSync(join(setter.root, "etc")) || sameRoot(setter.root, root)) return;
  throw new ConfigError(
    `the firewall stays: the rules and sets of this network namespace (${networkNamespace()}) are those root ${setter.root} set up ` +
      `and kept when it stopped, for its next start; remove them from there ("watcher --root ${setter.root} stop --remove-firewall")`,
  );
}

/** Claim this namespace's firewall for `root` until released or until this process ends. */
export function claimFirewall(root: string): FirewallClaim {
  const path = claimFile();
  let held: HeldLock | null;
  try {
    held = holdLock(path);
  } catch (e) {
    throw new ConfigError(`cannot claim the firewall (${path}): ${(e as Error).message}`);
  }
  if (!held) throw refusal(otherFirewallOwner(root) ?? { root: "(unknown)", pid: 0 }, "watcher did not start");
  const owner = `${JSON.stringify({ root, pid: process.pid } satisfies FirewallOwner)}\n`;
  try {
    held.write(owner);
    writeFileAtomic(setterFile(), owner);
  } catch {
    /* a full /run: the claim holds all the same; others cannot name its owner */
  }
  const lock = held;
  return {
    release() {
      /* delete it while holding it: whoever takes the name next makes a new file (see holdLock) */
      try {
        unlinkSync(lock.path);
      } catch {
        /* gone already */
      }
      lock.release();
    },
  };
}
