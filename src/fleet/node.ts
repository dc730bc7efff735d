/**
 * The node's side of the fleet, run by the master: read the decision stream from the last id
 * applied, drop other nodes' bans in `watcher_fleet` with their remaining time (kernel first,
 * then fleet.db with the new cursor, in one transaction per batch), lift unbans here too (in
 * the fleet set and in every module), fall back to a full sync from the active set when the
 * stream was trimmed past our cursor, and keep a heartbeat. Local policy wins: a whitelisted,
 * loopback or own address is never banned here, whatever the fleet says.
 */
import { readdirSync } from "node:fs";
import { basename } from "node:path";
import pkg from "../../package.json";
import { type LoadedConfig, MODULE_NAMES, type ModuleName } from "../core/config";
import { nowSeconds } from "../core/duration";
import { WatcherError } from "../core/errors";
import { type Firewall, type FirewallOutcome, moduleSetName, outcomeMessages, type SetElement } from "../core/firewall/types";
import { parseIp } from "../core/ip";
import { dbPath, fleetDbPath, statusFile } from "../core/layout";
import type { Lists } from "../core/lists";
import { readJson, removeFile, writeJson } from "../core/runfiles";
import type { ModuleStatus } from "../modules/loop";
import { liftBan } from "../ops/ban";
import { type FleetBan, FleetStore, type Outcome } from "../store/fleet-db";
import { ModuleStore } from "../store/module-db";
import { FleetLink, redactUrl } from "./link";
import { fleetConfigOf, type NodeInfo, sendHeartbeat } from "./nodes";
import { compareStreamIds, type Decision, FLEET_SET, fleetKeys, loadFleetKey, verifiedDecision } from "./protocol";
import { drainOutbox } from "./publisher";

const READ_BATCH = 1000;
const BLOCK_MS = 2000;
const STATUS_MS = 1000;
const HEARTBEAT_MS = 5000;
const RECENT_REFUSALS = 20;
const FLEET_UNBAN_RULE = "fleet-unban";

export interface FleetNodeStats {
  node: string;
  connected: boolean;
  lastError: string | null;
  cursor: string | null;
  /** how far the stream is ahead of what we applied, in ms of stream time */
  lagMs: number | null;
  /** decisions of other nodes, by what became of them */
  received: number;
  applied: number;
  protected: number;
  notAccepted: number;
  expired: number;
  duplicates: number;
  badSignature: number;
  /** full syncs from the active set */
  syncs: number;
  /** the last decisions refused by local policy: "address (why)" */
  refusals: string[];
  updatedAt: number;
}





/** The fields of a payload in the active set; whoever can write to Redis can write anything there. */
function payloadFields(payload: string): string[] {
  try {
    const fields: unknown = JSON.parse(payload);
    return Array.isArray(fields) && fields.every((f) => typeof f === "string") ? fields : [];
  } catch {
    return [];
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type StreamEntry = [id: string, fields: string[]];

export class FleetNode {
  readonly stats: FleetNodeStats;
  private readonly settings;
  private readonly key: Buffer;
  private readonly keys;
  private readonly store: FleetStore;
  private readonly reader: FleetLink;
  private readonly writer: FleetLink;
  private readonly moduleStores = new Map<ModuleName, ModuleStore>();
  private readonly startedAt = nowSeconds();
  private checkCursor = true;
  /** a full sync was asked for (new lists: decisions refused before may be applied now) */
  private syncWanted = false;
  private closed = false;
  private loop: Promise<void> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly loaded: LoadedConfig,
    private readonly firewall: Firewall,
    private readonly modules: readonly ModuleName[],
    private readonly lists: () => Lists,
    private readonly log: (message: string) => void,
  ) {
    const settings = fleetConfigOf(loaded);
    this.settings = settings;
    this.key = loadFleetKey(loaded.paths.fleetKey);
    this.keys = fleetKeys(settings.prefix);
    this.store = new FleetStore(fleetDbPath(loaded.paths));
    this.reader = new FleetLink(settings, () => {
      this.checkCursor = true;
    });
    this.writer = new FleetLink(settings, () => this.heartbeat());
    this.stats = {
      node: settings.node,
      connected: false,
      lastError: null,
      cursor: this.store.cursor,
      lagMs: null,
      received: 0,
      applied: 0,
      protected: 0,
      notAccepted: 0,
      expired: 0,
      duplicates: 0,
      badSignature: 0,
      syncs: 0,
      refusals: [],
      updatedAt: nowSeconds(),
    };
  }

  /** Join the fleet: connect (in the background when Redis is away), read the stream, beat. */
  /** What the kernel refused of the fleet's bans (a full set) is logged, never fatal. */
  private logOutcome(outcome: FirewallOutcome): void {
    for (const line of outcomeMessages(FLEET_SET, outcome, this.firewall.maxTimeout)) this.log(`fleet: ${line}`);
  }

  async start(): Promise<void> {
    await this.firewall.ensure([{ name: FLEET_SET, kind: "addresses" }]);
    /* not awaited: the modules start at once and ban locally while Redis is away */
    void this.reader.start();
    void this.writer.start();
    this.loop = this.readLoop();
    this.writeStatus();
    let ticks = 0;
    this.timer = setInterval(() => (++ticks % (HEARTBEAT_MS / STATUS_MS) === 0 ? this.heartbeat() : this.writeStatus()), STATUS_MS);
  }

  /** Sync in full before the next read (SIGHUP: the lists changed, so every decision is judged again). */
  resync(): void {
    this.syncWanted = true;
  }

  /** Connect once, for a command (`fleet sync`); throws when Redis cannot be reached. */
  async connect(): Promise<void> {
    await this.firewall.ensure([{ name: FLEET_SET, kind: "addresses" }]);
    if (!(await this.reader.start())) throw new WatcherError(`cannot reach Redis at ${redactUrl(this.settings.url)}: ${this.reader.lastError}`);
  }

  private async readLoop(): Promise<void> {
    while (!this.closed) {
      if (!this.reader.connected) {
        await sleep(100);
        continue;
      }
      try {
        if (this.checkCursor || this.syncWanted) {
          const wanted = this.syncWanted;
          this.checkCursor = this.syncWanted = false;
          if (wanted || (await this.needsFullSync())) await this.fullSync();
        }
        const cursor = this.store.cursor ?? "0-0";
        const reply = await this.reader.run((c) => c.send("XREAD", ["COUNT", String(READ_BATCH), "BLOCK", String(BLOCK_MS), "STREAMS", this.keys.stream, cursor]));
        const entries = (reply as Record<string, StreamEntry[]> | null)?.[this.keys.stream];
        if (entries?.length) await this.apply(entries);
      } catch (e) {
        if (this.closed) return;
        this.stats.lastError = (e as Error).message;
        this.checkCursor = true;
        await sleep(200);
      }
    }
  }

  private async streamInfo(link = this.reader): Promise<{ last: string; first: string | null; trimmed: boolean } | null> {
    try {
      const info = (await link.run((c) => c.send("XINFO", ["STREAM", this.keys.stream]))) as Record<string, unknown> | null;
      if (!info) return null;
      const first = info["first-entry"] as StreamEntry | null;
      return { last: String(info["last-generated-id"]), first: first ? first[0] : null, trimmed: Number(info["entries-added"]) > Number(info.length) };
    } catch (e) {
      if (/no such key/i.test((e as Error).message)) return { last: "0-0", first: null, trimmed: false };
      throw e;
    }
  }

  /**
   * A first start, or trimming has passed our cursor (the oldest entry left is newer): it may
   * have taken decisions we never read (Redis 7.0 does not record what MAXLEN trimmed), so
   * sync in full.
   */
  private async needsFullSync(): Promise<boolean> {
    const cursor = this.store.cursor;
    if (cursor === null) return true;
    const info = await this.streamInfo();
    return !!info?.trimmed && !!info.first && compareStreamIds(info.first, cursor) > 0;
  }

  /** Every active decision from the sorted set, replacing watcher_fleet; the stream goes on from where the set was read. */
  async fullSync(): Promise<number> {
    const info = await this.streamInfo();
    if (!info) throw new Error("not connected to Redis");
    const now = nowSeconds();
    const addresses = ((await this.reader.run((c) => c.send("ZRANGE", [this.keys.active, String(now + 1), "+inf", "BYSCORE"]))) ?? []) as string[];
    const decisions: Decision[] = [];
    for (let i = 0; i < addresses.length; i += READ_BATCH) {
      const chunk = addresses.slice(i, i + READ_BATCH);
      const payloads = ((await this.reader.run((c) => c.send("HMGET", [this.keys.payload, ...chunk]))) ?? []) as (string | null)[];
      for (const p of payloads) {
        const d = p ? this.verify(payloadFields(p)) : null;
        if (d && d.origin !== this.settings.node) decisions.push(d);
      }
    }
    const bans: FleetBan[] = [];
    const outcomes = decisions.map((d) => {
      const outcome = this.outcomeOf(d, now);
      if (outcome === "applied") bans.push(d);
      return [d, outcome] as const;
    });
    this.logOutcome(await this.firewall.restore(FLEET_SET, bans.map((b) => ({ address: b.address, timeout: b.until - now }))));
    this.store.transaction(() => {
      this.store.replaceBans(bans);
      for (const [d, outcome] of outcomes) this.store.receive(d, outcome, now);
      this.store.cursor = info.last;
    });
    this.stats.syncs++;
    this.log(`fleet: full sync, ${bans.length} active fleet bans from ${decisions.length} decisions`);
    return bans.length;
  }

  private verify(fields: string[]): Decision | null {
    const d = verifiedDecision(this.key, fields);
    if (!d) this.stats.badSignature++;
    return d;
  }

  private outcomeOf(d: Decision, now: number): Outcome {
    if (d.action === "unban") return "applied"; /* lifting is always safe */
    if (!this.loaded.config.modules[d.module].fleetAccept) {
      this.stats.notAccepted++;
      return "not-accepted";
    }
    const ip = parseIp(d.address);
    const protection = ip ? this.lists().protection(ip) : "reserved";
    if (protection) {
      this.stats.protected++;
      this.stats.refusals = [...this.stats.refusals, `${d.address} (${protection}, from ${d.origin})`].slice(-RECENT_REFUSALS);
      return "protected";
    }
    if (d.until <= now) {
      this.stats.expired++;
      return "expired";
    }
    this.stats.applied++;
    return "applied";
  }

  /** A batch from the stream: the last decision per address wins; the kernel first, then fleet.db and the cursor. */
  private async apply(entries: StreamEntry[]): Promise<void> {
    const now = nowSeconds();
    const outcomes: [Decision, Outcome][] = [];
    const latest = new Map<string, Decision>();
    const ids = new Set<string>();
    for (const [, fields] of entries) {
      const d = this.verify(fields);
      if (!d || d.origin === this.settings.node) continue;
      if (ids.has(d.id) || this.store.seen(d.id)) {
        this.stats.duplicates++;
        continue;
      }
      ids.add(d.id);
      this.stats.received++;
      const outcome = this.outcomeOf(d, now);
      outcomes.push([d, outcome]);
      if (outcome === "applied") latest.set(d.address, d);
    }
    const bans: Decision[] = [];
    const unbans: string[] = [];
    for (const d of latest.values()) (d.action === "ban" ? bans.push(d) : unbans.push(d.address));
    if (bans.length) this.logOutcome(await this.firewall.ban(FLEET_SET, bans.map((b): SetElement => ({ address: b.address, timeout: b.until - now }))));
    if (unbans.length) {
      await this.firewall.unban(FLEET_SET, unbans);
      await this.liftLocalBans(unbans, now);
    }
    const last = entries[entries.length - 1]![0];
    this.store.transaction(() => {
      for (const [d, outcome] of outcomes) this.store.receive(d, outcome, now);
      for (const b of bans) this.store.putBan(b);
      for (const a of unbans) this.store.deleteBan(a);
      this.store.cursor = last;
    });
    for (const b of bans) this.log(`fleet: ban ${b.address} until ${new Date(b.until * 1000).toISOString()} (${b.module} rule ${b.rule} on ${b.origin})`);
    for (const a of unbans) this.log(`fleet: unban ${a}`);
  }

  private moduleStore(module: ModuleName): ModuleStore {
    let store = this.moduleStores.get(module);
    if (!store) this.moduleStores.set(module, (store = new ModuleStore(dbPath(this.loaded.paths, module))));
    return store;
  }

  /** An unban from the fleet lifts this node's own bans of the address too, in every module. */
  private async liftLocalBans(addresses: readonly string[], now: number): Promise<void> {
    for (const module of this.modules) {
      const store = this.moduleStore(module);
      const hosts = addresses.map((a) => store.getHost(a)).filter((h) => h !== null && h.bannedUntil > now);
      if (hosts.length === 0) continue;
      await this.firewall.unban(moduleSetName(module), hosts.map((h) => h!.address));
      for (const h of hosts) liftBan(store, h!, FLEET_UNBAN_RULE, now);
    }
  }

  /** Heartbeat, housekeeping of the active set, outboxes of modules that are not running, status file. */
  private heartbeat(): void {
    const runDir = this.loaded.paths.runDir;
    const statuses = this.modules.map((m) => readJson<ModuleStatus>(statusFile(runDir, m)));
    const info: NodeInfo = {
      node: this.settings.node,
      version: pkg.version,
      startedAt: this.startedAt,
      updatedAt: nowSeconds(),
      lines: statuses.reduce((n, s) => n + (s?.lines ?? 0), 0),
      bans: statuses.reduce((n, s) => n + (s?.bans ?? 0), 0),
    };
    void this.writer
      .run(async (c) => {
        const now = nowSeconds();
        await sendHeartbeat(c, this.keys, info);
        const over = (await c.send("ZRANGE", [this.keys.active, "-inf", String(now), "BYSCORE", "LIMIT", "0", "1000"])) as string[];
        if (over.length) await Promise.all([c.send("ZREM", [this.keys.active, ...over]), c.send("HDEL", [this.keys.payload, ...over])]);
        const stream = await this.streamInfo(this.writer);
        const cursor = this.store.cursor;
        this.stats.lagMs = stream && cursor && cursor !== "0-0" ? Math.max(0, Number(stream.last.split("-")[0]) - Number(cursor.split("-")[0])) : stream?.last === "0-0" ? 0 : null;
        await this.drainIdleOutboxes();
      })
      .catch((e) => {
        this.stats.lastError = (e as Error).message;
      })
      .finally(() => this.writeStatus());
    this.writeStatus();
  }

  /** `watcher ban` in a module that is not running queues in that module's outbox: publish it from here. */
  private async drainIdleOutboxes(): Promise<void> {
    const files = readdirSync(this.loaded.paths.dbDir).filter((f) => f.endsWith(".db"));
    for (const module of MODULE_NAMES) {
      if (this.modules.includes(module) || !files.includes(basename(dbPath(this.loaded.paths, module)))) continue;
      await drainOutbox(this.moduleStore(module), this.writer, this.settings, this.key);
    }
  }

  private writeStatus(): void {
    if (this.closed) return; /* a heartbeat that ends after close() writes nothing */
    this.stats.connected = this.reader.connected && this.writer.connected;
    this.stats.cursor = this.store.cursor;
    this.stats.lastError = this.reader.lastError ?? this.writer.lastError ?? this.stats.lastError;
    this.stats.updatedAt = nowSeconds();
    writeJson(statusFile(this.loaded.paths.runDir, "fleet"), this.stats);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    /* a node that stops says so: it is silent at once, not when its heartbeat lapses */
    if (this.loop) await this.writer.run((c) => c.send("DEL", [this.keys.node(this.settings.node)])).catch(() => {});
    this.reader.close();
    this.writer.close();
    await this.loop;
    if (this.loop) removeFile(statusFile(this.loaded.paths.runDir, "fleet"));
    this.store.close();
    for (const s of this.moduleStores.values()) s.close();
  }
}
