/**
 * A module's side of the fleet: its bans wait in the outbox of its own database (written in
 * the ban's transaction, so a crash loses none) and go to Redis right after the chunk that
 * made them; with `shareAffairs`, each chunk's affairs go to fleet-wide counters, and the
 * node whose affair reaches `fleetMaxAffairs` bans the address for the whole fleet.
 * Nothing here is awaited by the line pipeline: with Redis away, lines are processed at
 * full speed, decisions wait in the outbox, and affairs are counted locally only.
 */
import { type Config, type FleetConfig, type ModuleName, moduleConfig } from "../core/config";
import { type Decision, type DecisionAction, fleetKeys, loadFleetKey, newDecision, publishDecisions } from "./protocol";
import { FleetLink } from "./link";
import type { ModuleStore } from "../store/module-db";
import type { ModuleContext } from "../modules/context";
import { nowSeconds } from "../core/duration";

/** The rule name of a ban made because the fleet's count reached fleetMaxAffairs. */
export const FLEET_AFFAIRS_RULE = "fleet-affairs";

const DRAIN_BATCH = 500;

/**
 * KEYS: one sorted set of affair times per address. ARGV: window seconds, limit, now, a prefix
 * that makes this call's members unique, then each key's weight. Each affair is a member
 * scored by its time, and those older than the window are dropped, so the count slides as the
 * local one does. Returns, per key, the count where this call made it cross the limit (that
 * set is then emptied: the next round counts afresh), else 0.
 */
const SHARE_SCRIPT = `local window, limit, now, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local crossed = {}
for i, key in ipairs(KEYS) do
  local weight = tonumber(ARGV[i + 4])
  for n = 1, weight do redis.call('ZADD', key, now, prefix .. i .. ':' .. n) end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  redis.call('EXPIRE', key, window)
  local total = redis.call('ZCARD', key)
  crossed[i] = 0
  if total >= limit and total - weight < limit then
    redis.call('DEL', key)
    crossed[i] = total
  end
end
return crossed`;
const OUTBOX_EVERY_MS = 1000;

/** The node name this module's decisions are published under, or null when it publishes none. */
export function publisherOf(config: Config, module: ModuleName): string | null {
  return config.fleet && moduleConfig(config, module).fleetPublish ? config.fleet.node : null;
}

/** Queue a decision for the fleet, in the caller's transaction. */
export function queueDecision(store: Pick<ModuleStore, "addOutbox">, origin: string, module: ModuleName, action: DecisionAction, address: string, until: number, rule: string, time: number): void {
  store.addOutbox(JSON.stringify(newDecision(origin, module, action, address, until, rule, time)));
}

/**
 * Publish what waits in a module's outbox after seq `after`, oldest first; stops quietly without a
 * connection. Returns how many went and the seq of the last that went (`after` when none did).
 */
export async function publishOutbox(store: ModuleStore, link: FleetLink, settings: FleetConfig, key: Buffer, after = 0): Promise<{ published: number; through: number }> {
  let published = 0;
  for (;;) {
    const rows = store.outbox(DRAIN_BATCH, after);
    if (rows.length === 0) break;
    const sent = await link.run((c) => publishDecisions(c, settings, key, rows.map((r) => JSON.parse(r.decision) as Decision)));
    if (sent === null) break;
    after = rows[rows.length - 1]!.seq;
    published += sent;
  }
  return { published, through: after };
}

/** Publish a module's outbox and delete what went (a command, a module not running); returns how many went. */
export async function drainOutbox(store: ModuleStore, link: FleetLink, settings: FleetConfig, key: Buffer): Promise<number> {
  const { published, through } = await publishOutbox(store, link, settings, key);
  if (published > 0) store.deleteOutbox(through);
  return published;
}

export interface ModuleFleetStats {
  published: number;
  outbox: number;
  /** decisions dropped from a full outbox */
  dropped: number;
  /** affairs sent to the fleet counters */
  shared: number;
  /** affairs counted locally only, Redis being away */
  unshared: number;
  /** bans because the fleet-wide count reached fleetMaxAffairs */
  fleetBans: number;
  connected: boolean;
  lastError: string | null;
}

export class ModuleFleet {
  private readonly stats = { published: 0, dropped: 0, shared: 0, unshared: 0, fleetBans: 0 };
  private lastError: string | null = null;
  private readonly link: FleetLink;
  private affairs = new Map<string, number>();
  private draining: Promise<void> | null = null;
  /** a decision was queued since the last drain started: after the chunk, publish */
  private queued = false;
  /** the seq of the last decision published, and of the last deleted from the outbox */
  private publishedThrough = 0;
  private deletedThrough = 0;
  /** calls of the share script so far: part of what makes each affair's member unique */
  private shares = 0;
  /** queued while a drain was under way: drain once more when it ends */
  private again = false;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly settings: FleetConfig,
    private readonly key: Buffer,
    private readonly module: ModuleName,
    private readonly store: ModuleStore,
    private findTime: number,
  ) {
    this.link = new FleetLink(settings, () => this.publish());
  }

  /** the fleet-wide count of `address` reached the limit on this node's affair (the runtime bans it) */
  private onFleetLimit: (address: string, total: number) => void = () => {};

  /** Start publishing and sharing; `onFleetLimit` bans an address the fleet's count crossed on one of our affairs. */
  start(onFleetLimit: (address: string, total: number) => void): void {
    this.onFleetLimit = onFleetLimit;
    void this.link.start();
    this.timer = setInterval(() => {
      this.deletePublished();
      /* what `watcher ban` queued, and what waited for a reconnect; the outbox grows only while Redis is away */
      if (this.link.connected) this.publish();
      else this.stats.dropped += this.store.trimOutbox(this.settings.outboxSize);
    }, OUTBOX_EVERY_MS);
  }

  reload(findTime: number): void {
    this.findTime = findTime;
  }

  /** An affair counted locally (in the chunk's transaction). */
  affair(address: string, weight: number): void {
    if (this.settings.shareAffairs) this.affairs.set(address, (this.affairs.get(address) ?? 0) + weight);
  }

  /** A decision went into the outbox (in the chunk's transaction). */
  decided(): void {
    this.queued = true;
  }

  /** The chunk is committed: publish its bans and share its affairs, without waiting. */
  afterBlock(): void {
    if (this.queued) this.publish(); /* most chunks ban nobody: no outbox query for them */
    if (this.affairs.size > 0) this.share();
  }

  private publish(): void {
    if (!this.link.connected) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.queued = false;
    this.draining = publishOutbox(this.store, this.link, this.settings, this.key, this.publishedThrough)
      .then(({ published, through }) => {
        this.stats.published += published;
        this.publishedThrough = through;
      })
      .catch((e) => {
        this.lastError = (e as Error).message;
      })
      .finally(() => {
        this.draining = null;
        if (this.again) {
          this.again = false;
          this.publish();
        }
      });
  }

  /**
   * Published decisions leave the outbox once a second, in one statement, not in a transaction of
   * their own after each publication: that one came between a ban and the next line. A crash
   * before it publishes them again, and receivers drop what they have seen (the decision's id).
   */
  private deletePublished(): void {
    if (this.publishedThrough === this.deletedThrough) return;
    try {
      this.store.deleteOutbox(this.publishedThrough);
      this.deletedThrough = this.publishedThrough;
    } catch (e) {
      this.lastError = `outbox: ${(e as Error).message}`; /* a full disk: tried again on the next run */
    }
  }

  /**
   * One script per chunk adds its affairs to the fleet's counts (sliding over findTime),
   * atomically, so exactly one node sees a count cross the limit; that node bans, and the
   * count starts afresh.
   */
  private share(): void {
    /* beyond the limit one more affair changes nothing; a <COUNT> of thousands stays one member per affair up to it */
    const limit = this.settings.fleetMaxAffairs;
    const batch = [...this.affairs].map(([address, weight]): [string, number] => [address, Math.min(weight, limit)]);
    this.affairs = new Map();
    const weights = batch.reduce((n, [, w]) => n + w, 0);
    if (!this.link.connected) {
      this.stats.unshared += weights;
      return;
    }
    const k = fleetKeys(this.settings.prefix);
    const now = String(nowSeconds());
    const prefix = `${this.settings.node}:${process.pid}:${this.shares++}:`;
    const keys = batch.map(([address]) => k.affairs(this.module, address));
    const args = [SHARE_SCRIPT, String(batch.length), ...keys, String(this.findTime), String(limit), now, prefix, ...batch.map(([, w]) => String(w))];
    void this.link
      .run((c) => c.send("EVAL", args) as Promise<number[]>)
      .then((crossed) => {
        if (!crossed) return void (this.stats.unshared += weights);
        this.stats.shared += weights;
        batch.forEach(([address], i) => {
          if (crossed[i]! > 0) {
            this.stats.fleetBans++;
            this.onFleetLimit(address, crossed[i]!);
          }
        });
      })
      .catch((e) => {
        this.lastError = (e as Error).message;
      });
  }

  snapshot(): ModuleFleetStats {
    return { ...this.stats, outbox: this.store.outboxLength(this.publishedThrough), connected: this.link.connected, lastError: this.link.lastError ?? this.lastError };
  }

  /** Stop; what was not published stays in the outbox for the next start. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.draining;
    this.deletePublished();
    this.link.close();
  }
}

/**
 * After `watcher ban` or `unban`: publish what the module queued, now, when Redis answers in
 * time; what it could not stays queued for the running module (or the master). Null when
 * the fleet is off or the module does not publish.
 */
export async function publishNow(ctx: ModuleContext): Promise<{ published: number; waiting: number; error: string | null } | null> {
  const settings = ctx.config.fleet;
  if (!settings || !publisherOf(ctx.config, ctx.module)) return null;
  const link = new FleetLink({ ...settings, connectTimeout: Math.min(settings.connectTimeout, 3) });
  let published = 0;
  try {
    if (await link.start()) published = await drainOutbox(ctx.store, link, settings, loadFleetKey(ctx.paths.fleetKey));
  } catch {
    /* left in the outbox */
  } finally {
    link.close();
  }
  return { published, waiting: ctx.store.outboxLength(), error: link.lastError };
}
