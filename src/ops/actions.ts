/**
 * Actions on ban ([[actions]] in watcher.toml): a program of the operator's (a mail, a chat
 * webhook, an abuse report) run on bans, unbans or both, with the decision as JSON on stdin.
 *
 * They run in the module process that decided, right after the ban stage has the kernel's
 * answer: the decision is in hand there, with its rule and reason, at once and without a
 * second channel; the master sees bans only through the databases, later. The line loop never
 * waits for them: a decision joins a bounded queue per action (the oldest are dropped and
 * counted when it is full), at most `concurrency` runs go at a time, and with `batch` > 1 the
 * decisions that waited meanwhile go together, as one JSON list, so a flood costs few runs.
 * No shell: `command` is the argv. Each run has its own process group, so a run past its
 * timeout is ended whole (SIGTERM, then SIGKILL); a failure is logged, at most once every
 * few seconds per action, with the count of those not said. An unban is the end of a ban this
 * module knows of (BanEnds): its time ran out, or it was found lifted when it would have.
 */
import { accessSync, constants, statSync } from "node:fs";
import type { ActionConfig, ModuleName } from "../core/config";
import { ConfigError } from "../core/errors";
import type { BanReport } from "../pipeline/count";
import { iso } from "../core/duration";

/** What a program receives on stdin: one of these, or a JSON list of them when `batch` > 1. */
export interface ActionDecision {
  readonly event: "ban" | "unban";
  readonly module: ModuleName;
  /** an address, or a network (a prefix ban) */
  readonly address: string;
  /** ISO 8601, UTC */
  readonly time: string;
  /** the end of the ban (ISO 8601, UTC); null for an unban */
  readonly until: string | null;
  /** the ban's length in seconds; null for an unban */
  readonly seconds: number | null;
  readonly rule: string;
  readonly reason: string;
}

export interface ActionStats {
  /** runs that ended with status 0 */
  ok: number;
  /** runs that could not start or ended with another status or a signal */
  failed: number;
  /** runs ended because they took longer than `timeout` */
  timedOut: number;
  /** decisions dropped from a full queue */
  dropped: number;
  /** decisions waiting for a run */
  waiting: number;
}

/** a run over its time gets SIGTERM, and SIGKILL this long after */
const KILL_AFTER_MS = 2000;
/** at most one failure line per action this often; the rest are counted into the next */
const FAILURE_LOG_EVERY_MS = 10000;
/** what a failed run's stderr adds to its log line */
const STDERR_EXCERPT = 300;
/** at exit, runs in hand get this long before their process groups are killed */
const EXIT_GRACE_MS = 5000;

function banDecision(module: ModuleName, b: BanReport): ActionDecision {
  return { event: "ban", module, address: b.address, time: iso(b.time), until: iso(b.until), seconds: b.seconds, rule: b.rule, reason: b.reason };
}

function unbanDecision(module: ModuleName, address: string, time: number, rule: string, reason: string): ActionDecision {
  return { event: "unban", module, address, time: iso(time), until: null, seconds: null, rule, reason };
}

/** Before the start (exit 2): every action's program is an executable file, or the error names it. */
export function checkActionPrograms(actions: readonly ActionConfig[], configFile: string): void {
  const problems: string[] = [];
  for (const [i, a] of actions.entries()) {
    const program = a.command[0]!;
    try {
      if (!statSync(program).isFile()) throw new Error("not a file");
      accessSync(program, constants.X_OK);
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as NodeJS.ErrnoException).code === "EACCES" ? "not executable" : (e as Error).message;
      problems.push(`${configFile}: actions.${i}.command: ${program}: ${why} (action ${JSON.stringify(a.name)})`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems.join("\n"));
}

/** One action's queue and runs. */
class ActionQueue {
  readonly stats: ActionStats = { ok: 0, failed: 0, timedOut: 0, dropped: 0, waiting: 0 };
  private readonly waiting: ActionDecision[] = [];
  private readonly running = new Set<Bun.Subprocess>();
  private readonly runs = new Set<Promise<void>>();
  private lastFailureLog = 0;
  private unsaid = 0;

  constructor(
    readonly action: ActionConfig,
    private readonly log: (message: string) => void,
  ) {}

  push(d: ActionDecision): void {
    if (this.waiting.length >= this.action.queueSize) {
      this.waiting.shift();
      this.stats.dropped++;
      this.failure(`queue full (${this.action.queueSize} decisions): dropped the oldest`);
    }
    this.waiting.push(d);
    this.pump();
  }

  private pump(): void {
    while (this.runs.size < this.action.concurrency && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.action.batch);
      const run = this.run(batch).finally(() => {
        this.runs.delete(run);
        this.pump();
      });
      this.runs.add(run);
    }
    this.stats.waiting = this.waiting.length;
  }

  private async run(batch: ActionDecision[]): Promise<void> {
    const what = batch.length === 1 ? `${batch[0]!.event} of ${batch[0]!.address}` : `${batch.length} decisions (${batch[0]!.event} of ${batch[0]!.address}, ...)`;
    const input = `${JSON.stringify(this.action.batch > 1 ? batch : batch[0])}\n`;
    let proc: Bun.Subprocess<Blob, "ignore", "pipe">;
    try {
      /* its own process group (setsid): a timeout ends whatever the program started too */
      proc = Bun.spawn(this.action.command, { stdin: new Blob([input]), stdout: "ignore", stderr: "pipe", detached: true });
    } catch (e) {
      this.stats.failed++;
      this.failure(`cannot run ${this.action.command[0]} for the ${what}: ${(e as Error).message}`);
      return;
    }
    this.running.add(proc);
    let timedOut = false;
    const term = setTimeout(() => {
      timedOut = true;
      killGroup(proc.pid, "SIGTERM");
    }, this.action.timeout * 1000);
    const kill = setTimeout(() => killGroup(proc.pid, "SIGKILL"), this.action.timeout * 1000 + KILL_AFTER_MS);
    const stderr = excerpt(proc.stderr);
    const code = await proc.exited;
    clearTimeout(term);
    clearTimeout(kill);
    this.running.delete(proc);
    if (timedOut) {
      killGroup(proc.pid, "SIGKILL"); /* what it left behind in its group */
      this.stats.timedOut++;
      this.failure(`${this.action.command[0]} took longer than ${this.action.timeout}s for the ${what}: killed`);
    } else if (code !== 0) {
      this.stats.failed++;
      const said = await stderr.text();
      this.failure(`${this.action.command[0]} ${proc.signalCode ? `ended by ${proc.signalCode}` : `exited with status ${code}`} for the ${what}${said ? `: ${said}` : ""}`);
    } else this.stats.ok++;
  }

  /** One line now and then: a program that fails on every ban of a flood must not flood the log. */
  private failure(message: string): void {
    const now = Date.now();
    if (now - this.lastFailureLog < FAILURE_LOG_EVERY_MS) {
      this.unsaid++;
      return;
    }
    const more = this.unsaid > 0 ? ` (and ${this.unsaid} more failures since the last said)` : "";
    this.log(`action ${this.action.name}: ${message}${more}`);
    this.lastFailureLog = now;
    this.unsaid = 0;
  }

  /** Exit: decisions still waiting are dropped (said), runs in hand get a grace, then their groups are killed. */
  async close(): Promise<void> {
    if (this.waiting.length > 0) this.log(`action ${this.action.name}: exiting with ${this.waiting.length} decisions not handed to it`);
    this.stats.dropped += this.waiting.splice(0).length;
    const grace = setTimeout(() => {
      for (const p of this.running) killGroup(p.pid, "SIGKILL");
    }, EXIT_GRACE_MS);
    await Promise.all(this.runs);
    clearTimeout(grace);
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* the group is gone already */
  }
}

/** The first STDERR_EXCERPT bytes a program wrote, read as they come (so a full pipe never stops it), on one line. */
function excerpt(stream: ReadableStream<Uint8Array>): { text(): Promise<string> } {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const done = (async () => {
    for await (const chunk of stream) {
      if (size < STDERR_EXCERPT) chunks.push(chunk);
      size += chunk.length;
    }
  })().catch(() => {});
  return {
    /* a grandchild outside the group may hold the pipe: what came within a moment is enough */
    text: async () => {
      await Promise.race([done, Bun.sleep(200)]);
      return Buffer.concat(chunks).toString("utf8", 0, Math.min(size, STDERR_EXCERPT)).replace(/\s+/g, " ").trim();
    },
  };
}

/** A module's actions: each decision to every action that wants its event and module. */
export class ModuleActions {
  private readonly queues: ActionQueue[];
  private readonly wantBans: boolean;
  private readonly wantUnbans: boolean;

  constructor(
    private readonly module: ModuleName,
    actions: readonly ActionConfig[],
    log: (message: string) => void,
  ) {
    this.queues = actions.filter((a) => !a.modules || a.modules.includes(module)).map((a) => new ActionQueue(a, log));
    this.wantBans = this.queues.some((q) => q.action.on.includes("ban"));
    this.wantUnbans = this.queues.some((q) => q.action.on.includes("unban"));
  }

  ban(b: BanReport): void {
    if (this.wantBans) this.decided(banDecision(this.module, b));
  }

  unban(address: string, time: number, rule: string, reason: string): void {
    if (this.wantUnbans) this.decided(unbanDecision(this.module, address, time, rule, reason));
  }

  private decided(d: ActionDecision): void {
    for (const q of this.queues) if (q.action.on.includes(d.event)) q.push(d);
  }

  get stats(): Record<string, ActionStats> {
    return Object.fromEntries(this.queues.map((q) => [q.action.name, { ...q.stats }]));
  }

  close(): Promise<void> {
    return Promise.all(this.queues.map((q) => q.close())).then(() => {});
  }
}

/** A ban this module knows of, until it ends. */
interface KnownBan {
  until: number;
  rule: string;
}

/** How a ban ended: its time ran out, or it was found lifted (watcher unban, the fleet) when it would have. */
export type BanEnd = "expired" | "lifted";

/**
 * The ends of this module's bans, for unban actions and the metrics. A ban is known from its
 * announcement (or, at start, from the database); when its time is up, the database says
 * whether it still holds (banned again meanwhile: followed further), was lifted, or ran out.
 * A ban lifted early (watcher unban, the fleet) is seen when its unban event is recorded.
 */
export class BanEnds {
  readonly ended: Record<BanEnd, number> = { expired: 0, lifted: 0 };
  private readonly known = new Map<string, KnownBan>();
  /** the soonest end among the known, so that most checks look at nothing */
  private nextEnd = Number.POSITIVE_INFINITY;

  banned(address: string, until: number, rule: string): void {
    this.known.set(address, { until, rule });
    if (until < this.nextEnd) this.nextEnd = until;
  }

  /** Unbans recorded since the last look: a known ban they name ended now, lifted. */
  lifted(addresses: readonly string[], ended: (address: string, how: BanEnd, rule: string) => void): void {
    for (const address of addresses) {
      const ban = this.known.get(address);
      if (!ban) continue;
      this.known.delete(address);
      this.ended.lifted++;
      ended(address, "lifted", ban.rule);
    }
  }

  /**
   * The bans whose time is up at `now`. `bannedUntil(address)`: the database's end of that
   * ban (0 when lifted, null when the host is forgotten).
   */
  check(now: number, bannedUntil: (address: string) => number | null, ended: (address: string, how: BanEnd, rule: string) => void): void {
    if (now < this.nextEnd) return;
    let next = Number.POSITIVE_INFINITY;
    for (const [address, ban] of this.known) {
      if (ban.until > now) {
        if (ban.until < next) next = ban.until;
        continue;
      }
      const until = bannedUntil(address) ?? 0;
      if (until > now) {
        ban.until = until; /* banned again meanwhile */
        if (until < next) next = until;
        continue;
      }
      this.known.delete(address);
      const how: BanEnd = until === 0 || until < ban.until ? "lifted" : "expired";
      this.ended[how]++;
      ended(address, how, ban.rule);
    }
    this.nextEnd = next;
  }
}
