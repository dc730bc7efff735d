/**
 * Where a module's lines come from. Each source yields raw byte chunks; the loop splits
 * them (split.ts). A FIFO is opened read-write so that loggers can come and go without an
 * EOF; a file is followed across rename and copytruncate rotation; stdin ends at EOF.
 */
import { chmodSync, chownSync, closeSync, constants, existsSync, fstatSync, promises as fsp, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { type Config, fifoGroupId, type ModuleName, type Paths, type SourceConfig } from "../core/config";
import { growPipe } from "../core/pipes";
import { readJson, writeJson } from "../core/runfiles";
import { WatcherError } from "../core/errors";
import { fifoPath, journalCursorFile, positionFileFor } from "../core/layout";
import { SourceFormat } from "./formats";
import { type JournalEntry, journalLine } from "./split";

const CHUNK = 64 * 1024;
const NL = 10;

export interface FifoAccess {
  /** octal text, "0620" */
  readonly mode: string;
  readonly group: string;
}

/** The mode and group the configuration gives the FIFOs. */
export function fifoAccess(config: Pick<Config, "fifoMode" | "fifoGroup">): FifoAccess {
  return { mode: config.fifoMode, group: config.fifoGroup };
}

/**
 * Create the module's FIFO if missing; with `access` (the master), also set its mode and group:
 * writing into it is a way to ban addresses, so only root and the logger's group may.
 */
export function ensureFifo(path: string, access?: FifoAccess): void {
  if (existsSync(path)) {
    if (!statSync(path).isFIFO()) throw new WatcherError(`${path} exists but is not a FIFO; move it away`);
  } else {
    mkdirSync(dirname(path), { recursive: true });
    const made = Bun.spawnSync(["mkfifo", "-m", access?.mode ?? "0620", path], { stderr: "pipe" });
    if (made.exitCode !== 0) throw new WatcherError(`cannot create FIFO ${path}: ${made.stderr.toString().trim()}`);
  }
  if (access) {
    chmodSync(path, Number.parseInt(access.mode, 8));
    if (process.getuid?.() === 0) chownSync(path, 0, fifoGroupId(access.group));
  }
}

export interface Source {
  readonly label: string;
  /** the format of its lines, found from their shape, or given (`program`: they are that program's, whole) */
  readonly format: SourceFormat;
  /** each chunk is valid until the next is asked for (see readChunks) */
  chunks(): AsyncIterable<Uint8Array>;
  /**
   * A FIFO's: take nothing more from the pipe (the module stops); the chunks end with what was
   * taken already, which the reader must still process: what is left waits in the pipe for the
   * next process. Absent where the next process reads again from a position (file, journal).
   */
  stop?(): void;
}

/**
 * Chunks of at most 64 KiB until EOF, all views of one buffer: a consumer uses each chunk
 * before asking for the next (LineSplitter decodes it at once). A fresh buffer per read
 * would be memory outside the JS heap that the collector frees late: 250 MB for a 1M-line replay.
 */
export async function* readChunks(fh: fsp.FileHandle): AsyncGenerator<Uint8Array> {
  const buf = new Uint8Array(CHUNK);
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
    if (bytesRead === 0) return;
    yield buf.subarray(0, bytesRead);
  }
}

/** How long a FIFO read may wait while the pipe holds bytes before they are taken another way. */
const FIFO_WATCHDOG_MS = 1000;

/** How often a module looks whether the path of its FIFO still names the FIFO it reads: a stat and an fstat. */
const FIFO_CHECK_MS = 3000;

/** What a module needs to make its FIFO again: the master's mode and group for it, and where to say so. */
export interface FifoUpkeep {
  readonly access: FifoAccess;
  readonly log: (message: string) => void;
}

/**
 * A FIFO's chunks. Opened read-write, the FIFO always has a writer (us): it never reaches EOF.
 * Non-blocking, so Bun reads it on the main thread's epoll: a blocking read would wait for the
 * logger in one of Bun's pool threads (two on a 2-core machine) for as long as the logger is
 * quiet, and with the lifeline's read in the other, any other work given to the pool waited
 * for the next line. A read still waiting after FIFO_WATCHDOG_MS while the pipe holds bytes
 * (a lost wake-up: CI's restart test twice found its lines unread under the pool's reads)
 * takes them straight from the pipe; the waiting read then gets what comes after, so the order
 * holds.
 *
 * When the path no longer names this FIFO (a stray `rm`, a tmpfiles rule: no logger can open
 * it any more), the FIFO at the path is read instead, made again if missing (FifoWatch). The
 * one it replaced goes on being read, read-only, at each wake-up (every FIFO_WATCHDOG_MS at
 * the latest) until it is empty and no writer holds it: neither what it buffered nor what a
 * logger that keeps it open writes later is lost. It is read to empty before each chunk of
 * the new one, so their lines never mix (loggers write whole lines, atomically).
 *
 * Once `stopped` (the module stops, to exit or to start again), the waiting read is ended and
 * what it had taken is the last chunk: what the logger writes meanwhile stays in the pipe, which
 * the master holds open, for the next process.
 */
async function* readFifo(path: string, upkeep: FifoUpkeep, stopped: Promise<void>): AsyncGenerator<Uint8Array> {
  let fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  let reader = Bun.file(fd).stream().getReader();
  let reading = true;
  const stop = stopped.then(() => "stopped" as const);
  const replaced: number[] = [];
  const watch = new FifoWatch(path, upkeep);
  const spare = new Uint8Array(CHUNK);
  try {
    let pending = reader.read();
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<null>((resolve) => (timer = setTimeout(resolve, FIFO_WATCHDOG_MS, null)));
      const done = await Promise.race([pending, late, stop]);
      clearTimeout(timer);
      if (done === "stopped") {
        /* what the waiting read took is the caller's to process; the rest stays in the pipe */
        reading = false;
        const last = await stopReading(reader, fd, pending);
        if (last) yield last;
        return;
      }
      for (const old of [...replaced]) {
        if (!(yield* takeWaiting(old, spare))) continue;
        closeSync(old);
        replaced.splice(replaced.indexOf(old), 1);
      }
      if (done === null) {
        const taken = readWaiting(fd, spare);
        if (taken) yield spare.subarray(0, taken);
      } else {
        if (done.done) return;
        yield done.value;
        pending = reader.read();
      }
      const next = watch.replacement(fd);
      if (next === null) continue;
      /* a read-only descriptor of the old FIFO, opened before ours closes, reaches EOF once its other writers are gone */
      replaced.push(openSync(`/proc/self/fd/${fd}`, constants.O_RDONLY | constants.O_NONBLOCK));
      const last = await stopReading(reader, fd, pending);
      if (last) yield last;
      fd = next;
      reader = Bun.file(fd).stream().getReader();
      pending = reader.read();
    }
  } finally {
    if (reading) void stopReading(reader, fd, null);
    for (const old of replaced) closeSync(old);
  }
}

/**
 * End Bun's reading of `fd` and close it: the cancel ends the waiting read, and the descriptor
 * is closed once Bun has let it go. What the waiting read had taken before, if anything.
 */
async function stopReading(reader: { cancel(): Promise<void> }, fd: number, pending: Promise<{ done: boolean; value?: Uint8Array }> | null): Promise<Uint8Array | null> {
  void reader
    .cancel()
    .catch(() => {})
    .finally(() => closeSync(fd));
  const last = await pending;
  return last?.value ?? null;
}

/** What the pipe holds now, read without waiting: 0 at EOF, null when it is empty. */
function readWaiting(fd: number, into: Uint8Array): number | null {
  try {
    return readSync(fd, into, 0, into.length, null);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EAGAIN") return null;
    throw e;
  }
}

/** The chunks a replaced FIFO holds now; true when it is done with: empty, and no writer holds it. */
async function* takeWaiting(fd: number, into: Uint8Array): AsyncGenerator<Uint8Array, boolean> {
  for (;;) {
    const taken = readWaiting(fd, into);
    if (taken === null) return false;
    if (taken === 0) return true;
    yield into.subarray(0, taken);
  }
}

/**
 * Whether the path of a module's FIFO still names the FIFO it reads (same device and inode),
 * looked at every FIFO_CHECK_MS at most. When it does not, the FIFO there is made as the master
 * makes it (ensureFifo) if it is missing; something that is not a FIFO is the operator's, left
 * alone, and said once.
 */
class FifoWatch {
  private nextCheck = performance.now() + FIFO_CHECK_MS;
  /** the problem last logged: said again only when it changes */
  private problem: string | null = null;

  constructor(
    private readonly path: string,
    private readonly upkeep: FifoUpkeep,
  ) {}

  /** A descriptor of the FIFO now at the path, when it is not the one `fd` reads and it can be read; else null. */
  replacement(fd: number): number | null {
    const now = performance.now();
    if (now < this.nextCheck) return null;
    this.nextCheck = now + FIFO_CHECK_MS;
    try {
      const reading = fstatSync(fd);
      const found = statSync(this.path, { throwIfNoEntry: false });
      if (found && found.dev === reading.dev && found.ino === reading.ino) {
        this.problem = null;
        return null;
      }
      ensureFifo(this.path, this.upkeep.access);
      const next = openSync(this.path, constants.O_RDWR | constants.O_NONBLOCK);
      /* the master holds only the FIFO it made: this one's pipe is grown here */
      growPipe(next);
      this.problem = null;
      this.upkeep.log(found ? `${this.path} was replaced by another FIFO; reading it` : `${this.path} was removed; made it again and reading it`);
      return next;
    } catch (e) {
      const problem = `${(e as Error).message}: loggers cannot reach this module until then (it reads the FIFO that was there, and makes it again once the path is free)`;
      if (problem !== this.problem) this.upkeep.log(problem);
      this.problem = problem;
      return null;
    }
  }
}

export function fifoSource(path: string, upkeep: FifoUpkeep): Source {
  let stop = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  return {
    label: `fifo ${path}`,
    format: new SourceFormat(),
    async *chunks() {
      ensureFifo(path);
      yield* readFifo(path, upkeep, stopped);
    },
    stop,
  };
}

/** `program`: the lines are this program's, whole (`--program`); else their format is found from their shape */
export function stdinSource(program: string | null = null): Source {
  return {
    label: "stdin",
    format: new SourceFormat(program),
    async *chunks() {
      let stdin: fsp.FileHandle;
      try {
        stdin = await fsp.open("/dev/stdin", constants.O_RDONLY);
      } catch (e) {
        /* a socket (what some supervisors and Bun.spawn hand over) cannot be opened by name */
        if ((e as NodeJS.ErrnoException).code !== "ENXIO") throw e;
        yield* Bun.stdin.stream();
        return;
      }
      /* closed here: Bun ends the process when the collector finds a FileHandle left open */
      try {
        yield* readChunks(stdin);
      } finally {
        await stdin.close();
      }
    },
  };
}

interface FilePosition {
  ino: number;
  position: number;
  /**
   * hex of the bytes just before `position` (up to TAIL_BYTES): a file rewritten in place while
   * watcher was stopped (copytruncate, then new lines past the old position) is told from one
   * that only grew; absent or "" when not known
   */
  tail?: string;
}

const TAIL_BYTES = 32;

/** The hex of the last TAIL_BYTES read, after `chunk` followed what `before` ends with. */
function tailAfter(before: string, chunk: Uint8Array): string {
  const bytes = chunk.length >= TAIL_BYTES ? chunk.subarray(chunk.length - TAIL_BYTES) : Buffer.concat([Buffer.from(before, "hex"), chunk]).subarray(-TAIL_BYTES);
  return Buffer.from(bytes).toString("hex");
}

/** Whether the file's bytes before `at.position` are still those read there (no tail known: yes). */
async function sameTail(fh: fsp.FileHandle, at: FilePosition): Promise<boolean> {
  const want = Buffer.from(at.tail ?? "", "hex");
  if (want.length === 0) return true;
  if (at.position < want.length) return false;
  const got = Buffer.alloc(want.length);
  const { bytesRead } = await fh.read(got, 0, want.length, at.position - want.length);
  return bytesRead === want.length && got.equals(want);
}

/**
 * The file a position was saved in, renamed away while watcher was stopped (rotation: auth.log
 * became auth.log.1 beside a new auth.log): found by its inode among the path's siblings whose
 * names start with its own, and only if it still holds what was read; null when it is gone
 * (compressed, deleted) or another file has its inode now.
 */
async function rotatedAway(path: string, saved: FilePosition): Promise<fsp.FileHandle | null> {
  const dir = dirname(path);
  const name = basename(path);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n !== name && n.startsWith(name));
  } catch {
    return null;
  }
  for (const n of names) {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(join(dir, n));
    } catch {
      continue;
    }
    if (st.ino !== saved.ino || !st.isFile() || st.size < saved.position) continue;
    const fh = await fsp.open(join(dir, n), constants.O_RDONLY);
    let same = false;
    try {
      same = await sameTail(fh, saved);
    } finally {
      if (!same) await fh.close();
    }
    if (same) return fh;
  }
  return null;
}

/**
 * Follow a file like `tail -F`: read what is appended, reopen when it is renamed or replaced
 * (draining the old file first), start over when it is truncated (copytruncate). With a
 * `positionFile` the place reached is remembered after each chunk is processed, so a restart
 * carries on where it stopped: a file rotated meanwhile is read to its end where it was renamed
 * to (rotatedAway) and the new one from its start; one rewritten in place (copytruncate) from its
 * start. Without one, or the first time, reading starts at the end: history is for `inject --direct`.
 */
export function fileSource(path: string, program: string | null = null, positionFile: string | null = null, pollMs = 250): Source {
  return {
    label: `file ${path}`,
    format: new SourceFormat(program),
    async *chunks() {
      const buf = new Uint8Array(CHUNK);
      let fh: fsp.FileHandle | null = null;
      let ino = -1;
      let position = 0;
      let tail = "";
      const saved = positionFile ? readJson<FilePosition>(positionFile) : null;
      let first = true;
      const remember = () => {
        if (positionFile) writeJson(positionFile, { ino, position, tail } satisfies FilePosition);
      };
      /* every handle closed when the reading stops (see stdinSource) */
      try {
        for (;;) {
          let st: ReturnType<typeof statSync> | null = null;
          try {
            st = statSync(path);
            /* a folder where the file belongs is read as no file: nothing until a file is there (doctor names it) */
            if (!st.isFile()) st = null;
          } catch {
            st = null; /* between rename and re-creation */
          }
          if (st && st.ino !== ino) {
            /* rotated: drain the old file, then switch */
            if (fh) {
              for (let r = await fh.read(buf, 0, CHUNK, position); r.bytesRead > 0; r = await fh.read(buf, 0, CHUNK, position)) {
                position += r.bytesRead;
                yield buf.subarray(0, r.bytesRead);
              }
              await fh.close();
              fh = null;
            } else if (saved && saved.ino !== st.ino) {
              /* rotated while we were stopped: what the old file got after our position, first */
              const old = await rotatedAway(path, saved);
              if (old) {
                ({ ino, position } = saved);
                tail = saved.tail ?? "";
                try {
                  for (let r = await old.read(buf, 0, CHUNK, position); r.bytesRead > 0; r = await old.read(buf, 0, CHUNK, position)) {
                    position += r.bytesRead;
                    tail = tailAfter(tail, buf.subarray(0, r.bytesRead));
                    yield buf.subarray(0, r.bytesRead);
                    remember();
                  }
                } finally {
                  await old.close();
                }
              }
            }
            fh = await fsp.open(path, constants.O_RDONLY);
            const resumes = first && saved !== null && saved.ino === st.ino && saved.position <= st.size && (await sameTail(fh, saved));
            ino = st.ino;
            if (!first || (saved && !resumes)) position = 0;
            else position = resumes ? saved!.position : st.size;
            tail = resumes ? (saved!.tail ?? "") : "";
            first = false;
            remember();
          } else if (st && fh && st.size < position) {
            position = 0; /* copytruncate */
            tail = "";
          }
          if (fh) {
            const r = await fh.read(buf, 0, CHUNK, position);
            /* whole lines only (but a line longer than a chunk): a line still being written is read
               again once its end is there, so the position remembered never falls inside a line,
               whose start a restart would lose */
            const whole = buf.subarray(0, r.bytesRead).lastIndexOf(NL) + 1;
            const taken = whole > 0 ? whole : r.bytesRead === CHUNK ? CHUNK : 0;
            if (taken > 0) {
              position += taken;
              tail = tailAfter(tail, buf.subarray(0, taken));
              yield buf.subarray(0, taken);
              remember(); /* the chunk has been processed when we are asked for the next */
              continue;
            }
          }
          await Bun.sleep(pollMs);
        }
      } finally {
        await fh?.close();
      }
    },
  };
}

/**
 * Follow journald with `journalctl -f -o json`: each entry becomes a syslog line. The cursor of
 * the last entry processed is kept in `cursorFile`, so a restart resumes right after it, with
 * neither gap nor duplicate; the first time, reading starts at the end.
 */
export function journalSource(matches: readonly string[], cursorFile: string): Source {
  return {
    label: `journal ${matches.join(" ")}`,
    format: new SourceFormat(),
    async *chunks() {
      const cursor = existsSync(cursorFile) ? readFileSync(cursorFile, "utf8").trim() : "";
      /* --all: without it, a field over 4096 bytes comes as null (a long user name would hide its line) */
      const args = ["journalctl", "-f", "-o", "json", "--all", "--no-pager", ...(cursor ? [`--after-cursor=${cursor}`] : ["-n", "0"]), ...matches];
      const proc = Bun.spawn(args, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const decoder = new TextDecoder();
      const encoder = new TextEncoder();
      let partial = "";
      try {
        for await (const bytes of proc.stdout) {
          const text = partial + decoder.decode(bytes, { stream: true });
          const lines = text.split("\n");
          partial = lines.pop()!;
          let block = "";
          let last = "";
          for (const json of lines) {
            let entry: JournalEntry;
            try {
              entry = JSON.parse(json);
            } catch {
              continue;
            }
            const line = journalLine(entry);
            if (line) block += `${line}\n`;
            if (entry.__CURSOR) last = entry.__CURSOR;
          }
          if (block) yield encoder.encode(block);
          /* processed: the next is asked for */
          if (last) writeFileSync(cursorFile, `${last}\n`);
        }
        const err = await new Response(proc.stderr).text();
        throw new WatcherError(`journalctl ended: ${err.trim() || `status ${await proc.exited}`}`);
      } finally {
        proc.kill();
      }
    },
  };
}

/** `upkeep`: for a FIFO, how to make it again when it is removed */
export function openSource(config: SourceConfig, paths: Pick<Paths, "fifoBase" | "runDir">, module: ModuleName, programs: readonly string[], upkeep: FifoUpkeep): Source {
  switch (config.type) {
    case "fifo":
      return fifoSource(fifoPath(paths.fifoBase, module), upkeep);
    case "file":
      return fileSource(config.path, config.program ?? null, positionFileFor(paths.runDir, module, config.path));
    case "stdin":
      return stdinSource(config.program ?? null);
    case "journal":
      return journalSource(config.matches ?? programs.map((p) => `SYSLOG_IDENTIFIER=${p}`), journalCursorFile(paths.runDir, module));
  }
}
