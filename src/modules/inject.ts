/**
 * `watcher inject`: hand lines to a module. Into its FIFO (the running module reads them),
 * or `--direct` into its database in-process, for replaying old logs with their own times.
 */
import { moduleSet } from "../core/firewall/types";
import { closeSync, constants, fstatSync, openSync } from "node:fs";
import { writeWhole } from "../core/write-whole";
import { WatcherError } from "../core/errors";
import type { ModuleContext } from "./context";
import { SourceFormat } from "../pipeline/formats";
import { LineSplitter } from "../pipeline/split";
import { type BanReport, ModuleRuntime, partsOf, type RuntimeStats } from "../pipeline/run";
import { nowSeconds } from "../core/duration";
import { HEAP_SLACK, HeapBudget, REPLAY_YOUNG_EVERY } from "../core/heap";

/* writes up to PIPE_BUF bytes are atomic: our lines never interleave with the logger's */
const PIPE_BUF = 4096;

/** Blocks of complete lines from a byte stream (see LineSplitter). */
export async function* blocksOf(chunks: AsyncIterable<Uint8Array>, splitter = new LineSplitter()): AsyncGenerator<string> {
  for await (const chunk of chunks) {
    const block = splitter.push(chunk);
    if (block !== "") yield block;
  }
  const rest = splitter.end();
  if (rest !== "") yield rest;
}

/*
 * A replay runs its lines 256 KiB at a time: a chunk per 64 KiB read took a fifth of its time, and
 * 1 MiB batches cost the same CPU within the noise for 9-26 MiB more peak RSS (gen_auth.py's 1M lines).
 */
const REPLAY_BATCH = 1 << 18;

/*
 * The writes of 16 batches (4 MiB of lines) go out in one transaction, held in memory until
 * then (PendingWrites, which bounds them): the same attackers' host rows are written once per
 * 4 MiB instead of once per batch. gen_auth.py's 1M lines: SQLite's share of the profile 1.8 -> 0.5 s.
 */
const REPLAY_CHUNKS_PER_COMMIT = 16;

/**
 * The chunks joined into pieces of REPLAY_BATCH bytes that end after a newline (the rest waits
 * for the next piece; a piece without one goes whole), in one reused buffer: each piece is
 * decoded once into one flat block of whole lines. Blocks decoded chunk by chunk and joined as
 * strings, or a line's start carried over by LineSplitter, make a rope that the first scan of
 * the block copies whole (the profile's nextJunk).
 */
async function* replayBatches(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const buffer = new Uint8Array(REPLAY_BATCH);
  let filled = 0;
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.length; ) {
      const n = Math.min(chunk.length - at, buffer.length - filled);
      buffer.set(chunk.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled < buffer.length) continue;
      const end = buffer.lastIndexOf(NL) + 1 || filled;
      yield buffer.subarray(0, end);
      buffer.copyWithin(0, end, filled);
      filled -= end;
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}

const NL = 10;

/* what remakes a module's FIFO: the master at its start, a running module within seconds */
const FIFO_REMADE = '"watcher restart" makes it (a running module makes it again within seconds)';

/** Write blocks of lines into a module's FIFO; fails at once when no module reads it, or the FIFO is gone. */
export async function injectToFifo(path: string, blocks: AsyncIterable<string> | Iterable<string>): Promise<void> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new WatcherError(`${path} does not exist: ${FIFO_REMADE}; or use --direct to process the lines here`);
    if (code === "ENXIO") throw new WatcherError(`no module is reading ${path}: start it (watcher module <MODULE>), or use --direct to process the lines here`);
    throw new WatcherError(`cannot open ${path}: ${(e as Error).message}`);
  }
  /* a file put in the FIFO's place is the operator's: not a byte written into it */
  if (!fstatSync(fd).isFIFO()) {
    closeSync(fd);
    throw new WatcherError(`${path} is not a FIFO: move it away, then ${FIFO_REMADE}; or use --direct to process the lines here`);
  }
  const encoder = new TextEncoder();
  const write = (text: string) => {
    try {
      writeWhole(fd, encoder.encode(text));
    } catch (e) {
      throw new WatcherError(`writing to ${path}: ${(e as Error).message}`);
    }
  };
  try {
    for await (const block of blocks) {
      /* cut at line ends, at most PIPE_BUF bytes a write where lines allow */
      for (let start = 0; start < block.length; ) {
        let cut = block.lastIndexOf("\n", start + PIPE_BUF / 4 - 1); /* chars: up to 4 bytes each */
        if (cut < start) cut = block.indexOf("\n", start);
        write(block.slice(start, cut + 1));
        start = cut + 1;
      }
    }
  } finally {
    closeSync(fd);
  }
}

export interface DirectResult {
  readonly stats: RuntimeStats;
  readonly bans: BanReport[];
  readonly seconds: number;
  /** lines per format found (formats.ts) */
  readonly formats: Record<string, number>;
}

/** Process lines in-process against the module's database and firewall, times from the lines. */
/** `input`: raw bytes (stdin), or text blocks of complete lines (arguments); `program`: the lines are that program's, whole (`--program`), else their format is found from their shape */
export async function injectDirect(
  ctx: ModuleContext,
  input: AsyncIterable<Uint8Array> | readonly string[],
  program: string | null = null,
  clock = nowSeconds,
): Promise<DirectResult> {
  const bans: BanReport[] = [];
  const runtime = new ModuleRuntime({
    ...partsOf(ctx),
    clock,
    useLineTime: true,
    chunksPerCommit: REPLAY_CHUNKS_PER_COMMIT,
    onBan: (b) => bans.push(b),
  });
  await ctx.firewall.ensure([moduleSet(ctx.module)]);
  /* the WAL is copied into the database every 10,000 pages and at the end (closing it), not every 1,000: a
     replay rewrites the same hosts' pages in commit after commit (gen-corpus: 3.3 -> 2.8 s CPU with the batches below) */
  ctx.store.deferCheckpoints();
  const started = performance.now();
  const splitter = new LineSplitter(runtime.stats.skipped, () => runtime.stats.lines++);
  const blocks = Array.isArray(input) ? input : blocksOf(replayBatches(input as AsyncIterable<Uint8Array>), splitter);
  const format = new SourceFormat(program);
  /* young objects collected after batches, as the resident loop does (core/heap.ts), on a replay's
     budget: the batches' strings die with them, and their memory serves the next ones instead of
     fresh pages (gen_auth.py's 1M lines: peak RSS 181 -> 108 MiB, CPU 3.76 -> 3.29 s) */
  const heap = new HeapBudget(HEAP_SLACK, REPLAY_YOUNG_EVERY);
  for await (const block of blocks) {
    const { matched, affairs } = runtime.stats;
    await runtime.processBlock(block, format);
    heap.afterChunk(block.length, runtime.stats.matched - matched, runtime.stats.affairs - affairs);
  }
  await runtime.endOfLog(format);
  if (!runtime.flushPending(true)) {
    const p = runtime.pending;
    throw new WatcherError(`database ${ctx.store.path}: ${p.error}; ${p.hosts} hosts and ${p.events} events of this replay are not written (the bans are in the firewall)`);
  }
  return { stats: runtime.stats, bans, seconds: (performance.now() - started) / 1000, formats: format.seen(splitter.journalExport) };
}
