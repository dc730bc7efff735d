/**
 * Modules end with their master. The master forks each module with one end of a pipe as fd 3
 * and keeps the other end, never writing to it; the module (`--supervised`) reads fd 3 and, at
 * its end of file, sends itself SIGTERM: the loop finishes the chunk in hand and exits. The
 * kernel closes the master's end however the master ends, kill -9 included, so no module ever
 * outlives it to go on banning beside the next master's modules.
 */
import { createReadStream } from "node:fs";

/** The hidden option of `watcher module` that says: fd 3 is the master's lifeline. */
export const SUPERVISED_OPTION = "supervised";
const LIFELINE_FD = 3;

/** Bun.spawn's stdio for a supervised module: its own stdout and stderr, and the lifeline. */
export const SUPERVISED_STDIO = ["ignore", "inherit", "inherit", "pipe"] as const;

/** In a supervised module: SIGTERM to itself once the master is gone. */
export function followMaster(log: (message: string) => void): void {
  const lifeline = createReadStream("", { fd: LIFELINE_FD });
  let gone = false;
  const stop = (why: string) => {
    if (gone) return;
    gone = true;
    log(`the master is gone (${why}): stopping`);
    process.kill(process.pid, "SIGTERM");
  };
  lifeline.on("data", () => {}); /* the master never writes; reading is how the end is seen */
  lifeline.once("end", () => stop("its end of the pipe closed"));
  lifeline.once("error", (e) => stop(e.message));
}
