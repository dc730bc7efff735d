/**
 * The master keeps every module FIFO open for its whole life (read-only, non-blocking, never
 * read), with the largest pipe buffer the kernel allows. While a module restarts, the FIFO so
 * still has a reader: the logger's writes wait in the pipe (up to /proc/sys/fs/pipe-max-size,
 * 1 MiB by default) for the new module instead of failing with EPIPE, which makes rsyslog and
 * syslog-ng drop lines.
 */
import { libc } from "../core/libc";
import { closeSync, constants, fstatSync, openSync, readFileSync, statSync } from "node:fs";

const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
/** what a pipe holds by default (16 pages) */
const DEFAULT_PIPE_SIZE = 65536;

function pipeFcntl(fd: number, cmd: number, arg: number): number {
  return libc().fcntl(fd, cmd, arg);
}

function pipeMaxSize(): number {
  try {
    const n = Number(readFileSync("/proc/sys/fs/pipe-max-size", "utf8").trim());
    return Number.isInteger(n) && n > 0 ? n : DEFAULT_PIPE_SIZE;
  } catch {
    return DEFAULT_PIPE_SIZE;
  }
}

/**
 * Grow the pipe behind `fd` as far as the kernel lets this process (a user over its pipe
 * quota gets less): the bytes it holds now.
 */
export function growPipe(fd: number): number {
  for (let size = pipeMaxSize(); size > DEFAULT_PIPE_SIZE; size = Math.floor(size / 2)) {
    if (pipeFcntl(fd, F_SETPIPE_SZ, size) > 0) break;
  }
  return pipeFcntl(fd, F_GETPIPE_SZ, 0);
}

export class FifoKeeper {
  /** by path: the fd held open */
  private readonly fds = new Map<string, number>();

  /** Hold `path` (an existing FIFO) open; the size of its pipe buffer in bytes. */
  keep(path: string): number {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    this.fds.set(path, fd);
    return growPipe(fd);
  }

  /**
   * Hold the FIFO that `path` names now, when it is another than the one held: a module makes its
   * FIFO again when it was removed (pipeline/read.ts), and the new one needs its keeper while that
   * module restarts. Quiet when the path is no FIFO (the module says so).
   */
  refresh(path: string): void {
    const held = this.fds.get(path);
    try {
      const now = statSync(path);
      if (!now.isFIFO()) return;
      if (held !== undefined) {
        const old = fstatSync(held);
        if (old.ino === now.ino && old.dev === now.dev) return;
        closeSync(held);
      }
      this.keep(path);
    } catch {
      /* gone again: the module makes it */
    }
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
