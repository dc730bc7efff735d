/**
 * Waiting in tests: for a condition, never for a guessed time. The limits here only end a wait
 * that would never end (a hang); they are no budget for speed. A 2-core machine with other work
 * on it runs this suite several times slower than an idle one, and must pass all the same.
 */
import { setDefaultTimeout } from "bun:test";
import { closeSync, constants, openSync } from "node:fs";

/** How long one test may run before it counts as hung. */
export const TEST_HANG_MS = 180_000;

/** How long waitFor polls by default before it counts the condition as never coming. */
export const WAIT_HANG_MS = 60_000;

/**
 * For the tests of the calling file: a per-test timeout that catches hangs only. (Bun's own
 * default is 5 s, and `timeout` under [test] in bunfig.toml is not read by bun test.)
 */
export function timeoutForHangsOnly(ms = TEST_HANG_MS): void {
  setDefaultTimeout(ms);
}

/** Is someone reading this FIFO? A non-blocking open for writing succeeds only then (ENXIO otherwise, or ENOENT before it exists). */
export function fifoHasReader(path: string): boolean {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    return true;
  } catch {
    return false;
  }
}

/** Poll `check` every `every` ms until it returns something truthy, and return that; after `ms`, fail naming `what`. */
export async function waitFor<T>(what: string, check: () => T | null | undefined | false | Promise<T | null | undefined | false>, ms = WAIT_HANG_MS, every = 25): Promise<T> {
  const since = Date.now();
  for (const until = since + ms; Date.now() < until; await Bun.sleep(every)) {
    const v = await check();
    if (v) return v;
  }
  throw new Error(`timed out waiting for ${what} (${Math.round((Date.now() - since) / 1000)} s)`);
}
