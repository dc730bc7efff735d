/**
 * The node's side of the fleet, run by the master (and once by `watcher fleet sync`): two
 * links to Redis, one reading the decision stream (receiver.ts) and one writing the heartbeat
 * and idle modules' outboxes (heartbeat.ts), and the status file `watcher status` shows.
 */
import type { LoadedConfig, ModuleName } from "../core/config";
import { nowSeconds } from "../core/duration";
import { WatcherError } from "../core/errors";
import type { Firewall } from "../core/firewall/types";
import { dbPath, fleetDbPath, statusFile } from "../core/layout";
import type { Lists } from "../core/lists";
import { removeFile, writeJson } from "../core/runfiles";
import { FleetStore } from "../store/fleet-db";
import { ModuleStore } from "../store/module-db";
import { beat } from "./heartbeat";
import { FleetLink, redactUrl } from "./link";
import { fleetConfigOf } from "./nodes";
import { FLEET_SET, fleetKeys, loadFleetKey } from "./protocol";
import { DecisionReceiver } from "./receiver";

const STATUS_MS = 1000;
const HEARTBEAT_MS = 5000;

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

/** What the node's parts share: settings, key, fleet.db, the firewall and the module databases. */
export interface NodeParts {
  readonly loaded: LoadedConfig;
  readonly settings: ReturnType<typeof fleetConfigOf>;
  readonly key: Buffer;
  readonly keys: ReturnType<typeof fleetKeys>;
  readonly store: FleetStore;
  readonly firewall: Firewall;
  readonly modules: readonly ModuleName[];
  readonly lists: () => Lists;
  readonly log: (message: string) => void;
  /** a module's database, opened once */
  moduleStore(module: ModuleName): ModuleStore;
}

export class FleetNode {
  readonly stats: FleetNodeStats;
  private readonly parts: NodeParts;
  private readonly receiver: DecisionReceiver;
  private readonly reader: FleetLink;
  private readonly writer: FleetLink;
  private readonly moduleStores = new Map<ModuleName, ModuleStore>();
  private readonly startedAt = nowSeconds();
  private closed = false;
  private loop: Promise<void> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(loaded: LoadedConfig, firewall: Firewall, modules: readonly ModuleName[], lists: () => Lists, log: (message: string) => void) {
    const settings = fleetConfigOf(loaded);
    const store = new FleetStore(fleetDbPath(loaded.paths));
    this.parts = {
      loaded,
      settings,
      key: loadFleetKey(loaded.paths.fleetKey),
      keys: fleetKeys(settings.prefix),
      store,
      firewall,
      modules,
      lists,
      log,
      moduleStore: (module) => {
        let s = this.moduleStores.get(module);
        if (!s) this.moduleStores.set(module, (s = new ModuleStore(dbPath(loaded.paths, module))));
        return s;
      },
    };
    this.stats = {
      node: settings.node,
      connected: false,
      lastError: null,
      cursor: store.cursor,
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
    /* the reader's link tells the log of Redis going away and coming back (once each: the others are quiet) */
    this.reader = new FleetLink(
      settings,
      () => this.receiver.reconnected(),
      (error) =>
        this.parts.log(
          error === null
            ? "fleet: Redis is back: reading the stream on from where this node stopped; decisions kept in the outboxes go out"
            : `fleet: Redis not reachable (${error}): banning locally, decisions wait in the outboxes; trying again`,
        ),
    );
    this.writer = new FleetLink(settings, () => this.heartbeat());
    this.receiver = new DecisionReceiver(this.parts, this.reader, this.stats);
  }

  /** Join the fleet: connect (in the background when Redis is away), read the stream, beat. */
  async start(): Promise<void> {
    await this.parts.firewall.ensure([{ name: FLEET_SET, kind: "addresses" }]);
    /* not awaited: the modules start at once and ban locally while Redis is away */
    void this.reader.start();
    void this.writer.start();
    this.loop = this.receiver.run();
    this.writeStatus();
    let ticks = 0;
    this.timer = setInterval(() => {
      this.receiver.saveCursor();
      if (++ticks % (HEARTBEAT_MS / STATUS_MS) === 0) this.heartbeat();
      else this.writeStatus();
    }, STATUS_MS);
  }

  /** Sync in full before the next read (SIGHUP: the lists changed, so every decision is judged again). */
  resync(): void {
    this.receiver.resync();
  }

  /** Connect once, for a command (`fleet sync`); throws when Redis cannot be reached. */
  async connect(): Promise<void> {
    await this.parts.firewall.ensure([{ name: FLEET_SET, kind: "addresses" }]);
    if (!(await this.reader.start())) throw new WatcherError(`cannot reach Redis at ${redactUrl(this.parts.settings.url)}: ${this.reader.lastError}`);
  }

  /** Every active decision from the sorted set, replacing watcher_fleet (`fleet sync`). */
  fullSync(): Promise<number> {
    return this.receiver.fullSync();
  }

  private heartbeat(): void {
    void beat(this.parts, this.writer, this.stats, this.startedAt)
      .catch((e) => {
        this.stats.lastError = (e as Error).message;
      })
      .finally(() => this.writeStatus());
    this.writeStatus();
  }

  private writeStatus(): void {
    if (this.closed) return; /* a heartbeat that ends after close() writes nothing */
    this.stats.connected = this.reader.connected && this.writer.connected;
    this.stats.cursor = this.receiver.cursor;
    this.stats.lastError = this.reader.lastError ?? this.writer.lastError ?? this.stats.lastError;
    this.stats.updatedAt = nowSeconds();
    writeJson(statusFile(this.parts.loaded.paths.runDir, "fleet"), this.stats);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.receiver.close();
    if (this.timer) clearInterval(this.timer);
    const { settings, keys } = this.parts;
    /* a node that stops says so: it is silent at once, not when its heartbeat lapses */
    if (this.loop) await this.writer.run((c) => c.send("DEL", [keys.node(settings.node)])).catch(() => {});
    this.reader.close();
    this.writer.close();
    await this.loop;
    this.receiver.saveCursor();
    if (this.loop) removeFile(statusFile(this.parts.loaded.paths.runDir, "fleet"));
    this.parts.store.close();
    for (const s of this.moduleStores.values()) s.close();
  }
}
