/**
 * Run files under `<root>/var/run`: the master's pid file and the JSON status files the master
 * and each module keep current, which `status` reads. Written atomically (temp file + rename).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ModuleFleetStats } from "../modules/fleet";
import type { PendingStats } from "../modules/writes";
import type { ClassifierStats } from "./dns";

export function pidFile(runDir: string): string {
  return join(runDir, "watcher.pid");
}

export function statusFile(runDir: string, name: string): string {
  return join(runDir, `${name}.json`);
}

/** Write a whole file or nothing: a reader (or a crash) never sees it half written. */
export function writeFileAtomic(path: string, text: string): void {
  mkdirSync(join(path, ".."), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export function writeJson(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return null;
  }
}

export function removeFile(path: string): void {
  rmSync(path, { force: true });
}

/** A process that exited but was not reaped yet (a zombie: state Z in /proc) is not alive. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; /* no /proc: signal 0 is all we know */
  }
}

/** The pid in the pid file if that process is alive, else null (a stale file is not a master). */
export function runningMaster(runDir: string): number | null {
  const file = pidFile(runDir);
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : null;
}

/** What a module writes about itself every few seconds. */
export interface ModuleStatus {
  module: string;
  pid: number;
  startedAt: number;
  updatedAt: number;
  lines: number;
  matched: number;
  affairs: number;
  bans: number;
  /** DNS lookups, cache hits and dropped requests; null when the module does not classify */
  dns: ClassifierStats | null;
  /** decisions published and waiting, affairs shared; null without [fleet] */
  fleet: ModuleFleetStats | null;
  /** writes waiting in memory (the disk was full); `error` is null while the database is written */
  pending: PendingStats;
}
