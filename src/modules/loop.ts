/**
 * The resident module loop (`watcher module LG`, what `start` forks): read every source,
 * split lines, run each chunk through the runtime, until SIGTERM/SIGINT; then finish the
 * chunk in hand, close the database and exit cleanly.
 */
import { moduleSet } from "../core/firewall/types";
import type { ModuleContext } from "./context";
import { LineSplitter } from "./lines";
import { type BanReport, ModuleRuntime, type RuntimeStats } from "./runtime";
import type { Source } from "./sources";

export interface LoopOptions {
  readonly log: (message: string) => void;
  readonly clock?: () => number;
}

export async function runModuleLoop(ctx: ModuleContext, sources: readonly Source[], o: LoopOptions): Promise<RuntimeStats> {
  const runtime = new ModuleRuntime({
    module: ctx.module,
    config: ctx.moduleConfig,
    rules: ctx.rules,
    store: ctx.store,
    firewall: ctx.firewall,
    lists: ctx.lists,
    clock: o.clock ?? (() => Math.floor(Date.now() / 1000)),
    useLineTime: false,
    onBan: (b: BanReport) => o.log(`ban ${b.address} for ${b.seconds}s: ${b.reason}`),
  });
  await ctx.firewall.ensure([moduleSet(ctx.module)]);
  let busy: Promise<void> = Promise.resolve();
  let stopping = false;

  const stop = new Promise<void>((resolve) => {
    const onSignal = (signal: string) => {
      if (stopping) return;
      stopping = true;
      o.log(`${signal}: stopping after the chunk in hand`);
      resolve();
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
  });

  const readers = sources.map(async (source) => {
    const splitter = new LineSplitter(runtime.stats.skipped);
    o.log(`reading ${source.label}`);
    for await (const chunk of source.chunks()) {
      if (stopping) break;
      const block = splitter.push(chunk);
      if (block === "") continue;
      busy = busy.then(() => runtime.processBlock(block));
      await busy;
    }
    if (!stopping) {
      const rest = splitter.end();
      if (rest !== "") await (busy = busy.then(() => runtime.processBlock(rest)));
    }
  });

  /* a stdin or file source may end by itself; FIFOs end only on a signal */
  await Promise.race([stop, Promise.all(readers)]);
  await busy;
  return runtime.stats;
}
