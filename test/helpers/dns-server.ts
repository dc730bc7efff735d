/**
 * A small authoritative DNS server over UDP on loopback, for classification tests: PTR, A and
 * AAAA answers from a table, NXDOMAIN for unknown names, answers that come late or never, and
 * a count of the queries each name received. For forgery tests: answers held until a condition,
 * lies sent from the server's own port before the true answer, the question echoed in upper
 * case, a log of each query's id and source port, and `dnsAnswer` to build answers by hand.
 */
import type { udp } from "bun";

export interface DnsRecords {
  /** name → PTR targets */
  ptr?: Record<string, string[]>;
  a?: Record<string, string[]>;
  aaaa?: Record<string, string[]>;
  /** names answered only after this many milliseconds */
  delayMs?: Record<string, number>;
  /** names never answered */
  silent?: string[];
  /** names answered SERVFAIL */
  servfail?: string[];
  /** names whose answer waits for this promise (then for delayMs) */
  hold?: Record<string, (query: SeenQuery) => Promise<unknown>>;
  /** names for which these datagrams go out first, from the server's own address and port */
  lies?: Record<string, (query: SeenQuery) => Uint8Array[]>;
  /** names whose answer repeats the question in upper case (as resolvers using 0x20 do) */
  shout?: string[];
}

/** A query as the server saw it: name (lower case), type, id, and the port it came from. */
export interface SeenQuery {
  readonly name: string;
  readonly type: number;
  readonly id: number;
  readonly port: number;
}

/** An answer without records (NXDOMAIN by default) to the question `name`/`type`/`qclass`, built by hand. */
export function dnsAnswer(o: { id: number; name: string; type: number; qclass?: number; rcode?: number; response?: boolean }): Uint8Array {
  const qclass = o.qclass ?? 1;
  const header = [o.id >> 8, o.id & 255, (o.response ?? true) ? 0x81 : 0x01, 0x80 | (o.rcode ?? 3), 0, 1, 0, 0, 0, 0, 0, 0];
  return new Uint8Array([...header, ...encodeName(o.name), o.type >> 8, o.type & 255, qclass >> 8, qclass & 255]);
}

const TYPE = { A: 1, PTR: 12, AAAA: 28 } as const;

function encodeName(name: string): number[] {
  const out: number[] = [];
  for (const label of name.replace(/\.$/, "").split(".")) {
    out.push(label.length, ...new TextEncoder().encode(label));
  }
  out.push(0);
  return out;
}

function readName(buf: Uint8Array, at: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = at;
  while (buf[i]! !== 0) {
    const len = buf[i]!;
    labels.push(new TextDecoder().decode(buf.subarray(i + 1, i + 1 + len)));
    i += 1 + len;
  }
  return { name: labels.join(".").toLowerCase(), end: i + 1 };
}

function ipv6Bytes(text: string): number[] {
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 255]);
}

export class TestDnsServer {
  readonly queries = new Map<string, number>();
  /** every query, in order of arrival */
  readonly seen: SeenQuery[] = [];
  private socket: udp.Socket<"buffer"> | null = null;

  /** `host`: the loopback address to listen on, 127.0.0.1 or ::1 */
  constructor(
    private readonly records: DnsRecords,
    private readonly host: "127.0.0.1" | "::1" = "127.0.0.1",
  ) {}

  get port(): number {
    return this.socket!.port;
  }

  /** `127.0.0.1:port` or `[::1]:port`, for a resolver's server list */
  get address(): string {
    return this.host === "::1" ? `[::1]:${this.port}` : `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.socket = await Bun.udpSocket({
      hostname: this.host,
      port: 0,
      socket: {
        /* a client that asked and went away (ICMP port unreachable): nothing to answer */
        error: () => {},
        data: (sock, data, port, address) => {
          const reply = this.answer(new Uint8Array(data), port);
          if (!reply) return;
          const name = this.lastName;
          const query = this.seen[this.seen.length - 1]!;
          for (const lie of this.records.lies?.[name]?.(query) ?? []) sock.send(lie, port, address);
          const delay = this.records.delayMs?.[name] ?? 0;
          const send = () => {
            try {
              if (this.socket) sock.send(reply, port, address); /* stopped meanwhile: stay silent */
            } catch {
              /* the client went away meanwhile */
            }
          };
          const later = () => (delay > 0 ? setTimeout(send, delay) : send());
          const hold = this.records.hold?.[name];
          if (hold) void hold(query).then(later, later);
          else later();
        },
      },
    });
    return this;
  }

  private lastName = "";

  private answer(q: Uint8Array, port: number): Uint8Array | null {
    const { name, end } = readName(q, 12);
    const type = (q[end]! << 8) | q[end + 1]!;
    this.lastName = name;
    this.queries.set(name, (this.queries.get(name) ?? 0) + 1);
    this.seen.push({ name, type, id: (q[0]! << 8) | q[1]!, port });
    if (this.records.silent?.includes(name)) return null;
    const question = Array.from(q.subarray(12, end + 4));
    /* letters only: the length bytes of the labels stay as they are */
    if (this.records.shout?.includes(name)) for (let i = 0; i < end - 12; i++) if (question[i]! >= 97 && question[i]! <= 122) question[i]! -= 32;
    const answers: number[][] = [];
    let rcode = 0;
    if (this.records.servfail?.includes(name)) rcode = 2;
    else {
      const table = type === TYPE.PTR ? this.records.ptr : type === TYPE.A ? this.records.a : type === TYPE.AAAA ? this.records.aaaa : undefined;
      const known = [this.records.ptr, this.records.a, this.records.aaaa].some((t) => t && name in t);
      if (!known) rcode = 3; /* NXDOMAIN */
      for (const value of table?.[name] ?? []) {
        const rdata = type === TYPE.PTR ? encodeName(value) : type === TYPE.A ? value.split(".").map(Number) : ipv6Bytes(value);
        answers.push([0xc0, 12, type >> 8, type & 255, 0, 1, 0, 0, 0x0e, 0x10, rdata.length >> 8, rdata.length & 255, ...rdata]);
      }
    }
    const header = [q[0]!, q[1]!, 0x84 | (q[2]! & 1), 0x80 | rcode, 0, 1, answers.length >> 8, answers.length & 255, 0, 0, 0, 0];
    return new Uint8Array([...header, ...question, ...answers.flat()]);
  }

  stop(): void {
    this.socket?.close();
    this.socket = null;
  }
}
