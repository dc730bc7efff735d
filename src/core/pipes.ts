/**
 * A pipe's buffer, grown to the largest the kernel allows: the master's hold on each module FIFO
 * (master/fifos.ts) and a module's FIFO made again (pipeline/read.ts) use it, so that a logger's
 * lines wait in the pipe while no module reads.
 */
import { readFileSync } from "node:fs";
import { libc } from "./libc";

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
