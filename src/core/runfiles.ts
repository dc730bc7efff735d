/**
 * Run files under `<root>/var/run`: the master's lock and pid file, and the JSON status files
 * the master and each module keep current, which `status` reads. Written atomically (temp file
 * + rename); a status that cannot be written (full disk, read-only folder) is a returned
 * failure, never an exception.
 *
 * The master holds an exclusive flock(2) on `master.lock` for its whole life. The kernel lets
 * go of it however the master ends (kill -9 included), so a held lock means a live master of
 * this root, and a free one means none, whatever a pid file says.
 */
import { read } from "bun:ffi";
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { WatcherError } from "./errors";
import { lockFile, pidFile } from "./layout";
import { libc } from "./libc";

/** Write a whole file or nothing: a reader (or a crash) never sees it half written. */
export function writeFileAtomic(path: string, text: string): void {
  mkdirSync(join(path, ".."), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      /* nothing was written, or the folder is read-only: nothing to take back */
    }
    throw e;
  }
}

/**
 * Write a JSON file atomically; false (and `onError` told why, in one line) when it cannot be
 * written: a full disk or a read-only folder must not stop the process that reports.
 */
export function writeJson(path: string, value: unknown, onError?: (message: string) => void): boolean {
  try {
    writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
    return true;
  } catch (e) {
    onError?.(`cannot write ${path}: ${(e as Error).message}`);
    return false;
  }
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

/** The state letter of /proc/<pid>/stat (R, S, D, T stopped, Z zombie ...), or null without it. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.charAt(stat.lastIndexOf(")") + 2);
  } catch {
    return null;
  }
}

/** A process that exited but was not reaped yet (a zombie: state Z in /proc) is not alive. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  return processState(pid) !== "Z"; /* without /proc, signal 0 is all we know */
}

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = 11;

/** flock(2) without waiting: 0 when taken, else the errno (EWOULDBLOCK: someone holds it). */
function flock(fd: number, operation: number): number {
  if (libc().flock(fd, operation | LOCK_NB) === 0) return 0;
  const at = libc().__errno_location();
  return at ? read.i32(at) : EWOULDBLOCK;
}

/** A file held locked (flock, exclusive) until released or until this process ends. */
export interface HeldLock {
  readonly path: string;
  readonly fd: number;
  /** replace what the file says (the holder's pid, its root) */
  write(text: string): void;
  release(): void;
}

/**
 * Take the exclusive lock of `path` (created if need be), or null when another process holds
 * it. A reader testing the lock (isLocked) holds it shared for a moment, so a few tries are made.
 */
export function holdLock(path: string, tries = 20): HeldLock | null {
  try {
    mkdirSync(join(path, ".."), { recursive: true });
  } catch (e) {
    throw new WatcherError(`cannot make the folder of ${path}: ${(e as Error).message}`);
  }
  for (let i = 0; i < tries; i++) {
    if (i > 0) Bun.sleepSync(25);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    } catch (e) {
      throw new WatcherError(`cannot open ${path} to lock it: ${(e as Error).message}`);
    }
    const errno = flock(fd, LOCK_EX);
    if (errno !== 0) {
      closeSync(fd);
      if (errno !== EWOULDBLOCK) throw new WatcherError(`cannot lock ${path}: flock(2) failed with errno ${errno}`);
      continue;
    }
    /* a holder that let go by deleting the file left us a lock on a name nobody uses: again */
    if (!sameFile(fd, path)) {
      closeSync(fd);
      continue;
    }
    return {
      path,
      fd,
      write(text: string) {
        ftruncateSync(fd, 0);
        writeSync(fd, text, 0);
      },
      release() {
        closeSync(fd);
      },
    };
  }
  return null;
}

function sameFile(fd: number, path: string): boolean {
  try {
    const [a, b] = [fstatSync(fd), statSync(path)];
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

/** Is `path` locked by a live process? null when there is no such file. */
export function isLocked(path: string): boolean | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch {
    return null;
  }
  try {
    const errno = flock(fd, LOCK_SH);
    if (errno === 0) flock(fd, LOCK_UN);
    return errno !== 0;
  } finally {
    closeSync(fd);
  }
}

function readPid(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Does this live pid run `watcher ... start --foreground` (a master)? True when /proc cannot say. */
function looksLikeMaster(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return argv.includes("start") && argv.includes("--foreground");
  } catch {
    return isAlive(pid);
  }
}

/**
 * The pid of this run folder's live master, else null. The lock decides (a pid file left by a
 * kill -9 may name a pid reused by another process); without a lock file (a master of a watcher
 * from before the lock, still running after an upgrade) the pid file does, if its pid is alive
 * and runs a master.
 */
export function runningMaster(runDir: string): number | null {
  const locked = isLocked(lockFile(runDir));
  if (locked === false) return null;
  if (locked === null) {
    const pid = readPid(pidFile(runDir));
    return pid && isAlive(pid) && looksLikeMaster(pid) ? pid : null;
  }
  /* held: the master writes its pid into the lock file right after taking it */
  for (let i = 0; i < 20; i++, Bun.sleepSync(10)) {
    const pid = readPid(lockFile(runDir));
    if (pid) return pid;
  }
  return readPid(pidFile(runDir));
}

