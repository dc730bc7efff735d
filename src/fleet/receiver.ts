/**
 * The master's reader of the fleet's decisions: read the stream from the last id applied, drop
 * other nodes' bans in `watcher_fleet` with their remaining time (kernel first, then fleet.db
 * with the new cursor, in one transaction per batch), lift unbans here too (in the fleet set
 * and in every module), and fall back to a full sync from the active set when the stream was
 * trimmed past our cursor. Local policy wins: a whitelisted, loopback or own address is never
 * banned here, whatever the fleet says.
 */
import { type FirewallOutcome, moduleSetName, outcomeMessages, type SetElement } from "../core/firewall/types";
import { nowSeconds } from "../core/duration";
import { liftBan } from "../ops/ban";
import type { FleetBan, Outcome } from "../store/fleet-db";
import type { FleetLink } from "./link";
import type { FleetNodeStats, NodeParts } from "./node";
import { compareStreamIds, type Decision, FLEET_SET, fleetRefusal, verifiedDecision } from "./protocol";

const READ_BATCH = 1000;
const BLOCK_MS = 2000;
const RECENT_REFUSALS = 20;
const FLEET_UNBAN_RULE = "fleet-unban";

type StreamEntry = [id: string, fields: string[]];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The origin a stream entry claims (not yet verified). */
function originOf(fields: readonly string[]): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === "origin") return fields[i + 1];
  return undefined;
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

/** The stream's last id, its first entry's id, and whether MAXLEN trimmed it; null when not connected. */
export async function streamInfo(link: FleetLink, stream: string): Promise<{ last: string; first: string | null; trimmed: boolean } | null> {
  try {
    const info = (await link.run((c) => c.send("XINFO", ["STREAM", stream]))) as Record<string, unknown> | null;
    if (!info) return null;
    const first = info["first-entry"] as StreamEntry | null;
    return { last: String(info["last-generated-id"]), first: first ? first[0] : null, trimmed: Number(info["entries-added"]) > Number(info.length) };
  } catch (e) {
    if (/no such key/i.test((e as Error).message)) return { last: "0-0", first: null, trimmed: false };
    throw e;
  }
}

export class DecisionReceiver {
  /** after a (re)connection: the cursor may have fallen behind a trimmed stream */
  private checkCursor = true;
  /** a full sync was asked for (new lists: decisions refused before may be applied now) */
  private syncWanted = false;
  private closed = false;
  /**
   * The last id of batches that changed nothing here (this node's own decisions, duplicates):
   * held in memory until the next batch that does, or saveCursor(). A commit of its own for
   * each of them was most of the work a node did per decision it published.
   */
  private unsavedCursor: string | null = null;

  constructor(
    private readonly parts: NodeParts,
    private readonly link: FleetLink,
    private readonly stats: FleetNodeStats,
  ) {}

  /** The link came back: look at the cursor before the next read. */
  reconnected(): void {
    this.checkCursor = true;
  }

  resync(): void {
    this.syncWanted = true;
  }

  /** The last stream id read and dealt with, or null before the first sync. */
  get cursor(): string | null {
    return this.unsavedCursor ?? this.parts.store.cursor;
  }

  /** Write a cursor held in memory to fleet.db (once a second, and at the end): a restart reads on from there. */
  saveCursor(): void {
    if (this.unsavedCursor === null) return;
    try {
      this.parts.store.cursor = this.unsavedCursor;
      this.unsavedCursor = null;
    } catch (e) {
      this.stats.lastError = `fleet.db: ${(e as Error).message}`; /* a full disk: tried again on the next tick */
    }
  }

  /** Read until close(). */
  async run(): Promise<void> {
    const { keys } = this.parts;
    while (!this.closed) {
      if (!this.link.connected) {
        await sleep(100);
        continue;
      }
      try {
        if (this.checkCursor || this.syncWanted) {
          const wanted = this.syncWanted;
          this.checkCursor = this.syncWanted = false;
          if (wanted || (await this.needsFullSync())) await this.fullSync();
        }
        const cursor = this.cursor ?? "0-0";
        const reply = await this.link.run((c) => c.send("XREAD", ["COUNT", String(READ_BATCH), "BLOCK", String(BLOCK_MS), "STREAMS", keys.stream, cursor]), BLOCK_MS);
        const entries = (reply as Record<string, StreamEntry[]> | null)?.[keys.stream];
        if (entries?.length) await this.apply(entries);
      } catch (e) {
        if (this.closed) return;
        this.stats.lastError = (e as Error).message;
        this.checkCursor = true;
        await sleep(200);
      }
    }
  }

  close(): void {
    this.closed = true;
  }

  /** What the kernel refused of the fleet's bans (a full set) is logged, never fatal. */
  private logOutcome(outcome: FirewallOutcome): void {
    for (const line of outcomeMessages(FLEET_SET, outcome, this.parts.firewall.maxTimeout)) this.parts.log(`fleet: ${line}`);
  }

  /**
   * A first start, or trimming has passed our cursor (the oldest entry left is newer): it may
   * have taken decisions we never read (Redis 7.0 does not record what MAXLEN trimmed), so
   * sync in full.
   */
  private async needsFullSync(): Promise<boolean> {
    const cursor = this.cursor;
    if (cursor === null) return true;
    const info = await streamInfo(this.link, this.parts.keys.stream);
    return !!info?.trimmed && !!info.first && compareStreamIds(info.first, cursor) > 0;
  }

  /** Every active decision from the sorted set, replacing watcher_fleet; the stream goes on from where the set was read. */
  async fullSync(): Promise<number> {
    const { store, keys, settings } = this.parts;
    const info = await streamInfo(this.link, keys.stream);
    if (!info) throw new Error("not connected to Redis");
    const now = nowSeconds();
    const addresses = ((await this.link.run((c) => c.send("ZRANGE", [keys.active, String(now + 1), "+inf", "BYSCORE"]))) ?? []) as string[];
    const decisions: Decision[] = [];
    for (let i = 0; i < addresses.length; i += READ_BATCH) {
      const chunk = addresses.slice(i, i + READ_BATCH);
      const payloads = ((await this.link.run((c) => c.send("HMGET", [keys.payload, ...chunk]))) ?? []) as (string | null)[];
      for (const p of payloads) {
        const d = p ? this.verify(payloadFields(p)) : null;
        if (d && d.origin !== settings.node) decisions.push(d);
      }
    }
    const bans: FleetBan[] = [];
    const outcomes = decisions.map((d) => {
      const outcome = this.outcomeOf(d, now);
      if (outcome === "applied") bans.push(d);
      return [d, outcome] as const;
    });
    this.logOutcome(await this.parts.firewall.restore(FLEET_SET, bans.map((b) => ({ address: b.address, timeout: b.until - now }))));
    store.transaction(() => {
      store.replaceBans(bans);
      for (const [d, outcome] of outcomes) store.receive(d, outcome, now);
      store.cursor = info.last;
    });
    this.unsavedCursor = null;
    this.stats.syncs++;
    this.parts.log(`fleet: full sync, ${bans.length} active fleet bans from ${decisions.length} decisions`);
    return bans.length;
  }

  private verify(fields: string[]): Decision | null {
    const d = verifiedDecision(this.parts.key, fields);
    if (!d) this.stats.badSignature++;
    return d;
  }

  private outcomeOf(d: Decision, now: number): Outcome {
    if (d.action === "unban") return "applied"; /* lifting is always safe */
    /* a module this node does not have (another node's own) is not accepted either */
    if (!this.parts.loaded.config.modules[d.module]?.fleetAccept) {
      this.stats.notAccepted++;
      return "not-accepted";
    }
    const protection = fleetRefusal(this.parts.lists(), d.address);
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
    const { store, firewall, log, settings } = this.parts;
    const now = nowSeconds();
    const outcomes: [Decision, Outcome][] = [];
    const latest = new Map<string, Decision>();
    const ids = new Set<string>();
    for (const [, fields] of entries) {
      if (originOf(fields) === settings.node) continue; /* ours: already applied where it was decided */
      const d = this.verify(fields);
      if (!d || d.origin === settings.node) continue;
      if (ids.has(d.id) || store.seen(d.id)) {
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
    if (bans.length) this.logOutcome(await firewall.ban(FLEET_SET, bans.map((b): SetElement => ({ address: b.address, timeout: b.until - now }))));
    if (unbans.length) {
      await firewall.unban(FLEET_SET, unbans);
      await this.liftLocalBans(unbans, now);
    }
    const last = entries[entries.length - 1]![0];
    if (outcomes.length === 0) {
      this.unsavedCursor = last;
      return;
    }
    store.transaction(() => {
      for (const [d, outcome] of outcomes) store.receive(d, outcome, now);
      for (const b of bans) store.putBan(b);
      for (const a of unbans) store.deleteBan(a);
      store.cursor = last;
    });
    this.unsavedCursor = null;
    for (const b of bans) log(`fleet: ban ${b.address} until ${new Date(b.until * 1000).toISOString()} (${b.module} rule ${b.rule} on ${b.origin})`);
    for (const a of unbans) log(`fleet: unban ${a}`);
  }

  /** An unban from the fleet lifts this node's own bans of the address too, in every module. */
  private async liftLocalBans(addresses: readonly string[], now: number): Promise<void> {
    for (const module of this.parts.modules) {
      const store = this.parts.moduleStore(module);
      const hosts = addresses.map((a) => store.getHost(a)).filter((h) => h !== null && h.bannedUntil > now);
      if (hosts.length === 0) continue;
      await this.parts.firewall.unban(moduleSetName(module), hosts.map((h) => h!.address));
      for (const h of hosts) liftBan(store, h!, FLEET_UNBAN_RULE, now);
    }
  }
}
