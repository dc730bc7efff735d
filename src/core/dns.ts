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
 * ENOTFOUND, which would turn our resolver's trouble into the attacker's guilt. Since a forged
 * NXDOMAIN would preset an innocent host's counter, it believes an answer only from the server
 * and port it asked, with the random id of a waiting query and that query's question
 * (test/safety/dns-forgery.test.ts).
 */
import type { udp } from "bun";
import { readFileSync } from "node:fs";
import { BoundedMap } from "./bounded-map";
import { type Ip, parseIp } from "./ip";
import { nowSeconds } from "./duration";

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
  /** PTR: the names, in wire format (labels as length and bytes, then the root), uncompressed */
  readonly names: Uint8Array[];
  /** A, AAAA: one of the records is the address the try confirms (compared by bytes where it lies in the answer, never parsed as text) */
  readonly confirms: boolean;
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

/*
 * The helpers below run for every query and answer. A process classifies a few hundred
 * addresses, so what they cost is mostly their first runs and the JIT's compilations of them
 * (bench/README.md, DNS): names stay in wire format from the answer that gave them to the
 * query that asks for them, bytes are copied with set() and compared with compare() (native
 * code), and on the usual path no loop runs over a name's characters: the reverse name is
 * written from the address's bytes, and no text is built for a name unless an allowed domain
 * must be compared with it.
 */

/** `name` (ASCII, dotted; empty labels are skipped) in wire format. */
function wireName(name: string): Uint8Array {
  let size = 1;
  for (let i = 0, start = 0; i <= name.length; i++) {
    if (i < name.length && name.charCodeAt(i) !== 46) continue;
    if (i > start) size += 1 + i - start;
    start = i + 1;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (let i = 0, start = 0; i <= name.length; i++) {
    if (i < name.length && name.charCodeAt(i) !== 46) continue;
    if (i > start) {
      out[at++] = i - start;
      for (let k = start; k < i; k++) out[at++] = name.charCodeAt(k);
    }
    start = i + 1;
  }
  return out;
}

/** A name in wire format as lower-case dotted text (only to compare it with an allowed domain). */
function nameText(name: Uint8Array): string {
  let text = "";
  for (let at = 0; name[at]! !== 0; at += 1 + name[at]!) {
    if (at > 0) text += ".";
    for (let k = at + 1; k <= at + name[at]!; k++) text += String.fromCharCode(name[k]!);
  }
  return text.toLowerCase();
}

/** A query: header with `id`, one question (`name` in wire format, `type`, class IN). */
function encodeQuery(id: number, name: Uint8Array, type: number): Buffer {
  const q = Buffer.alloc(12 + name.length + 4);
  q[0] = id >> 8;
  q[1] = id & 255;
  q[2] = 0x01; /* recursion desired */
  q[5] = 1; /* one question */
  q.set(name, 12);
  const at = 12 + name.length;
  q[at] = type >> 8;
  q[at + 1] = type & 255;
  q[at + 3] = 1; /* class IN */
  return q;
}

/** Where the (possibly compressed) name at `at` ends; -1 when malformed. */
function skipName(msg: Uint8Array, at: number): number {
  while (at < msg.length) {
    const len = msg[at]!;
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) return at + 1 < msg.length && (((len & 0x3f) << 8) | msg[at + 1]!) < msg.length ? at + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    at += 1 + len;
  }
  return -1;
}

/** The (possibly compressed) name at `at`, uncompressed in wire format; null when malformed or longer than 255 bytes. */
function readName(msg: Uint8Array, at: number): Uint8Array | null {
  const name = new Uint8Array(255);
  let size = 0;
  for (let jumps = 0; jumps < 64 && at < msg.length; ) {
    const len = msg[at]!;
    if (len === 0) return name.subarray(0, size + 1);
    if ((len & 0xc0) === 0xc0) {
      if (at + 1 >= msg.length) return null;
      at = ((len & 0x3f) << 8) | msg[at + 1]!;
      jumps++;
      continue;
    }
    if ((len & 0xc0) !== 0 || at + 1 + len > msg.length || size + 1 + len >= name.length) return null;
    name.set(msg.subarray(at, at + 1 + len), size);
    size += 1 + len;
    at += 1 + len;
  }
  return null;
}

/**
 * The answer's rcode and records of `type`, read from `at`, the end of its one question
 * (checked by sameQuestion). `confirm`: for A and AAAA, the address whose record is looked for.
 */
function parseAnswer(msg: Uint8Array, type: number, at: number, confirm: Ip | null): Answer | null {
  const rcode = msg[3]! & 0x0f;
  const an = (msg[6]! << 8) | msg[7]!;
  const names: Uint8Array[] = [];
  let confirms = false;
  for (let a = 0; a < an; a++) {
    const end = skipName(msg, at);
    if (end < 0 || end + 10 > msg.length) return null;
    const rtype = (msg[end]! << 8) | msg[end + 1]!;
    const rdlength = (msg[end + 8]! << 8) | msg[end + 9]!;
    const rdata = end + 10;
    if (rdata + rdlength > msg.length) return null;
    if (rtype === type) {
      if (type === TYPE_PTR) {
        const target = readName(msg, rdata);
        if (target) names.push(target);
      } else if (confirm && rdlength === confirm.bytes.length && ((type === TYPE_A && rdlength === 4) || (type === TYPE_AAAA && rdlength === 16))) {
        confirms ||= sameBytes(msg, rdata, confirm.bytes);
      }
    }
    at = rdata + rdlength;
  }
  return { rcode, names, confirms };
}

/** Are the bytes of `msg` from `at` those of `bytes`? */
function sameBytes(msg: Uint8Array, at: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (msg[at + i] !== bytes[i]) return false;
  return true;
}

const HEX = "0123456789abcdef";
const HEX_CODES = new TextEncoder().encode(HEX);
const IN_ADDR_ARPA = wireName("in-addr.arpa");
const IP6_ARPA = wireName("ip6.arpa");

/** `7.2.0.192.in-addr.arpa` / nibbles `.ip6.arpa` */
export function reverseName(ip: Ip): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[3]}.${b[2]}.${b[1]}.${b[0]}.in-addr.arpa`;
  let name = "";
  for (let i = b.length - 1; i >= 0; i--) name += `${HEX[b[i]! & 15]}.${HEX[b[i]! >> 4]}.`;
  return `${name}ip6.arpa`;
}

/** reverseName in wire format, written from the address's bytes. */
function reverseWireName(ip: Ip): Uint8Array {
  const b = ip.bytes;
  if (ip.family === 6) {
    const name = new Uint8Array(64 + IP6_ARPA.length);
    for (let i = 15, at = 0; i >= 0; i--, at += 4) {
      name[at] = 1;
      name[at + 1] = HEX_CODES[b[i]! & 15]!;
      name[at + 2] = 1;
      name[at + 3] = HEX_CODES[b[i]! >> 4]!;
    }
    name.set(IP6_ARPA, 64);
    return name;
  }
  const name = new Uint8Array(16 + IN_ADDR_ARPA.length);
  let at = 0;
  for (let i = 3; i >= 0; i--) {
    const v = b[i]!;
    name[at++] = v >= 100 ? 3 : v >= 10 ? 2 : 1;
    if (v >= 100) name[at++] = 48 + Math.floor(v / 100);
    if (v >= 10) name[at++] = 48 + (Math.floor(v / 10) % 10);
    name[at++] = 48 + (v % 10);
  }
  name.set(IN_ADDR_ARPA, at);
  return name.subarray(0, at + IN_ADDR_ARPA.length);
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
  /** UDP sockets in the pool, each on a port the kernel chooses (default 4) */
  readonly sockets?: number;
  /** a socket is replaced by one on a new port after this many queries (default 100) ... */
  readonly renewAfterQueries?: number;
  /** ... or this many seconds (default 60), whichever comes first */
  readonly renewAfterSeconds?: number;
  /** where dropped answers are reported, at most once a minute (default: stderr) */
  readonly log?: (message: string) => void;
}

/**
 * What the client sent and what it let in. An answer counts only when it comes from the address
 * and port that was asked, carries the id of a query waiting there, and repeats its question;
 * every other datagram is dropped and counted here, by the first test it failed.
 */
export interface DnsClientStats {
  /** queries sent */
  queries: number;
  /** answers accepted */
  answers: number;
  /** tries that got no acceptable answer in time */
  timeouts: number;
  /** dropped: from an address or port other than the server asked (forged, or a stray) */
  fromElsewhere: number;
  /** dropped: from a server, but no query with that id waits on the socket (forged, or late) */
  wrongId: number;
  /** dropped: the id of a waiting query with another question (name, type, class), or no answer */
  wrongQuestion: number;
  /** dropped: the right question, but the records cannot be read */
  malformed: number;
  /** sockets opened: the pool is renewed as it is used */
  sockets: number;
}

interface Server {
  readonly host: string;
  readonly port: number;
  /** canonical text of the address, to compare with where an answer came from */
  readonly text: string;
  /** the address as the socket reports an answer's source (IPv4 through a dual-stack socket: `::ffff:a.b.c.d`) */
  seenAs: string;
}

function splitServer(s: string): Server {
  const m = /^\[(.+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  const { host, port } = m ? { host: m[1]!, port: Number(m[2]) } : { host: s, port: 53 };
  const text = parseIp(host)?.text ?? host;
  return { host, port, text, seenAs: text };
}

/** `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53` or `[2001:db8::53]:5353` */
export function isNameServer(s: string): boolean {
  const { host, port } = splitServer(s);
  return parseIp(host) !== null && Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** one try of a query, waiting for its answer on one socket */
interface Waiting {
  readonly slot: Slot;
  readonly id: number;
  readonly server: Server;
  /** the query as sent: its question is what the answer must repeat */
  readonly query: Buffer;
  /** the question's name, in wire format */
  readonly name: Uint8Array;
  readonly type: number;
  /** A, AAAA: the address the answer should confirm */
  readonly confirm: Ip | null;
  /** tries made before this one */
  readonly attempt: number;
  /** performance.now() past which this try has failed */
  readonly deadline: number;
  /** answered, failed or timed out */
  settled: boolean;
  readonly resolve: (answer: Answer | null) => void;
}

interface Slot {
  readonly socket: udp.Socket<"buffer">;
  /** by query id */
  readonly waiting: Map<number, Waiting>;
  uses: number;
  readonly born: number;
  /** out of the pool: closed when its last query ends */
  retired: boolean;
}

/**
 * Does the answer repeat the question of `query` (as encodeQuery wrote it): one question, the
 * same labels in any ASCII case, the same type and class? Compared in place, with no
 * allocation: at once when the answer repeats it byte for byte, as most do, else byte by byte
 * (a resolver that varies the case, 0x20). Returns where the question ends, or -1.
 */
function sameQuestion(msg: Uint8Array, query: Buffer): number {
  if (msg.length < query.length || (msg[2]! & 0x80) === 0 || msg[4] !== 0 || msg[5] !== 1) return -1;
  if (query.compare(msg, 12, query.length, 12, query.length) === 0) return query.length;
  const typeAt = query.length - 4;
  for (let i = 12; i < typeAt; i++) {
    let a = msg[i]!;
    let b = query[i]!;
    if (a === b) continue;
    /* letters only: length bytes (at most 63) match exactly, so the labels line up */
    if (a >= 65 && a <= 90) a |= 0x20;
    if (b >= 65 && b <= 90) b |= 0x20;
    if (a !== b) return -1;
  }
  for (let i = typeAt; i < query.length; i++) if (msg[i] !== query[i]) return -1;
  return query.length;
}

const LOG_EVERY_MS = 60_000;

/**
 * A minimal stub resolver over UDP. Forgery costs a blind attacker a guess of a 16-bit random id
 * times the port of one of a few sockets on kernel-chosen ports, renewed as they are used, and
 * even then the answer must come from the server's own address and port and repeat the question.
 *
 * Per try, the work is an id, the query's bytes and one send; an answer costs a map lookup and
 * the parse. Every try has the same timeout, so tries expire in the order they were sent: one
 * timer, armed for the oldest try still waiting, stands for all of them, and it is not armed
 * again once it finds nothing waiting.
 */
export class DnsClient {
  readonly stats: DnsClientStats = { queries: 0, answers: 0, timeouts: 0, fromElsewhere: 0, wrongId: 0, wrongQuestion: 0, malformed: 0, sockets: 0 };
  private readonly servers: readonly Server[];
  /** the sockets in use, and those being opened */
  private readonly pool: (Slot | null)[];
  private readonly opening: (Promise<Slot> | null)[];
  /** every socket not yet closed, in the pool or retired */
  private readonly open = new Set<Slot>();
  private readonly renewQueries: number;
  private readonly renewMs: number;
  private readonly timeoutMs: number;
  private readonly bindTo: string | undefined;
  private readonly log: (message: string) => void;
  private readonly random = new Uint16Array(256);
  private randomAt = this.random.length;
  /** tries in the order they were sent, which is the order they expire; settled ones are skipped */
  private expiring: Waiting[] = [];
  /** tries not settled yet */
  private unsettled = 0;
  private expiryTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private loggedAt = -Infinity;
  private droppedSinceLog = 0;

  constructor(private readonly o: DnsClientOptions) {
    this.servers = o.servers.map(splitServer);
    const sockets = Math.max(1, o.sockets ?? 4);
    this.pool = new Array<Slot | null>(sockets).fill(null);
    this.opening = new Array<Promise<Slot> | null>(sockets).fill(null);
    this.renewQueries = Math.max(1, o.renewAfterQueries ?? 100);
    this.renewMs = (o.renewAfterSeconds ?? 60) * 1000;
    this.timeoutMs = o.timeout * 1000;
    /*
     * servers all on the IPv4 loopback: sockets there, out of the network's reach; any IPv6
     * server: dual-stack sockets, which see IPv4 sources as IPv4-mapped; else the default, 0.0.0.0
     */
    const v6 = this.servers.some((s) => s.text.includes(":"));
    this.bindTo = v6 ? "::" : this.servers.length > 0 && this.servers.every((s) => s.text.startsWith("127.")) ? "127.0.0.1" : undefined;
    if (v6) for (const s of this.servers) if (!s.text.includes(":")) s.seenAs = `::ffff:${s.text}`;
    this.log = o.log ?? ((m) => process.stderr.write(`${new Date().toISOString()} watcher dns: ${m}\n`));
  }

  /** 16 random bits, from the system's CSPRNG, drawn 256 at a time */
  private random16(): number {
    if (this.randomAt === this.random.length) {
      crypto.getRandomValues(this.random);
      this.randomAt = 0;
    }
    return this.random[this.randomAt++]!;
  }

  private async openSlot(): Promise<Slot> {
    const waiting = new Map<number, Waiting>();
    const socket = await Bun.udpSocket({
      ...(this.bindTo ? { hostname: this.bindTo } : {}),
      socket: {
        data: (_sock, data, port, address) => this.receive(slot, data, port, address),
        /* ICMP unreachable from a dead server: its queries time out, as they would anyway */
        error: () => {},
      },
    });
    /* closed while it opened: it serves the try that waited for it, then closes */
    const slot: Slot = { socket, waiting, uses: 0, born: performance.now(), retired: this.closed };
    this.open.add(slot);
    this.stats.sockets++;
    return slot;
  }

  /**
   * A socket of the pool, chosen at random; one worn by use or age is retired and replaced first.
   * An open one is returned as it is: a promise only while a socket is being opened.
   */
  private slot(): Slot | Promise<Slot> {
    const i = this.random16() % this.pool.length;
    const s = this.pool[i];
    if (s) {
      if (s.uses < this.renewQueries && performance.now() - s.born < this.renewMs) {
        s.uses++;
        return s;
      }
      this.pool[i] = null;
      s.retired = true;
      this.release(s);
    }
    let next = this.opening[i];
    if (!next) {
      const opened = this.openSlot();
      this.opening[i] = next = opened;
      opened.then(
        (slot) => {
          this.opening[i] = null;
          if (!slot.retired) this.pool[i] = slot;
        },
        () => {
          this.opening[i] = null; /* the next query tries again */
        },
      );
    }
    return next.then((slot) => {
      slot.uses++;
      return slot;
    });
  }

  /** Close a retired socket once no query waits on it. */
  private release(s: Slot): void {
    if (s.retired && s.waiting.size === 0 && this.open.delete(s)) s.socket.close();
  }

  /** Every datagram that reaches a socket: the answer of a waiting query, or dropped and counted. */
  private receive(slot: Slot, msg: Uint8Array, port: number, address: string): void {
    const w = msg.length >= 12 ? slot.waiting.get((msg[0]! << 8) | msg[1]!) : undefined;
    if (!w) {
      let fromServer = false;
      for (const s of this.servers) if (s.port === port && (s.seenAs === address || s.text === parseIp(address)?.text)) fromServer = true;
      return this.drop(fromServer ? "wrongId" : "fromElsewhere", address, port);
    }
    if (port !== w.server.port || (address !== w.server.seenAs && parseIp(address)?.text !== w.server.text)) return this.drop("fromElsewhere", address, port);
    const end = sameQuestion(msg, w.query);
    if (end < 0) return this.drop("wrongQuestion", address, port);
    const answer = parseAnswer(msg, w.type, end, w.confirm);
    if (!answer) return this.drop("malformed", address, port);
    this.stats.answers++;
    this.settle(w, answer);
  }

  private drop(why: "fromElsewhere" | "wrongId" | "wrongQuestion" | "malformed", address: string, port: number): void {
    this.stats[why]++;
    this.droppedSinceLog++;
    const now = Date.now();
    if (now - this.loggedAt < LOG_EVERY_MS) return;
    const { fromElsewhere, wrongId, wrongQuestion, malformed } = this.stats;
    const since = this.loggedAt === -Infinity ? "" : " since the last report";
    this.log(
      `dropped ${this.droppedSinceLog} DNS answer(s)${since}, the latest from ${address}:${port} (${why}); ` +
        `in all ${fromElsewhere} from an address or port not asked, ${wrongId} with no waiting query of that id, ${wrongQuestion} with another question, ${malformed} unreadable. ` +
        "Only answers to our own questions from the server asked count; many dropped ones may be an attempt to forge host classes (next report in a minute at the earliest)",
    );
    this.loggedAt = now;
    this.droppedSinceLog = 0;
  }

  /** Values of the answer records, or null when no server answered in time or one failed. */
  query(name: string, type: number): Promise<Answer | null> {
    return new Promise((resolve) => this.ask(wireName(name), type, null, 0, resolve));
  }

  /** Try `attempt` of a query for `name` (wire format), on the next server; `resolve` has its answer. */
  private ask(name: Uint8Array, type: number, confirm: Ip | null, attempt: number, resolve: (answer: Answer | null) => void): void {
    if (this.closed || this.servers.length === 0) return resolve(null);
    let slot: Slot | Promise<Slot>;
    try {
      slot = this.slot();
    } catch {
      return resolve(null); /* no socket (out of descriptors?): our trouble, UNKNOWN */
    }
    if (slot instanceof Promise) slot.then((s) => this.send(s, name, type, confirm, attempt, resolve), () => resolve(null));
    else this.send(slot, name, type, confirm, attempt, resolve);
  }

  private send(slot: Slot, name: Uint8Array, type: number, confirm: Ip | null, attempt: number, resolve: (answer: Answer | null) => void): void {
    const server = this.servers[attempt % this.servers.length]!;
    let id = this.random16();
    while (slot.waiting.has(id)) id = this.random16();
    const query = encodeQuery(id, name, type);
    const w: Waiting = { slot, id, server, query, name, type, confirm, attempt, deadline: performance.now() + this.timeoutMs, settled: false, resolve };
    slot.waiting.set(id, w);
    this.expiring.push(w);
    this.unsettled++;
    this.expiryTimer ??= setTimeout(this.expire, this.timeoutMs);
    this.stats.queries++;
    try {
      slot.socket.send(query, server.port, server.host);
    } catch {
      /* the ICMP error of an earlier try to a dead server fails the socket's next send, whatever its server, once */
      try {
        slot.socket.send(query, server.port, server.host);
      } catch {
        this.settle(w, null); /* unreachable from here (EAFNOSUPPORT, ENETUNREACH): this try failed, the next server may do */
      }
    }
  }

  /** A try ended: its answer, or null (timed out, failed); a failed one goes on to the next try. */
  private settle(w: Waiting, answer: Answer | null): void {
    w.settled = true;
    w.slot.waiting.delete(w.id);
    this.release(w.slot);
    this.unsettled--;
    if (answer && (answer.rcode === 0 || answer.rcode === RCODE_NXDOMAIN)) w.resolve(answer);
    else if (w.attempt < this.o.retries) this.ask(w.name, w.type, w.confirm, w.attempt + 1, w.resolve);
    else w.resolve(null);
  }

  /**
   * The expiry timer: tries past their deadline fail (the next try may follow); armed again for
   * the oldest left, if any. It stays armed when the last try is answered (it then finds nothing
   * and stops), so that tries that follow each other one at a time do not each start and stop a
   * timer of their own.
   */
  private readonly expire = (): void => {
    this.expiryTimer = null;
    const now = performance.now();
    const tries = this.expiring;
    let due = 0;
    while (due < tries.length && (tries[due]!.settled || tries[due]!.deadline <= now)) due++;
    this.expiring = tries.slice(due);
    for (let i = 0; i < due; i++) {
      const w = tries[i]!;
      if (w.settled) continue;
      this.stats.timeouts++;
      this.settle(w, null);
    }
    const oldest = this.expiring[0];
    if (oldest && !this.expiryTimer) this.expiryTimer = setTimeout(this.expire, Math.max(0, oldest.deadline - now));
  };

  /** The FCrDNS class of an address. */
  classify(ip: Ip): Promise<HostClass> {
    return new Promise((resolve) => this.lookup(ip, resolve));
  }

  /*
   * A lookup is a chain of callbacks, not an async function: each step is a plain call from the
   * answer that ends the last one, with no promise or suspended frame per query.
   */

  /** The reverse names of `ip`, then each one's forward records, until one confirms it. */
  private lookup(ip: Ip, done: (cls: HostClass) => void): void {
    this.ask(reverseWireName(ip), TYPE_PTR, null, 0, (ptr) => {
      if (!ptr) return done("UNKNOWN");
      if (ptr.rcode === RCODE_NXDOMAIN || ptr.names.length === 0) return done("NXDOMAIN");
      this.confirm(ip, ptr.names, 0, false, done);
    });
  }

  /** Does reverse name `n` (of the first MAX_NAMES) resolve back to `ip`? `trouble`: an earlier name's lookup failed. */
  private confirm(ip: Ip, names: Uint8Array[], n: number, trouble: boolean, done: (cls: HostClass) => void): void {
    if (n >= names.length || n >= MAX_NAMES) return done(trouble ? "UNKNOWN" : "FAKEHOST");
    const name = names[n]!;
    this.ask(name, ip.family === 4 ? TYPE_A : TYPE_AAAA, ip, 0, (forward) => {
      if (!forward || !forward.confirms) return this.confirm(ip, names, n + 1, trouble || !forward, done);
      /* compared only: the confirmed name is the domain's word, no longer the attacker's */
      const allow = this.o.allow ?? [];
      if (allow.length > 0) {
        const text = nameText(name);
        for (let d = 0; d < allow.length; d++) if (text === allow[d] || text.endsWith(`.${allow[d]}`)) return done("ALLOWED");
      }
      done("TRUEHOST");
    });
  }

  /** Close every socket; tries still waiting end as their timeouts expire (UNKNOWN), and later ones at once. */
  close(): void {
    this.closed = true;
    /* nothing waits: the timer would find nothing, and must not keep the process alive until then */
    if (this.unsettled === 0 && this.expiryTimer) {
      clearTimeout(this.expiryTimer);
      this.expiryTimer = null;
      this.expiring = [];
    }
    for (const s of this.open) s.socket.close();
    this.open.clear();
    this.pool.fill(null);
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
  /** lookups done, by the class they gave */
  classes: Record<HostClass, number>;
  /** the client's queries and the answers it let in or dropped (forged, late, stray); null for a client without stats */
  resolver: DnsClientStats | null;
}

/**
 * Lookups with a cache, a bounded queue and a concurrency bound. `request` never waits: the
 * result comes through the callback, later, between read chunks.
 *
 * `request` and `cached` are called from the per-line loop, so they stay small: a request only
 * queues, and the lookups start once the chunk in hand is done (a microtask). Starting them
 * from `request` itself put the whole lookup path into the optimised code of the counting
 * function, which the JIT then compiled at twice the cost (bench/README.md, DNS).
 */
export class DnsClassifier {
  readonly stats: ClassifierStats;
  private readonly cache: BoundedMap<string, { cls: HostClass; expires: number }>;
  /** requests not started yet, from `queueHead` on */
  private queue: Ip[] = [];
  private queueHead = 0;
  private readonly waiting = new Set<string>();
  private active = 0;
  private startQueued = false;

  constructor(
    private readonly client: Pick<DnsClient, "classify"> & { readonly stats?: DnsClientStats },
    private readonly o: ClassifierOptions,
    private readonly onResult: (address: string, cls: HostClass) => void,
    private readonly clock: () => number = nowSeconds,
  ) {
    this.cache = new BoundedMap(o.cacheSize);
    this.stats = { lookups: 0, cacheHits: 0, dropped: 0, classes: { NXDOMAIN: 0, FAKEHOST: 0, TRUEHOST: 0, ALLOWED: 0, UNKNOWN: 0 }, resolver: client.stats ?? null };
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
    if (this.queue.length - this.queueHead >= this.o.queueSize) {
      this.stats.dropped++;
      return;
    }
    this.waiting.add(ip.text);
    this.queue.push(ip);
    if (this.startQueued) return;
    this.startQueued = true;
    queueMicrotask(this.start);
  }

  get pending(): number {
    return this.waiting.size;
  }

  private readonly start = (): void => {
    this.startQueued = false;
    this.pump();
  };

  /** Start lookups from the queue up to the concurrency bound. */
  private pump(): void {
    while (this.active < this.o.concurrency && this.queueHead < this.queue.length) {
      const ip = this.queue[this.queueHead++]!;
      this.active++;
      this.stats.lookups++;
      const done = (cls: HostClass): void => {
        this.active--;
        this.waiting.delete(ip.text);
        this.stats.classes[cls]++;
        this.remember(ip.text, cls);
        this.onResult(ip.text, cls);
        this.pump();
      };
      /* one reaction per lookup: a failed lookup is our trouble, UNKNOWN */
      this.client.classify(ip).then(done, () => done("UNKNOWN"));
    }
    /* the started ones leave the array once they are the larger part of it */
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private remember(address: string, cls: HostClass): void {
    const ttl = cls === "TRUEHOST" || cls === "ALLOWED" ? this.o.positiveTtl : cls === "UNKNOWN" ? UNKNOWN_TTL : this.o.negativeTtl;
    this.cache.set(address, { cls, expires: this.clock() + ttl });
  }
}
