/**
 * Writing all of some bytes to a descriptor another process reads, which may be non-blocking
 * (a FIFO we opened so, a pipe the reader made so): a full pipe says EAGAIN, and the rest is
 * written once the reader has drained some of it.
 */
import { writeSync } from "node:fs";

/** Write `bytes` to `fd` whole; errors other than a full pipe are thrown as they come. */
export function writeWhole(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) {
    try {
      off += writeSync(fd, bytes, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Bun.sleepSync(1); /* the reader is busy: the pipe is full */
    }
  }
}
