/**
 * The master's hold on the module FIFOs (master/fifos.ts), with real FIFOs: a FIFO made again at
 * its path (a module does so after a stray rm) is held from then on, so a logger can open it for
 * writing while no module reads it.
 */
import { afterAll, expect, test } from "bun:test";
import { closeSync, constants, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FifoKeeper } from "../../src/master/fifos";

const dir = mkdtempSync(join(tmpdir(), "watcher-fifos-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mkfifo = (path: string) => expect(Bun.spawnSync(["mkfifo", "-m", "0600", path]).exitCode).toBe(0);
/** what a logger meets when it opens the FIFO to write: ENXIO while nothing reads it */
function openForWriting(path: string): string {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    return "opened";
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? "error";
  }
}

test("a FIFO made again at its path is held once refreshed; the same FIFO or a missing path change nothing", () => {
  const path = join(dir, "WatchLG");
  mkfifo(path);
  const keeper = new FifoKeeper();
  keeper.keep(path);
  expect(openForWriting(path)).toBe("opened");

  rmSync(path);
  keeper.refresh(path); /* gone: nothing to hold, and no error */
  mkfifo(path);
  expect(openForWriting(path)).toBe("ENXIO");
  keeper.refresh(path);
  expect(openForWriting(path)).toBe("opened");
  keeper.refresh(path); /* the one it holds: kept as it is */
  expect(openForWriting(path)).toBe("opened");
  keeper.close();
  expect(openForWriting(path)).toBe("ENXIO");
});
