/**
 * The connection to the fleet's Redis: the primary among the URLs given (ROLE), TLS with the
 * fleet's own CA, passwords kept out of logs, and a link that never blocks its user.
 */
import { RedisClient } from "bun";
import { readFileSync } from "node:fs";
import type { FleetConfig } from "../core/config";
import { ConfigError } from "../core/errors";

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
  /** the connection failed and has not come back yet */
  private down = false;
  lastError: string | null = null;

  /**
   * `onConnect` after every connection; `onOutage` once when Redis goes away (or cannot be
   * reached at first), with why, and once when it is back (null): a log says each outage once.
   */
  constructor(
    private readonly settings: FleetConfig,
    private readonly onConnect: () => void = () => {},
    private readonly onOutage: (error: string | null) => void = () => {},
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
        if (this.down) {
          this.down = false;
          this.onOutage(null);
        }
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
    if (this.closed) return;
    if (!this.down) {
      this.down = true;
      this.onOutage(message);
    }
    if (this.timer) return;
    this.timer = setTimeout(() => void this.start(), this.retryDelay * 1000);
    this.retryDelay = Math.min(10, this.retryDelay * 2);
  }

  /**
   * fn on the live connection, or null when there is none; an error drops the connection for a
   * retry. So does no answer within connectTimeout (plus `waitMs`, the time a blocking command
   * asks the server to wait): a Redis that is stopped (SIGSTOP, a frozen VM) keeps its socket
   * open and answers nothing, and the link would otherwise say "connected" while no decision moves.
   */
  async run<T>(fn: (client: RedisClient) => Promise<T>, waitMs = 0): Promise<T | null> {
    const client = this.client;
    if (!client?.connected) return null;
    const seconds = this.settings.connectTimeout + waitMs / 1000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silent = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`Redis did not answer within ${seconds} s`)), seconds * 1000)));
    try {
      return await Promise.race([fn(client), silent]);
    } catch (e) {
      if (this.client === client && (e as Error).message.startsWith("Redis did not answer")) {
        this.client = null;
        client.close();
        this.failed((e as Error).message);
        throw e;
      }
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
    } finally {
      clearTimeout(timer);
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
