/**
 * Forward-confirmed reverse DNS, asynchronous, cached and bounded, so that a line never waits.
 *
 * Classes: NXDOMAIN (the address has no reverse name), FAKEHOST (its reverse names do not
 * resolve back to it: probable spoofing), TRUEHOST (one does), UNKNOWN (our resolver timed out
 * or failed: SERVFAIL is not NXDOMAIN, so never presume guilt from our own resolver's trouble).
 * A reverse name is attacker-controlled text: it is only ever compared, never used as an
 * address, stored or logged.
 *
 * The client speaks DNS over UDP itself: node:dns in Bun reports timeouts and SERVFAIL as
 * ENOTFOUND, which would turn our resolver's trouble into the attacker's guilt.
 */
import type { udp } from "bun";
import { readFileSync } from "node:fs";
import { BoundedMap } from "./bounded-map";
import { type Ip, parseIp } from "./ip";

/** ALLOWED: a TRUEHOST whose name is under one of the module's `dnsAllow` domains (a search engine's crawlers) */
export type HostClass = "NXDOMAIN" | "FAKEHOST" | "TRUEHOST" | "ALLOWED" | "UNKNOWN";
/** classes whose affair counter is preset to maxAffairs - 1 */
export const PRESET_CLASSES: ReadonlySet<string> = new Set(["NXDOMAIN", "FAKEHOST"]);

const TYPE_A = 1;
const TYPE_PTR = 12;
const TYPE_AAAA = 28;
const RCODE_NXDOMAIN = 3;
const MAX_NAMES = 4;

interface Answer {
  readonly rcode: number;
  readonly values: string[];
}

/** The system's name servers, from /etc/resolv.conf (port 53). */
export function systemNameServers(): string[] {
  try {
    return readFileSync("/etc/resolv.conf", "utf8")
      .split("\n")
      .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
      .filter((s): s is string => !!s && parseIp(s) !== null);
  } catch {
    return [];
  }
}

function encodeQuery(id: number, name: string, type: number): Uint8Array {
  const labels = name.split(".").filter((l) => l.length > 0);
  const body: number[] = [id >> 8, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const label of labels) body.push(label.length, ...Array.from(label, (c) => c.charCodeAt(0)));
  body.push(0, type >> 8, type & 255, 0, 1);
  return new Uint8Array(body);
}

/** A (possibly compressed) name at `at`; null when malformed. */
function readName(msg: Uint8Array, at: number): { name: string; end: number } | null {
  const labels: string[] = [];
  let i = at;
  let end = -1;
  for (let jumps = 0; jumps < 64; ) {
    if (i >= msg.length) return null;
    const len = msg[i]!;
    if (len === 0) {
      return { name: labels.join("."), end: end < 0 ? i + 1 : end };
    }
    if ((len & 0xc0) === 0xc0) {
      if (i + 1 >= msg.length) return null;
      if (end < 0) end = i + 2;
      i = ((len & 0x3f) << 8) | msg[i + 1]!;
      jumps++;
      continue;
    }
    if (i + 1 + len > msg.length || labels.length > 127) return null;
    labels.push(String.fromCharCode(...msg.subarray(i + 1, i + 1 + len)));
    i += 1 + len;
  }
  return null;
}

function parseAnswer(msg: Uint8Array, type: number): Answer | null {
  if (msg.length < 12) return null;
  const rcode = msg[3]! & 0x0f;
  const qd = (msg[4]! << 8) | msg[5]!;
  const an = (msg[6]! << 8) | msg[7]!;
  let at = 12;
  for (let q = 0; q < qd; q++) {
    const n = readName(msg, at);
    if (!n) return null;
    at = n.end + 4;
  }
  const values: string[] = [];
  for (let a = 0; a < an; a++) {
    const n = readName(msg, at);
    if (!n || n.end + 10 > msg.length) return null;
    const rtype = (msg[n.end]! << 8) | msg[n.end + 1]!;
    const rdlength = (msg[n.end + 8]! << 8) | msg[n.end + 9]!;
    const rdata = n.end + 10;
    if (rdata + rdlength > msg.length) return null;
    if (rtype === type) {
      if (type === TYPE_PTR) {
        const target = readName(msg, rdata);
        if (target) values.push(target.name.toLowerCase());
      } else if (type === TYPE_A && rdlength === 4) {
        values.push(Array.from(msg.subarray(rdata, rdata + 4)).join("."));
      } else if (type === TYPE_AAAA && rdlength === 16) {
        const g: string[] = [];
        for (let k = 0; k < 16; k += 2) g.push(((msg[rdata + k]! << 8) | msg[rdata + k + 1]!).toString(16));
        values.push(g.join(":"));
      }
    }
    at = rdata + rdlength;
  }
  return { rcode, values };
}

/** `7.2.0.192.in-addr.arpa` / nibbles `.ip6.arpa` */
export function reverseName(ip: Ip): string {
  if (ip.family === 4) return `${[...ip.bytes].reverse().join(".")}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (const b of ip.bytes) nibbles.push((b >> 4).toString(16), (b & 15).toString(16));
  return `${nibbles.reverse().join(".")}.ip6.arpa`;
}

export interface DnsClientOptions {
  /** `address` or `address:port`; IPv6 as `[addr]:port` */
  readonly servers: readonly string[];
  /** seconds per try */
  readonly timeout: number;
  /** tries after the first, each on the next server */
  readonly retries: number;
  /** domains whose forward-confirmed hosts are ALLOWED: never counted */
  readonly allow?: readonly string[];
}

function splitServer(s: string): { host: string; port: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  return m ? { host: m[1]!, port: Number(m[2]) } : { host: s, port: 53 };
}

/** `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53` or `[2001:db8::53]:5353` */
export function isNameServer(s: string): boolean {
  const { host, port } = splitServer(s);
  return parseIp(host) !== null && Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** A minimal stub resolver over UDP: one socket, queries matched by id. */
export class DnsClient {
  private socket: udp.Socket<"buffer"> | null = null;
  private opening: Promise<void> | null = null;
  private readonly pending = new Map<number, (msg: Uint8Array) => void>();
  private nextId = Math.floor(Math.random() * 65536);
  private readonly servers: { host: string; port: number }[];

  constructor(private readonly o: DnsClientOptions) {
    this.servers = o.servers.map(splitServer);
  }

  private async open(): Promise<void> {
    this.opening ??= (async () => {
      this.socket = await Bun.udpSocket({
        socket: {
          data: (_sock, data) => {
            const msg = new Uint8Array(data);
            const id = (msg[0]! << 8) | msg[1]!;
            this.pending.get(id)?.(msg);
          },
          /* ICMP unreachable from a dead server: its queries time out, as they would anyway */
          error: () => {},
        },
      });
    })();
    await this.opening;
  }

  /** Values of the answer records, or null when no server answered in time or one failed. */
  async query(name: string, type: number): Promise<Answer | null> {
    if (this.servers.length === 0) return null;
    await this.open();
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      const server = this.servers[attempt % this.servers.length]!;
      let id = this.nextId++ & 0xffff;
      while (this.pending.has(id)) id = this.nextId++ & 0xffff;
      const reply = await new Promise<Uint8Array | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), this.o.timeout * 1000);
        this.pending.set(id, (msg) => {
          clearTimeout(timer);
          resolve(msg);
        });
        this.socket!.send(encodeQuery(id, name, type), server.port, server.host);
      });
      this.pending.delete(id);
      const answer = reply && parseAnswer(reply, type);
      if (answer && (answer.rcode === 0 || answer.rcode === RCODE_NXDOMAIN)) return answer;
    }
    return null;
  }

  /** The FCrDNS class of an address. */
  async classify(ip: Ip): Promise<HostClass> {
    const ptr = await this.query(reverseName(ip), TYPE_PTR);
    if (!ptr) return "UNKNOWN";
    if (ptr.rcode === RCODE_NXDOMAIN || ptr.values.length === 0) return "NXDOMAIN";
    let trouble = false;
    for (const name of ptr.values.slice(0, MAX_NAMES)) {
      const forward = await this.query(name, ip.family === 4 ? TYPE_A : TYPE_AAAA);
      if (!forward) {
        trouble = true;
        continue;
      }
      if (forward.values.some((v) => parseIp(v)?.text === ip.text)) {
        /* compared only: the confirmed name is the domain's word, no longer the attacker's */
        const allowed = (this.o.allow ?? []).some((d) => name === d || name.endsWith(`.${d}`));
        return allowed ? "ALLOWED" : "TRUEHOST";
      }
    }
    return trouble ? "UNKNOWN" : "FAKEHOST";
  }

  close(): void {
    this.socket?.close();
    this.socket = null;
    this.opening = null;
  }
}

export interface ClassifierOptions {
  readonly concurrency: number;
  readonly queueSize: number;
  readonly cacheSize: number;
  /** seconds a TRUEHOST stays cached */
  readonly positiveTtl: number;
  /** seconds an NXDOMAIN or FAKEHOST stays cached */
  readonly negativeTtl: number;
}

/** UNKNOWN is our trouble, not the host's: ask again after a minute */
const UNKNOWN_TTL = 60;

export interface ClassifierStats {
  lookups: number;
  cacheHits: number;
  /** requests dropped because the queue was full: those hosts stay unclassified for now */
  dropped: number;
}

/**
 * Lookups with a cache, a bounded queue and a concurrency bound. `request` never waits: the
 * result comes through the callback, later, between read chunks.
 */
export class DnsClassifier {
  readonly stats: ClassifierStats = { lookups: 0, cacheHits: 0, dropped: 0 };
  private readonly cache: BoundedMap<string, { cls: HostClass; expires: number }>;
  private readonly queue: Ip[] = [];
  private readonly waiting = new Set<string>();
  private active = 0;

  constructor(
    private readonly client: Pick<DnsClient, "classify">,
    private readonly o: ClassifierOptions,
    private readonly onResult: (address: string, cls: HostClass) => void,
    private readonly clock: () => number = () => Math.floor(Date.now() / 1000),
  ) {
    this.cache = new BoundedMap(o.cacheSize);
  }

  /** The cached class, if fresh. */
  cached(address: string): HostClass | null {
    const hit = this.cache.get(address);
    if (!hit) return null;
    if (hit.expires <= this.clock()) {
      this.cache.delete(address);
      return null;
    }
    this.stats.cacheHits++;
    return hit.cls;
  }

  /** Queue a lookup unless one is under way; when the queue is full the request is dropped. */
  request(ip: Ip): void {
    if (this.waiting.has(ip.text)) return;
    if (this.queue.length >= this.o.queueSize) {
      this.stats.dropped++;
      return;
    }
    this.waiting.add(ip.text);
    this.queue.push(ip);
    this.pump();
  }

  get pending(): number {
    return this.waiting.size;
  }

  private pump(): void {
    while (this.active < this.o.concurrency && this.queue.length > 0) {
      const ip = this.queue.shift()!;
      this.active++;
      this.stats.lookups++;
      void this.client
        .classify(ip)
        .catch((): HostClass => "UNKNOWN")
        .then((cls) => {
          this.active--;
          this.waiting.delete(ip.text);
          this.remember(ip.text, cls);
          this.onResult(ip.text, cls);
          this.pump();
        });
    }
  }

  private remember(address: string, cls: HostClass): void {
    const ttl = cls === "TRUEHOST" || cls === "ALLOWED" ? this.o.positiveTtl : cls === "UNKNOWN" ? UNKNOWN_TTL : this.o.negativeTtl;
    this.cache.set(address, { cls, expires: this.clock() + ttl });
  }
}
