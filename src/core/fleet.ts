/**
 * Fleet protocol over Redis (or Valkey) >= 7: what every node shares, and how it is signed.
 *
 * - `<prefix>:decisions`  stream of decisions (ban/unban), trimmed approximately by length
 * - `<prefix>:active`     sorted set: banned address → until (epoch s), for a full sync
 * - `<prefix>:payload`    hash: banned address → its last signed ban decision
 * - `<prefix>:affairs:<module>:<address>`  fleet-wide affair count, expires after findTime
 * - `<prefix>:node:<name>` heartbeat with a TTL; `<prefix>:nodes` every node ever seen
 *
 * The default prefix `{watcher}` is a Cluster hash tag: all keys land in one slot.
 * Every decision carries an HMAC-SHA256 over its fields with the fleet's shared key; a
 * decision without a valid one is ignored, so write access to Redis alone bans nobody.
 */
import { RedisClient } from "bun";
import { Database } from "bun:sqlite";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { FLEET_NAME, type FleetConfig, MODULE_NAMES, type ModuleName } from "./config";
import { ConfigError } from "./errors";
import { parseIp } from "./ip";

export type DecisionAction = "ban" | "unban";

export interface Decision {
  /** unique across the fleet: origin node + random */
  readonly id: string;
  readonly action: DecisionAction;
  /** canonical address */
  readonly address: string;
  readonly module: ModuleName;
  /** epoch seconds the ban lasts until; 0 for an unban */
  readonly until: number;
  readonly rule: string;
  readonly origin: string;
  /** epoch seconds it was decided */
  readonly time: number;
}

export const FLEET_SET = "watcher_fleet";
const PROTOCOL = "1";

export function newDecision(origin: string, module: ModuleName, action: DecisionAction, address: string, until: number, rule: string, time: number): Decision {
  return { id: `${origin}-${randomBytes(8).toString("hex")}`, action, address, module, until, rule, origin, time };
}

export function fleetKeys(prefix: string) {
  return {
    stream: `${prefix}:decisions`,
    active: `${prefix}:active`,
    payload: `${prefix}:payload`,
    nodes: `${prefix}:nodes`,
    node: (name: string) => `${prefix}:node:${name}`,
    affairs: (module: string, address: string) => `${prefix}:affairs:${module}:${address}`,
  };
}

/** The shared secret: at least 16 bytes, readable by nobody but its owner and group. */
export function loadFleetKey(file: string): Buffer {
  let key: Buffer;
  try {
    const mode = statSync(file).mode;
    if (mode & 0o004) throw new ConfigError(`${file}: the fleet key is readable by everyone; chmod 0600 it`);
    key = Buffer.from(readFileSync(file, "utf8").trim());
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${file}: cannot read the fleet key: ${(e as Error).message} (make one with: head -c 32 /dev/urandom | base64 > ${file}; chmod 0600 ${file})`);
  }
  if (key.length < 16) throw new ConfigError(`${file}: the fleet key is ${key.length} bytes; expected at least 16 (head -c 32 /dev/urandom | base64)`);
  return key;
}

function canonical(d: Decision): string {
  return [PROTOCOL, d.id, d.action, d.address, d.module, d.until, d.rule, d.origin, d.time].join("\n");
}

function hmac(key: Buffer, d: Decision): string {
  return createHmac("sha256", key).update(canonical(d)).digest("hex");
}

/** Stream entry fields of a decision, signature last. */
export function signedFields(key: Buffer, d: Decision): string[] {
  return ["v", PROTOCOL, "id", d.id, "action", d.action, "address", d.address, "module", d.module, "until", String(d.until), "rule", d.rule, "origin", d.origin, "time", String(d.time), "sig", hmac(key, d)];
}

const INTEGER = /^(0|[1-9][0-9]{0,11})$/;

/** A decision from stream entry fields, or null when a field is missing, malformed or the signature is not ours. */
export function verifiedDecision(key: Buffer, fields: readonly string[]): Decision | null {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  const [v, id, action, address, module, until, rule, origin, time, sig] = ["v", "id", "action", "address", "module", "until", "rule", "origin", "time", "sig"].map((k) => f.get(k));
  if (v !== PROTOCOL || !id || !sig || !rule || !origin || !until || !time) return null;
  if (action !== "ban" && action !== "unban") return null;
  if (!MODULE_NAMES.includes(module as ModuleName) || !INTEGER.test(until) || !INTEGER.test(time)) return null;
  if (!FLEET_NAME.test(origin) || !FLEET_NAME.test(rule) || id.length > 100) return null;
  if (parseIp(address ?? "")?.text !== address) return null;
  const d: Decision = { id, action, address: address!, module: module as ModuleName, until: Number(until), rule, origin, time: Number(time) };
  const expected = Buffer.from(hmac(key, d));
  const given = Buffer.from(sig);
  return given.length === expected.length && timingSafeEqual(given, expected) ? d : null;
}

/** The CA certificate(s) that Redis's TLS certificate must chain to. */
export function readFleetCa(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`${file}: cannot read the fleet's CA file (tlsCa): ${(e as Error).message}`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError(`${file}: expected PEM certificates (-----BEGIN CERTIFICATE-----) for tlsCa`);
  return pem;
}

/** `redis://`, `rediss://`, `redis+unix://` URLs, or the absolute path of a Unix socket. */
function redisUrl(url: string): string {
  return url.startsWith("/") ? `redis+unix://${url}` : url;
}

/** The URL(s) without their passwords, for logs and status. */
export function redactUrl(url: string | readonly string[]): string {
  if (typeof url !== "string") return url.map(redactUrl).join(", ");
  return url.replace(/\/\/([^@/]*)@/, (_, auth: string) => `//${auth.includes(":") ? `${auth.split(":")[0]}:***` : "***"}@`);
}

/** Publish decisions: the stream, then the active set. Auto-pipelined: one round trip for the lot. */
export async function publishDecisions(client: RedisClient, s: FleetConfig, key: Buffer, decisions: readonly Decision[]): Promise<number> {
  const k = fleetKeys(s.prefix);
  await Promise.all(
    decisions.flatMap((d) => {
      const fields = signedFields(key, d);
      const xadd = client.send("XADD", [k.stream, "MAXLEN", "~", String(s.streamLength), "*", ...fields]);
      return d.action === "ban"
        ? [xadd, client.send("ZADD", [k.active, String(d.until), d.address]), client.send("HSET", [k.payload, d.address, JSON.stringify(fields)])]
        : [xadd, client.send("ZREM", [k.active, d.address]), client.send("HDEL", [k.payload, d.address])];
    }),
  );
  return decisions.length;
}

/** Stream ids are `ms-seq`; compare them as numbers. */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt);
  const [bm, bs] = b.split("-").map(BigInt);
  return am! !== bm! ? (am! < bm! ? -1 : 1) : as! === bs! ? 0 : (as ?? 0n) < (bs ?? 0n) ? -1 : 1;
}

/**
 * One connection to Redis that never blocks its user: commands run only while connected
 * (no offline queue that could grow without bound), and a lost connection is retried in
 * the background with a growing delay.
 */
export class FleetLink {
  private client: RedisClient | null = null;
  private readonly tls: { ca: string } | undefined;
  private retryDelay = 0.2;
  /** the URL to try first: the one that answered last */
  private next = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  lastError: string | null = null;

  constructor(
    private readonly settings: FleetConfig,
    private readonly onConnect: () => void = () => {},
  ) {
    this.tls = settings.tlsCa ? { ca: readFleetCa(settings.tlsCa) } : undefined;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /**
   * Connect now; resolves once connected or failed (then retries in the background). With
   * several URLs, the first that answers as the primary is taken, starting from the last good.
   */
  async start(): Promise<boolean> {
    this.timer = null;
    const urls = this.settings.url;
    for (let tried = 0; tried < urls.length && !this.closed; tried++) {
      const client = await this.open(urls[this.next]!, urls.length > 1);
      if (client) {
        this.client = client;
        client.onclose = (e) => {
          if (this.client !== client) return;
          this.client = null;
          this.failed(e?.message ?? "connection closed");
        };
        this.retryDelay = 0.2;
        this.lastError = null;
        this.onConnect();
        return true;
      }
      this.next = (this.next + 1) % urls.length;
    }
    this.failed(this.lastError ?? "closed");
    return false;
  }

  /** A connection to `url`, or null (lastError says why); `primaryOnly`: a replica is not taken. */
  private async open(url: string, primaryOnly: boolean): Promise<RedisClient | null> {
    const client = new RedisClient(redisUrl(url), {
      connectionTimeout: this.settings.connectTimeout * 1000,
      autoReconnect: false,
      enableOfflineQueue: false,
      ...(this.tls ? { tls: this.tls } : {}),
    });
    try {
      await client.connect();
      const role = primaryOnly ? ((await client.send("ROLE", [])) as unknown[])[0] : "master";
      if (role !== "master") throw new Error(`a ${String(role)}, not the primary`);
      if (this.closed) throw new Error("closed");
      return client;
    } catch (e) {
      this.lastError = `${redactUrl(url)}: ${(e as Error).message}`;
      client.close();
      return null;
    }
  }

  private failed(message: string): void {
    this.lastError = message;
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => void this.start(), this.retryDelay * 1000);
    this.retryDelay = Math.min(10, this.retryDelay * 2);
  }

  /** fn on the live connection, or null when there is none; an error drops the connection for a retry. */
  async run<T>(fn: (client: RedisClient) => Promise<T>): Promise<T | null> {
    const client = this.client;
    if (!client?.connected) return null;
    try {
      return await fn(client);
    } catch (e) {
      /* a command's own error (a missing key, say) is the caller's; a lost connection is ours,
         and so is a primary demoted to a replica by a failover (READONLY): find the new one */
      const demoted = (e as Error).message.startsWith("READONLY");
      if ((demoted || !client.connected) && this.client === client) {
        if (demoted) this.next = (this.next + 1) % this.settings.url.length;
        this.client = null;
        client.close();
        this.failed((e as Error).message);
      }
      throw e;
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const client = this.client;
    this.client = null;
    client?.close();
  }
}

/** What became of a decision received from another node. */
export type Outcome = "applied" | "protected" | "not-accepted" | "expired";

export interface FleetBan {
  readonly address: string;
  readonly until: number;
  readonly module: string;
  readonly rule: string;
  readonly origin: string;
}

export interface ReceivedDecision extends Decision {
  readonly outcome: Outcome;
  /** epoch seconds it reached this node */
  readonly received: number;
}

/**
 * `var/db/fleet.db`: the decisions this node received from the fleet (what `report` shows by
 * origin), the fleet bans in force here (what `start` restores into watcher_fleet), and the
 * last stream id applied, so a restart neither applies a decision twice nor misses one.
 */
export class FleetStore {
  private readonly db: Database;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { create: true, strict: true });
    this.db.exec(
      `PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
       CREATE TABLE IF NOT EXISTS received (id TEXT PRIMARY KEY, action TEXT NOT NULL, address TEXT NOT NULL,
         module TEXT NOT NULL, until INTEGER NOT NULL, rule TEXT NOT NULL, origin TEXT NOT NULL, time INTEGER NOT NULL,
         outcome TEXT NOT NULL, received INTEGER NOT NULL) WITHOUT ROWID;
       CREATE INDEX IF NOT EXISTS received_time ON received (received);
       CREATE TABLE IF NOT EXISTS bans (address TEXT PRIMARY KEY, until INTEGER NOT NULL, module TEXT NOT NULL,
         rule TEXT NOT NULL, origin TEXT NOT NULL) WITHOUT ROWID;
       CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`,
    );
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** The last stream id applied, or null before the first sync. */
  get cursor(): string | null {
    return this.db.query<{ value: string }, []>("SELECT value FROM state WHERE key = 'cursor'").get()?.value ?? null;
  }

  set cursor(id: string) {
    this.db.query("INSERT INTO state (key, value) VALUES ('cursor', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(id);
  }

  /** Record a received decision, or what became of it when it is judged again (a full sync); its first arrival time stays. */
  receive(d: Decision, outcome: Outcome, now: number): void {
    this.db
      .query(
        `INSERT INTO received (id, action, address, module, until, rule, origin, time, outcome, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome`,
      )
      .run(d.id, d.action, d.address, d.module, d.until, d.rule, d.origin, d.time, outcome, now);
  }

  seen(id: string): boolean {
    return this.db.query("SELECT 1 FROM received WHERE id = ?").get(id) !== null;
  }

  /** Record a fleet ban; of two bans of one address, the longer stays. */
  putBan(b: FleetBan): void {
    this.db
      .query(
        `INSERT INTO bans (address, until, module, rule, origin) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (address) DO UPDATE SET until = ?2, module = ?3, rule = ?4, origin = ?5 WHERE ?2 >= until`,
      )
      .run(b.address, b.until, b.module, b.rule, b.origin);
  }

  deleteBan(address: string): boolean {
    return this.db.query("DELETE FROM bans WHERE address = ?").run(address).changes === 1;
  }

  /** Fleet bans lasting beyond `now`. */
  activeBans(now: number): FleetBan[] {
    return this.db.query<FleetBan, [number]>("SELECT address, until, module, rule, origin FROM bans WHERE until > ? ORDER BY until").all(now);
  }

  /** Replace every fleet ban (a full sync). */
  replaceBans(bans: readonly FleetBan[]): void {
    this.transaction(() => {
      this.db.exec("DELETE FROM bans");
      for (const b of bans) this.putBan(b);
    });
  }

  receivedSince(since: number): ReceivedDecision[] {
    return this.db
      .query<ReceivedDecision, [number]>("SELECT id, action, address, module, until, rule, origin, time, outcome, received FROM received WHERE received >= ? ORDER BY received")
      .all(since);
  }

  /** Forget received decisions older than `before` and bans long over; returns how many rows went. */
  prune(before: number, now: number): number {
    return this.transaction(
      () => this.db.query("DELETE FROM received WHERE received < ?").run(before).changes + this.db.query("DELETE FROM bans WHERE until <= ?").run(now).changes,
    );
  }

  close(): void {
    this.db.close();
  }
}
