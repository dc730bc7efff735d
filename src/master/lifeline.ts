/**
 * Modules end with their master. The master forks each module with one end of a pipe as fd 3
 * and keeps the other end, never writing to it; the module (`--supervised`) reads fd 3 and, at
 * its end of file, sends itself SIGTERM: the loop finishes the chunk in hand and exits. The
 * kernel closes the master's end however the master ends, kill -9 included, so no module ever
 * outlives it to go on banning beside the next master's modules.
 */

/** The hidden option of `watcher module` that says: fd 3 is the master's lifeline. */
export const SUPERVISED_OPTION = "supervised";
const LIFELINE_FD = 3;

/**
 * The exit status of a supervised module that asks to be started again at once: a SIGHUP changed
 * what it reads only when it starts (its sources, its DNS client: modules/start-settings.ts). The
 * master starts it again without pause and counts no restart (EX_TEMPFAIL of sysexits.h).
 */
export const RESTART_EXIT = 75;

/** Bun.spawn's stdio for a supervised module: its own stdout and stderr, and the lifeline. */
export const SUPERVISED_STDIO = ["ignore", "inherit", "inherit", "pipe"] as const;

/**
 * In a supervised module: SIGTERM to itself once the master is gone. The lifeline is a socket,
 * which Bun reads on the main thread's epoll: no pool thread waits on it for the module's life.
 */
export function followMaster(log: (message: string) => void): void {
  const stop = (why: string) => {
    log(`the master is gone (${why}): stopping`);
    process.kill(process.pid, "SIGTERM");
  };
  void (async () => {
    for await (const _ of Bun.file(LIFELINE_FD).stream()) {
      /* the master never writes; reading is how the end is seen */
    }
  })().then(
    () => stop("its end of the pipe closed"),
    (e: Error) => stop(e.message),
  );
}
