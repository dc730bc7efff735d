/**
 * The master keeps every module FIFO open for its whole life (read-only, non-blocking, never
 * read), with the largest pipe buffer the kernel allows. While a module restarts, the FIFO so
 * still has a reader: the logger's writes wait in the pipe (up to /proc/sys/fs/pipe-max-size,
 * 1 MiB by default) for the new module instead of failing with EPIPE, which makes rsyslog and
 * syslog-ng drop lines.
 */
import { closeSync, constants, fstatSync, openSync, statSync } from "node:fs";
import { growPipe } from "../core/pipes";

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

  /** Let go of `path`: its module reads other sources now, and writers must learn that no one reads it. */
  release(path: string): void {
    const held = this.fds.get(path);
    if (held === undefined) return;
    closeSync(held);
    this.fds.delete(path);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
