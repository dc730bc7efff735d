/**
 * watcher.log, the log of a master started in the background: `start` opens it as the
 * master's stdout and stderr, and the modules inherit them. logrotate renames it, then signals
 * the master (SIGUSR1, or SIGHUP); the master and each module open the name again onto fd 1
 * and 2, so the next line lands in a new file and none is lost (copytruncate would lose the
 * lines written between its copy and its truncation). A process whose stderr is not that file
 * (systemd's journal, a terminal) has nothing to reopen and ignores the signal.
 */
import { closeSync, fstatSync, openSync, readlinkSync, statSync, writeSync } from "node:fs";
import { libc } from "./libc";

/** Are fd 2 and the file named `path` one file? */
function stderrIs(path: string): boolean {
  try {
    const [a, b] = [fstatSync(2), statSync(path)];
    return a.isFile() && a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

/** Is fd 2 the file `path` was before logrotate renamed it (`path.1`, `path-20261206`)? */
function stderrWasRotatedFrom(path: string): boolean {
  try {
    const target = readlinkSync("/proc/self/fd/2");
    return fstatSync(2).isFile() && (target.startsWith(`${path}.`) || target.startsWith(`${path}-`));
  } catch {
    return false;
  }
}

/* Bun writes process.stderr through a copy of fd 2 that dup2 cannot reach: the log lines of a
   process that writes watcher.log go to fd 2 itself (a regular file: a write never waits) */
let writesLogFile = false;

/* lines a full (or failing) log disk took, said in the first line written after it */
let lost = 0;
let lostWhy = "";

/**
 * One line of the process's log: to watcher.log when this process writes it, else to stderr.
 * Never throws: a log disk that is full must not end a module (its bans go on; the master would
 * even skip the restart of one that died of it), so a line that cannot be written is counted, and
 * the next one that can be says how many went.
 */
export function writeLogLine(line: string): void {
  if (!writesLogFile) {
    process.stderr.write(line);
    return;
  }
  try {
    if (lost > 0) writeSync(2, `${line.slice(0, line.indexOf(": ") + 2)}${lost} log ${lost === 1 ? "line" : "lines"} lost before this one (${lostWhy})\n`);
    lost = 0;
    writeSync(2, line);
  } catch (e) {
    lost++;
    lostWhy = (e as Error).message;
  }
}

/**
 * When fd 2 is `path`, open it again by name onto fd 1 and 2 at each SIGUSR1 and SIGHUP
 * (after logrotate moved it away); when fd 2 is what `path` was before a rotation, at once too.
 * Returns whether this process writes that file.
 */
export function reopenOnSignal(path: string, log: (message: string) => void): boolean {
  const rotated = !stderrIs(path) && stderrWasRotatedFrom(path);
  if (!rotated && !stderrIs(path)) return false;
  writesLogFile = true;
  const reopen = (signal: string) => {
    try {
      const fd = openSync(path, "a", 0o640);
      try {
        if (libc().dup2(fd, 1) < 0 || libc().dup2(fd, 2) < 0) throw new Error("dup2(2) failed");
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      log(`${signal}: cannot open ${path} again (${(e as Error).message}); writing on in the file it was`);
      return;
    }
    if (signal === "SIGUSR1") log(`${signal}: ${path} opened again`);
  };
  process.on("SIGUSR1", () => reopen("SIGUSR1"));
  process.on("SIGHUP", () => reopen("SIGHUP"));
  /* rotated while this process started (its signal came before this handler): follow the name now */
  if (rotated) reopen("SIGUSR1");
  return true;
}
